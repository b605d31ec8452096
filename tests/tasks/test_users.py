"""Users and sign-in state (issue #18): one add per name, known districts only, a password policy, sessions that a
new password or disabling ends, lockouts an administrator lifts — each audited, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from models.audit import AuditEvent
from models.program import User
from models.signin import ThrottleScope
from models.states import Role
from tasks.signin.state import ThrottlePolicy, open_session, record_failure, record_success, refusal, session_user
from tasks.users import BadUser, add_user, disable_user, list_users, set_password, unlock
from tests.factories import make_program

GOOD = "沈阳集采三进工作我负责审核"
NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(account_failures=3, address_failures=5, address_window=timedelta(minutes=15),
                        address_block=timedelta(minutes=15))


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _audit(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.entity == "user", AuditEvent.action == action)))


def test_adding_an_existing_name_is_refused_and_its_role_stays(engine: Engine) -> None:
    make_program(engine)
    add_user(engine, "wang", Role.OBSERVER, actor="admin")
    with pytest.raises(BadUser, match="已存在"):
        add_user(engine, "wang", Role.PROGRAM_MANAGER, actor="admin")
    with Session(engine) as session:
        assert session.exec(select(User.role).where(User.name == "wang")).one() == Role.OBSERVER
    assert [e.actor for e in _audit(engine, "create")] == ["admin"]


def test_a_district_no_loaded_program_has_is_refused_and_nothing_is_written(engine: Engine) -> None:
    make_program(engine)
    with pytest.raises(BadUser, match="未知区县：不存在区"):
        add_user(engine, "r9", Role.DISTRICT_REVIEWER, districts=["和平区", "不存在区"])
    assert _count(engine, User) == 0 and _audit(engine, "create") == []
    assert add_user(engine, "r9", Role.DISTRICT_REVIEWER, districts=["和平区"]).districts == ["和平区"]


def test_a_weak_password_is_refused_before_anything_is_written(engine: Engine) -> None:
    make_program(engine)
    with pytest.raises(BadUser, match="至少 12 个字符"):
        add_user(engine, "wang", Role.OBSERVER, password="x")
    with pytest.raises(BadUser, match="过于常见"):
        add_user(engine, "wang", Role.OBSERVER, password="password1234")
    assert _count(engine, User) == 0


def test_a_new_password_ends_every_session_of_the_user(engine: Engine) -> None:
    make_program(engine)
    user = add_user(engine, "wang", Role.OBSERVER, password=GOOD)
    other = add_user(engine, "li", Role.OBSERVER, password=GOOD)
    tokens = [open_session(engine, user, address="10.0.0.1", now=NOW, lifetime=timedelta(hours=8)) for _ in range(2)]
    kept = open_session(engine, other, address="10.0.0.2", now=NOW, lifetime=timedelta(hours=8))
    assert all(session_user(engine, t, NOW) is not None for t in tokens)
    assert set_password(engine, "wang", "另一个足够长的密码短语2026", actor="admin") == 2
    assert [session_user(engine, t, NOW) for t in tokens] == [None, None]
    assert session_user(engine, kept, NOW) is not None, "another user's session is untouched"
    assert _audit(engine, "set_password")[0].data["sessions_ended"] == 2
    with pytest.raises(BadUser, match="至少"):
        set_password(engine, "wang", "short", actor="admin")


def test_a_session_expires_and_a_disabled_user_is_out_at_once(engine: Engine) -> None:
    make_program(engine)
    user = add_user(engine, "wang", Role.OBSERVER, password=GOOD)
    token = open_session(engine, user, address=None, now=NOW, lifetime=timedelta(hours=8))
    assert session_user(engine, token, NOW + timedelta(hours=7, minutes=59)) is not None
    assert session_user(engine, token, NOW + timedelta(hours=8)) is None
    fresh = open_session(engine, user, address=None, now=NOW, lifetime=timedelta(hours=8))
    assert disable_user(engine, "wang", actor="admin", reason="调岗") == 2  # the expired one had not been ended
    assert session_user(engine, fresh, NOW) is None
    assert [u.active for u in list_users(engine)] == [False]
    with pytest.raises(BadUser, match="没有用户"):
        disable_user(engine, "nobody", actor="admin")


def test_consecutive_failures_lock_an_account_until_an_admin_unlocks_it(engine: Engine) -> None:
    make_program(engine)
    add_user(engine, "wang", Role.OBSERVER, password=GOOD)
    locked = [record_failure(engine, "wang", None, NOW + timedelta(minutes=i), POLICY) for i in range(3)]
    assert locked == [False, False, True]
    refused = refusal(engine, "wang", None, NOW + timedelta(days=30), POLICY)
    assert refused is not None and refused.scope == ThrottleScope.ACCOUNT and refused.until is None
    assert [u.locked for u in list_users(engine)] == [True]
    assert len(_audit(engine, "lock")) == 1
    record_success(engine, "wang")  # a success never clears a lock by itself
    assert refusal(engine, "wang", None, NOW, POLICY) is not None
    assert unlock(engine, name="wang", actor="admin") == 1
    assert refusal(engine, "wang", None, NOW, POLICY) is None
    assert _audit(engine, "unlock")[0].actor == "admin"


def test_an_unknown_name_locks_like_a_real_one(engine: Engine) -> None:
    """Otherwise the lockout itself would tell a guesser which names exist."""
    for i in range(3):
        record_failure(engine, "nobody", None, NOW + timedelta(seconds=i), POLICY)
    assert refusal(engine, "nobody", None, NOW, POLICY) is not None


def test_a_success_resets_the_account_count(engine: Engine) -> None:
    for _ in range(2):
        record_failure(engine, "wang", None, NOW, POLICY)
    record_success(engine, "wang")
    assert [record_failure(engine, "wang", None, NOW, POLICY) for _ in range(2)] == [False, False]


def test_an_address_is_blocked_for_a_while_after_many_failures_over_any_names(engine: Engine) -> None:
    for i in range(5):
        record_failure(engine, f"guess{i}", "10.9.9.9", NOW + timedelta(seconds=i), POLICY)
    refused = refusal(engine, "someone", "10.9.9.9", NOW + timedelta(minutes=1), POLICY)
    assert refused is not None and refused.scope == ThrottleScope.ADDRESS
    assert refusal(engine, "someone", "10.9.9.10", NOW, POLICY) is None, "another address is not blocked"
    assert refusal(engine, "someone", "10.9.9.9", NOW + timedelta(minutes=16), POLICY) is None
    # after the block, the count starts again: one more failure does not block at once
    record_failure(engine, "guess", "10.9.9.9", NOW + timedelta(minutes=16), POLICY)
    assert refusal(engine, "someone", "10.9.9.9", NOW + timedelta(minutes=16), POLICY) is None


def test_failures_spread_wider_than_the_window_never_block_an_address(engine: Engine) -> None:
    for i in range(10):
        record_failure(engine, f"u{i}", "10.1.1.1", NOW + timedelta(minutes=16 * i), POLICY)
    assert refusal(engine, "x", "10.1.1.1", NOW + timedelta(minutes=16 * 9), POLICY) is None


def test_an_admin_lifts_an_address_block(engine: Engine) -> None:
    for i in range(5):
        record_failure(engine, f"u{i}", "10.2.2.2", NOW, POLICY)
    with pytest.raises(BadUser):
        unlock(engine, actor="admin")
    assert unlock(engine, address="10.2.2.2", actor="admin") == 1
    assert refusal(engine, "x", "10.2.2.2", NOW, POLICY) is None
