"""The audit trail proves itself: every row is chained to the one before it, so an edit, a deletion or an
insertion made behind the application's back is named by `verify_chain` (issue #18)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text

from core.audit_chain import seal_audit, verify_chain
from core.bulk import write_audit
from core.db import transaction
from models.states import Role
from models.transitions import AuditRecord
from tests.conftest import fresh_pg_schema
from tests.factories import make_program, shanghai


def _write(engine: Engine, program_id: int | None, n: int, *, actor: str = "张审核", start: int = 0) -> None:
    with transaction(engine) as session:
        write_audit(session, [AuditRecord(
            entity="application", entity_id=start + i, action="approve", from_state="submitted", to_state="approved",
            actor=actor, role=Role.DISTRICT_REVIEWER, at=shanghai(2025, 9, 1, 10), reason=None,
            program_id=program_id, data={"batch": 1, "名称": "和平区社区卫生服务中心"}) for i in range(n)])


def _ids(engine: Engine, program_id: int) -> list[int]:
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(text(
            "SELECT id FROM auditevent WHERE program_id = :p ORDER BY chain_seq"), {"p": program_id}).scalars()]


def _chained(engine: Engine, program_id: int | None) -> int:
    """How long a program's chain is now (loading the program already audits it)."""
    report = _verify(engine, program_id)
    return report.heads.get(program_id or 0, (0, ""))[0]


def _verify(engine: Engine, program_id: int | None = None):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return verify_chain(conn, program_id)


def test_rows_are_sealed_into_their_programs_chain_by_the_commit_and_verify(engine: Engine) -> None:
    program = make_program(engine)
    before = _chained(engine, program.id)
    _write(engine, program.id, 300)
    _write(engine, program.id, 200, start=300)
    _write(engine, None, 3)
    report = _verify(engine)
    assert report.broken is None
    assert report.heads[program.id or 0][0] == before + 500 and report.heads[0][0] >= 3
    with engine.connect() as conn:
        unsealed = conn.execute(text("SELECT count(*) FROM auditevent WHERE chain_hash IS NULL")).scalar_one()
    assert unsealed == 0


def test_an_edited_row_is_named(engine: Engine) -> None:
    program = make_program(engine)
    _write(engine, program.id, 50)
    victim = _ids(engine, program.id or 0)[20]
    with engine.begin() as conn:  # the owner of the database, behind the application's back
        conn.execute(text("UPDATE auditevent SET reason = '补录' WHERE id = :i"), {"i": victim})
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id, broken.position) == ("edited", victim, 21)
    assert str(victim) in broken.message() and "被改动" in broken.message()


def test_a_deleted_row_is_named(engine: Engine) -> None:
    program = make_program(engine)
    _write(engine, program.id, 50)
    ids = _ids(engine, program.id or 0)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": ids[9]})
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id, broken.position) == ("deleted", ids[10], 10)
    assert "删除" in broken.message()


def test_a_deleted_last_row_is_not_a_break_but_moves_the_head(engine: Engine) -> None:
    """Without an anchor outside the database the newest rows can be cut off unseen: the head is reported
    (the daily check logs it) so that a shorter chain the next day is evident to whoever compares."""
    program = make_program(engine)
    before = _chained(engine, program.id)
    _write(engine, program.id, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": _ids(engine, program.id or 0)[-1]})
    report = _verify(engine, program.id)
    assert report.broken is None and report.heads[program.id or 0][0] == before + 4


def test_a_row_inserted_by_hand_is_named(engine: Engine) -> None:
    program = make_program(engine)
    _write(engine, program.id, 10)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at) "
            "SELECT program_id, entity, '999', action, actor, role, data, at FROM auditevent WHERE id = :i"),
            {"i": _ids(engine, program.id or 0)[3]})
        forged = int(conn.execute(text("SELECT max(id) FROM auditevent")).scalar_one())
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id) == ("inserted", forged)
    assert "被插入" in broken.message()


def test_a_row_inserted_into_the_middle_with_the_rest_renumbered_is_named(engine: Engine) -> None:
    program = make_program(engine)
    _write(engine, program.id, 10)
    ids = _ids(engine, program.id or 0)
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET chain_seq = chain_seq + 100 WHERE id IN :ids")
                     .bindparams(__import__("sqlalchemy").bindparam("ids", expanding=True)), {"ids": ids[4:]})
        conn.execute(text("UPDATE auditevent SET chain_seq = chain_seq - 99 WHERE chain_seq > 100"))
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at, chain, chain_seq, "
            "chain_hash) SELECT program_id, entity, '999', action, actor, role, data, at, chain, 5, chain_hash "
            "FROM auditevent WHERE id = :i"), {"i": ids[4]})
        forged = int(conn.execute(text("SELECT max(id) FROM auditevent")).scalar_one())
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id, broken.position) == ("inserted", forged, 5)


def test_a_row_moved_to_another_program_breaks_both_chains(engine: Engine) -> None:
    program = make_program(engine)
    other = make_program(engine, "jiangxi-2025")
    _write(engine, program.id, 5)
    _write(engine, other.id, 5)
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET program_id = :o WHERE id = :i"),
                     {"o": other.id, "i": _ids(engine, program.id or 0)[4]})
    assert _verify(engine, program.id).broken is not None
    assert _verify(engine).broken is not None


def test_two_writers_at_once_do_not_fork_the_chain(engine: Engine) -> None:
    program = make_program(engine)
    before = _chained(engine, program.id)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(5):
                _write(engine, program.id, 40, actor=f"审核员{k}", start=1000 * k + 40 * j)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify(engine, program.id)
    assert report.broken is None and report.heads[program.id or 0][0] == before + 3 * 5 * 40


def test_postgres_refuses_to_update_or_delete_audit_rows_but_seals_new_ones() -> None:
    """The migration's trigger: the application's role cannot rewrite history; a superuser must first
    disable the trigger, and then `verify` names what was changed."""
    from sqlalchemy.exc import DBAPIError

    from core.migrate import upgrade

    with fresh_pg_schema("audit") as engine:
        upgrade(engine)
        pid = make_program(engine).id
        _write(engine, pid, 20)
        assert _verify(engine, pid).broken is None
        for statement in ("UPDATE auditevent SET reason = 'x'", "DELETE FROM auditevent",
                          "TRUNCATE auditevent", "UPDATE auditevent SET chain_seq = NULL"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE auditevent DISABLE TRIGGER auditevent_append_only"))
            conn.execute(text("UPDATE auditevent SET actor = '他人' WHERE chain = :p AND chain_seq = 7"), {"p": pid})
        broken = _verify(engine, pid).broken
        assert broken is not None and (broken.kind, broken.position) == ("edited", 7)


def test_a_commit_with_no_audit_rows_seals_nothing(engine: Engine) -> None:
    make_program(engine)
    with engine.begin() as conn:
        assert seal_audit(conn) == 0


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_upgrading_an_existing_database_seals_its_earlier_audit_rows_oldest_first(db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from contextlib import nullcontext

    from core.db import make_engine
    from core.migrate import upgrade

    context = (nullcontext(make_engine(f"sqlite:///{tmp_path / 'old.db'}")) if db == "sqlite"
               else fresh_pg_schema("auditup"))
    with context as engine:
        upgrade(engine, "0010_register")
        with engine.begin() as conn:
            for i in range(3):
                conn.execute(text("INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at) "
                                  "VALUES (NULL, 'user', :i, 'create', 'system', 'system', '{}', :at)"),
                             {"i": str(i), "at": "2025-09-01 02:00:00" if db == "sqlite" else shanghai(2025, 9, 1, 10)})
        upgrade(engine)
        report = _verify(engine)
        assert report.broken is None and report.heads[0][0] == 3
        engine.dispose()
