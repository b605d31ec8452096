"""`sanjin user add|list|passwd|disable|unlock` (issue #18): refusals are messages, changes are audited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from core.settings import get_settings
from models.base import utcnow
from models.program import User
from models.states import Role
from sanjin.cli import app
from sanjin.errors import USER_ERRORS
from tasks.signin.passwords import verify
from tasks.signin.state import ThrottlePolicy, open_session, record_failure, refusal, session_user
from tasks.users import BadUser
from tests.factories import make_program

runner = CliRunner()
GOOD = "沈阳集采三进工作我负责审核"


def _cli(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    get_settings.cache_clear()
    return runner.invoke(app, list(args), input=stdin)


def test_user_add_refuses_an_existing_name_instead_of_changing_its_role(database_url: str, engine: Engine) -> None:
    make_program(engine)
    assert _cli("user", "add", "wang", "--role", "observer", "--as", "admin").exit_code == 0
    again = _cli("user", "add", "wang", "--role", "program_manager")
    assert again.exit_code != 0 and isinstance(again.exception, BadUser) and isinstance(again.exception, USER_ERRORS)
    assert "已存在" in str(again.exception)
    with Session(engine) as session:
        assert session.exec(select(User.role)).all() == [Role.OBSERVER]


def test_user_add_refuses_an_unknown_district_and_a_weak_password(database_url: str, engine: Engine) -> None:
    make_program(engine)
    unknown = _cli("user", "add", "r9", "--role", "district_reviewer", "--district", "火星区")
    assert isinstance(unknown.exception, BadUser) and "火星区" in str(unknown.exception)
    weak = _cli("user", "add", "r9", "--role", "observer", "--password", "123456")
    assert isinstance(weak.exception, BadUser) and "至少 12 个字符" in str(weak.exception)
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_user_list_shows_roles_districts_and_who_is_locked_in_chinese(database_url: str, engine: Engine) -> None:
    make_program(engine)
    _cli("user", "add", "r1", "--role", "district_reviewer", "--district", "和平区", "--password", GOOD,
         "--display-name", "审核科", "--unit", "和平区医疗保障局")
    _cli("user", "add", "m1", "--role", "program_manager")
    policy = ThrottlePolicy(account_failures=3)
    for _ in range(3):
        record_failure(engine, "r1", None, utcnow(), policy)
    out = _cli("user", "list").stdout
    r1 = next(line for line in out.splitlines() if "r1" in line)
    m1 = next(line for line in out.splitlines() if "m1" in line)
    assert "区县审核员" in r1 and "和平区" in r1 and "已锁定" in r1
    assert "审核科" in r1 and "和平区医疗保障局" in r1  # the unit tells thirteen 审核科 apart
    assert "项目管理员" in m1 and "未设密码" in m1
    assert "district_reviewer" not in out


def test_user_unlock_lifts_the_lockout(database_url: str, engine: Engine) -> None:
    make_program(engine)
    policy = ThrottlePolicy(account_failures=3)
    for _ in range(3):
        record_failure(engine, "r1", None, utcnow(), policy)
    result = _cli("user", "unlock", "r1", "--as", "admin")
    assert result.exit_code == 0 and "已解除 1 项锁定" in result.stdout
    assert refusal(engine, "r1", None, utcnow(), policy) is None
    assert "没有锁定" in _cli("user", "unlock", "r1").stdout


def test_user_passwd_asks_twice_and_ends_the_sessions(database_url: str, engine: Engine) -> None:
    make_program(engine)
    _cli("user", "add", "wang", "--role", "observer", "--password", GOOD)
    with Session(engine) as session:
        user = session.exec(select(User)).one()
    token = open_session(engine, user, address=None, now=utcnow(), lifetime=timedelta(hours=1))
    new = "另一个足够长的密码短语2026"
    result = _cli("user", "passwd", "wang", "--as", "admin", stdin=f"{new}\n{new}\n")
    assert result.exit_code == 0 and "结束了 1 个网页会话" in result.stdout, result.output
    assert new not in result.stdout, "the password is never echoed"
    assert session_user(engine, token, utcnow()) is None
    short = _cli("user", "passwd", "wang", stdin="short\nshort\n")
    assert isinstance(short.exception, BadUser)


def test_user_disable_ends_the_sessions_and_refuses_an_unknown_name(database_url: str, engine: Engine) -> None:
    make_program(engine)
    _cli("user", "add", "wang", "--role", "observer", "--password", GOOD)
    with Session(engine) as session:
        user = session.exec(select(User)).one()
    token = open_session(engine, user, address=None, now=utcnow(), lifetime=timedelta(hours=1))
    assert _cli("user", "disable", "wang", "--reason", "调岗").exit_code == 0
    assert session_user(engine, token, utcnow()) is None
    missing = _cli("user", "disable", "nobody")
    assert isinstance(missing.exception, BadUser) and "没有用户" in str(missing.exception)


def _stored_password(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        return session.exec(select(User).where(User.name == name)).one().password_hash


def test_user_add_reads_the_password_from_stdin_so_it_never_shows_in_the_process_list(database_url: str,
                                                                                       engine: Engine) -> None:
    make_program(engine)
    result = _cli("user", "add", "wang", "--role", "observer", "--password-stdin", stdin=f"{GOOD}\n")
    assert result.exit_code == 0, result.output
    assert GOOD not in result.output
    assert verify(GOOD, _stored_password(engine, "wang"))


def test_user_add_asks_the_password_twice_hidden_and_refuses_a_mismatch(database_url: str, engine: Engine) -> None:
    make_program(engine)
    asked = _cli("user", "add", "wang", "--role", "observer", "--ask-password", stdin=f"{GOOD}\n{GOOD}\n")
    assert asked.exit_code == 0 and GOOD not in asked.output, asked.output
    assert verify(GOOD, _stored_password(engine, "wang"))
    other = "另一个足够长的密码短语2026"
    mismatch = _cli("user", "add", "li", "--role", "observer", "--ask-password", stdin=f"{GOOD}\n{other}\n")
    assert mismatch.exit_code != 0
    with Session(engine) as session:
        assert session.exec(select(User).where(User.name == "li")).first() is None


def test_user_add_refuses_two_ways_of_giving_the_password_at_once(database_url: str, engine: Engine) -> None:
    make_program(engine)
    both = _cli("user", "add", "wang", "--role", "observer", "--password", GOOD, "--password-stdin", stdin=f"{GOOD}\n")
    assert both.exit_code == 2 and "只能选一个" in both.output
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []
