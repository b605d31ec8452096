"""The audit trail proves itself: every row is chained to the one before it, so an edit, a deletion or an
insertion made behind the application's back is named by `verify_chain` (issue #18)."""

from __future__ import annotations

import threading
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine, literal_column, text

from core.audit_chain import WRITTEN, seal_audit, verify_chain
from core.bulk import write_audit
from core.db import transaction
from models.audit import Same
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


def _write_format_2(engine: Engine, program_id: int | None, n: int, *, start: int = 0) -> None:
    """`_write`'s rows as session 12's `write_audit` sealed them (chain format 2, models/audit.py BULK_MARK): the
    writers now write format 3, and a database keeps its format-2 rows, which must go on verifying."""
    from sqlalchemy import insert

    from core.audit_chain import AUDIT, advance_head, take_places
    from core.bulk import AUDIT_TABLE, audit_forms
    from models.audit import bulk_seals, chain_of, split_locators

    stamp, data = shanghai(2025, 9, 1, 10), {"batch": 1, "名称": "和平区社区卫生服务中心"}
    with transaction(engine) as session:
        conn = session.connection()
        processors = {"at": AUDIT_TABLE.c.at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)}
        hashed = {name: audit_forms(conn.dialect.name, processors, name, value)[1]
                  for name, value in (("data", data), ("at", stamp), ("role", Role.DISTRICT_REVIEWER))}
        chain = chain_of(program_id)
        places = take_places(conn, chain, n)
        entity_ids = [str(start + i) for i in range(n)]
        shared = [program_id, "application", None, "approve", "submitted", "approved", "张审核", hashed["role"],
                  None, hashed["data"], hashed["at"]]
        columns: list[Any] = [places.ids, *[Same(v) for v in shared]]
        columns[3] = entity_ids
        locators, link = bulk_seals(places.previous, places.after_seq, columns)
        conn.execute(insert(AUDIT), [
            {"id": i, "program_id": program_id, "entity": "application", "entity_id": e, "action": "approve",
             "from_state": "submitted", "to_state": "approved", "actor": "张审核", "role": Role.DISTRICT_REVIEWER,
             "reason": None, "data": data, "at": stamp, "chain": chain, "chain_seq": places.after_seq + 1 + k,
             "chain_hash": h}
            for k, (i, e, h) in enumerate(zip(places.ids, entity_ids, [*split_locators(locators), link],
                                              strict=True))])
        advance_head(conn, chain, places.after_seq + n, link)
        conn.info[WRITTEN] = False


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


@pytest.mark.parametrize("cut", [1, 3])
def test_rows_cut_off_the_end_are_named_against_the_chains_head(engine: Engine, cut: int) -> None:
    """Deleting the newest rows leaves a shorter chain that links; the head row still says how long it was."""
    program = make_program(engine)
    _write(engine, program.id, 5)
    ids = _ids(engine, program.id or 0)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id >= :i"), {"i": ids[-cut]})
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.position, broken.head) == ("deleted", len(ids) - cut + 1,
                                                                                   len(ids))
    assert "至链尾被删除" in broken.message() and "to the end of chain" in broken.message()


def test_rows_cut_off_with_their_head_deleted_are_named(engine: Engine) -> None:
    program = make_program(engine)
    _write(engine, program.id, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": _ids(engine, program.id or 0)[-1]})
        conn.execute(text("DELETE FROM auditchainhead WHERE chain = :c"), {"c": program.id})
    broken = _verify(engine, program.id).broken
    assert broken is not None and broken.kind == "deleted" and "链头记录被删除" in broken.message()


def test_rows_cut_off_with_their_head_moved_back_are_named_against_the_recorded_heads(engine: Engine) -> None:
    """Someone who can write the database moves the head back with the rows: the heads an earlier check recorded
    outside the database (tasks/trust/audit_anchor.py) still show it."""
    from core.audit_chain import check_recorded

    program = make_program(engine)
    _write(engine, program.id, 5)
    recorded = _verify(engine).heads
    ids = _ids(engine, program.id or 0)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id >= :i"), {"i": ids[-2]})
        conn.execute(text("UPDATE auditchainhead SET seq = seq - 2, hash = (SELECT chain_hash FROM auditevent "
                          "WHERE id = :i) WHERE chain = :c"), {"i": ids[-3], "c": program.id})
    assert _verify(engine, program.id).broken is None  # the database alone no longer shows it
    with engine.connect() as conn:
        broken = check_recorded(conn, recorded)
    assert broken is not None and (broken.kind, broken.chain, broken.position) == ("deleted", program.id, len(ids))
    assert "此前校验记下的链头" in broken.message()


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


def test_bulk_writes_are_sealed_as_written_in_the_order_the_transaction_wrote(engine: Engine) -> None:
    """Writers of many rows hash them before inserting them (nothing is read back or updated at commit); rows
    left to the commit before and after them keep their places in the order written."""
    from sqlalchemy import Integer, literal, select

    from core.bulk import PRESEAL_ROWS, audit_from_select, insert_columns, json_rows, table_of
    from models.audit import AuditEvent

    program = make_program(engine)
    before = _chained(engine, program.id)
    n = PRESEAL_ROWS + 10
    with transaction(engine) as session:
        write_audit(session, [AuditRecord("program", 1, "note", None, None, "王经理", Role.PROGRAM_MANAGER,
                                          shanghai(2025, 9, 1, 9), "先写的一条", program_id=program.id)])
        write_audit(session, [AuditRecord(
            entity="application", entity_id=i, action="approve", from_state="submitted", to_state="approved",
            actor="张审核", role=Role.DISTRICT_REVIEWER, at=shanghai(2025, 9, 1, 10, i % 60), reason="理由\"\n",
            program_id=program.id, data={"batch": i, "名称": "和平区"}) for i in range(n)])
        moved = json_rows(session, "moved", [("entity_id", Integer())], [(i,) for i in range(n)])
        assert audit_from_select(session, select(moved.c.entity_id, literal("逾期").label("reason"))
                                 .where(moved.c.entity_id >= 0), entity="application", action="run",
                                 from_state="approved", to_state="running", actor="系统", role=Role.SYSTEM,
                                 at=shanghai(2025, 9, 2, 8), program_id=program.id, data={"batch": 7}) == n
        insert_columns(session, table_of(AuditEvent), {"entity_id": [str(i) for i in range(n)]}, {
            "program_id": program.id, "entity": "application", "action": "submit", "from_state": None,
            "to_state": "submitted", "actor": "导入", "role": Role.SYSTEM, "reason": None,
            "at": shanghai(2025, 9, 1, 8)}, stored={"data": [f'{{"row": {i}}}' for i in range(n)]})
        write_audit(session, [AuditRecord("program", 1, "note", None, None, "王经理", Role.PROGRAM_MANAGER,
                                          shanghai(2025, 9, 3, 9), "后写的一条", program_id=program.id)])
        # sealed as written: places already taken before the commit
        sealed = session.connection().execute(text(
            "SELECT count(*) FROM auditevent WHERE chain_seq IS NOT NULL AND chain = :c"), {"c": program.id})
        assert sealed.scalar_one() == before + 1 + 3 * n
    report = _verify(engine, program.id)
    assert report.broken is None and report.heads[program.id or 0][0] == before + 2 + 3 * n
    with engine.connect() as conn:
        order = [r for r, in conn.execute(text(
            "SELECT reason FROM auditevent WHERE chain = :c AND entity = 'program' AND action = 'note' "
            "ORDER BY chain_seq"), {"c": program.id})]
        by_seq = [int(i) for i in conn.execute(text(
            "SELECT id FROM auditevent WHERE chain = :c ORDER BY chain_seq"), {"c": program.id}).scalars()]
    assert order == ["先写的一条", "后写的一条"] and by_seq == sorted(by_seq)


def test_rows_a_query_moves_are_chained_in_entity_order_with_consecutive_ids_whatever_order_it_reads(
        engine: Engine) -> None:
    """The database numbers the moved rows as it copies them (SQLite: their rowids, not row_number()); twice in
    one transaction the numbering starts afresh, and the chain still holds every row once, in entity order."""
    from sqlalchemy import Integer, literal, select

    from core.bulk import PRESEAL_ROWS, audit_from_select, json_rows

    program = make_program(engine)
    before = _chained(engine, program.id)
    n = PRESEAL_ROWS + 7
    with transaction(engine) as session:
        for action, reason in (("run", "逾期"), ("stop", None)):
            moved = json_rows(session, "moved", [("entity_id", Integer())], [(i,) for i in reversed(range(n))])
            assert audit_from_select(session, select(moved.c.entity_id, literal(reason).label("reason"))
                                     .where(moved.c.entity_id >= 0), entity="application", action=action,
                                     from_state="approved", to_state="running", actor="系统", role=Role.SYSTEM,
                                     at=shanghai(2025, 9, 2, 8), program_id=program.id, data={"batch": 7}) == n
    report = _verify(engine, program.id)
    assert report.broken is None and report.heads[program.id or 0][0] == before + 2 * n
    with engine.connect() as conn:
        for action in ("run", "stop"):
            rows = conn.execute(text("SELECT id, entity_id, chain_seq FROM auditevent WHERE chain = :c "
                                     "AND action = :a ORDER BY chain_seq"), {"c": program.id, "a": action}).all()
            assert [int(e) for _, e, _ in rows] == list(range(n))
            assert [i - rows[0][0] for i, _, _ in rows] == [s - rows[0][2] for _, _, s in rows] == list(range(n))


def test_an_edited_row_of_a_bulk_write_is_named(engine: Engine) -> None:
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _write(engine, program.id, PRESEAL_ROWS + 1)
    victim = _ids(engine, program.id or 0)[-7]
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET data = :d WHERE id = :i"), {"i": victim, "d": '{"batch": 2}'})
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id) == ("edited", victim)


def test_two_bulk_writers_at_once_do_not_fork_the_chain(engine: Engine) -> None:
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before = _chained(engine, program.id)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(2):
                _write(engine, program.id, PRESEAL_ROWS, actor=f"审核员{k}", start=10_000 * k + 1000 * j)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify(engine, program.id)
    assert report.broken is None and report.heads[program.id or 0][0] == before + 3 * 2 * PRESEAL_ROWS


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
        for statement in ("UPDATE auditchainhead SET seq = seq - 1", "UPDATE auditchainhead SET hash = 'x'",
                          "DELETE FROM auditchainhead", "TRUNCATE auditchainhead"):
            with pytest.raises(DBAPIError, match="only move forward"), engine.begin() as conn:
                conn.execute(text(statement))
        for statement in ("UPDATE auditlink SET hash = 'x'", "DELETE FROM auditlink", "TRUNCATE auditlink"):
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


def _move(session, n: int, program_id: int | None, action: str = "run") -> int:  # type: ignore[no-untyped-def]
    """One bulk transition's audit rows, written by the database (`audit_from_select`) and sealed as written."""
    from sqlalchemy import Integer, literal, select

    from core.bulk import audit_from_select, json_rows

    moved = json_rows(session, "moved", [("entity_id", Integer())], [(i,) for i in range(n)])
    return audit_from_select(session, select(moved.c.entity_id, literal(None).label("reason"))
                             .where(moved.c.entity_id >= 0), entity="application", action=action,
                             from_state="approved", to_state="running", actor="系统", role=Role.SYSTEM,
                             at=shanghai(2025, 9, 2, 8), program_id=program_id, data={"batch": 7})


def test_a_decisions_own_rows_before_its_bulk_rows_keep_their_places_in_both_chains(engine: Engine) -> None:
    """A gate decision writes its own row (sealed at once, before the bulk rows take their places) and then its
    items' rows: the row in the bulk's chain comes first there, the row of another chain ends that chain."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before, before_system = _chained(engine, program.id), _chained(engine, None)
    n = PRESEAL_ROWS + 3
    with transaction(engine) as session:
        write_audit(session, [
            AuditRecord("gate", 1, "decide", "open", "decided", "张审核", Role.DISTRICT_REVIEWER,
                        shanghai(2025, 9, 2, 7), None, program_id=program.id),
            AuditRecord("user", 9, "login", None, None, "张审核", Role.DISTRICT_REVIEWER, shanghai(2025, 9, 2, 7))])
        assert _move(session, n, program.id) == n
    report = _verify(engine)
    assert report.broken is None
    assert report.heads[program.id or 0][0] == before + 1 + n and report.heads[0][0] == before_system + 1
    with engine.connect() as conn:
        first = conn.execute(text("SELECT entity FROM auditevent WHERE chain = :c AND chain_seq = :s"),
                             {"c": program.id, "s": before + 1}).scalar_one()
    assert first == "gate"


def test_audit_ids_another_writer_took_meanwhile_leave_a_gap_and_the_rows_still_chain_in_order() -> None:
    """PostgreSQL: a bulk write reserves its ids in one statement and uses them as first + offset when they are
    contiguous; when they are not (another writer took ids in between; here the sequence steps by 3), it takes
    them again as one array and the chain is the same."""
    from core.bulk import PRESEAL_ROWS
    from models.tables import metadata

    with fresh_pg_schema("auditids") as engine:
        metadata.create_all(engine)
        program = make_program(engine)
        before = _chained(engine, program.id)
        with engine.begin() as conn:
            conn.execute(text("ALTER SEQUENCE auditevent_id_seq INCREMENT BY 3"))
        n = PRESEAL_ROWS + 5
        with transaction(engine) as session:
            assert _move(session, n, program.id) == n
        _write(engine, program.id, n, start=n)  # write_audit's bulk path, the same reservation
        report = _verify(engine, program.id)
        assert report.broken is None and report.heads[program.id or 0][0] == before + 2 * n
        ids = _ids(engine, program.id or 0)[before:]
        assert ids == sorted(ids) and len(set(ids)) == 2 * n
        assert {b - a for a, b in pairwise(ids[:n])} == {3}


def test_rows_a_query_moves_with_reasons_of_their_own_or_one_shared_reason_verify(engine: Engine) -> None:
    """A moved row's reason is per row when the query reads it from a table, and copied once when it is a
    constant (a bound string or NULL); either way the stored reason is the hashed one."""
    from sqlalchemy import Integer, Text, literal, null, select

    from core.bulk import PRESEAL_ROWS, audit_from_select, json_rows

    program = make_program(engine)
    n = PRESEAL_ROWS + 2
    own = {i: (None if i % 3 == 0 else f"理由 \"{i}\"\n") for i in range(n)}
    with transaction(engine) as session:
        items = json_rows(session, "items", [("entity_id", Integer()), ("reason", Text())], list(own.items()))
        for action, reason in (("own", items.c.reason), ("shared", literal("逾期未交")), ("none", null())):
            assert audit_from_select(session, select(items.c.entity_id, reason.label("reason"))
                                     .where(items.c.entity_id >= 0), entity="application", action=action,
                                     from_state="approved", to_state="running", actor="系统", role=Role.SYSTEM,
                                     at=shanghai(2025, 9, 2, 8), program_id=program.id, data={}) == n
    assert _verify(engine, program.id).broken is None
    with engine.connect() as conn:
        stored = {a: dict(conn.execute(text("SELECT CAST(entity_id AS INTEGER), reason FROM auditevent "
                                            "WHERE action = :a"), {"a": a}).tuples().all())
                  for a in ("own", "shared", "none")}
    assert stored == {"own": own, "shared": dict.fromkeys(own, "逾期未交"), "none": dict.fromkeys(own)}


def _moved_with_reasons(engine: Engine, program_id: int | None, n: int) -> None:
    """One `audit_from_select` of `n` rows, half with a reason of their own (format 3: one link row)."""
    from sqlalchemy import Integer, Text, select

    from core.bulk import audit_from_select, json_rows

    with transaction(engine) as session:
        items = json_rows(session, "items", [("entity_id", Integer()), ("reason", Text())],
                          [(i, None if i % 2 else f"理由{i}") for i in range(n)])
        assert audit_from_select(session, select(items.c.entity_id, items.c.reason.label("reason"))
                                 .where(items.c.entity_id >= 0), entity="application", action="run",
                                 from_state="approved", to_state="running", actor="系统", role=Role.SYSTEM,
                                 at=shanghai(2025, 9, 2, 8), program_id=program_id, data={"batch": 3}) == n


def _linked_rows(engine: Engine, program_id: int, action: str = "run") -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return [(int(i), int(s)) for i, s in conn.execute(text(
            "SELECT id, chain_seq FROM auditevent WHERE chain = :c AND action = :a ORDER BY chain_seq"),
            {"c": program_id, "a": action})]


def _edit(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _broken(engine: Engine, program_id: int | None) -> tuple[str, int | None, int | None] | None:
    broken = _verify(engine, program_id).broken
    return None if broken is None else (broken.kind, broken.audit_id, broken.position)


def test_a_bulk_transition_is_written_unsealed_with_one_link_row_and_verifies(engine: Engine) -> None:
    """Format 3 (models/audit.py, LINK_MARK): `audit_from_select`'s rows carry their chain places and no hash;
    one `auditlink` row proves them all, and the head ends at the link's hash. Every row in entity order."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before = _chained(engine, program.id)
    n = PRESEAL_ROWS + 3
    _moved_with_reasons(engine, program.id, n)
    report = _verify(engine, program.id)
    assert report.broken is None and report.heads[program.id or 0][0] == before + n
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT entity_id, chain_seq, chain_hash, reason FROM auditevent "
                                 "WHERE chain = :c AND action = 'run' ORDER BY chain_seq"), {"c": program.id}).all()
        links = conn.execute(text("SELECT chain, first_seq, last_seq, hash FROM auditlink")).all()
    assert sorted(int(e) for e, _, _, _ in rows) == list(range(n))
    assert [s for _, s, _, _ in rows] == list(range(before + 1, before + n + 1))
    assert {h for _, _, h, _ in rows} == {None}
    assert [tuple(link)[:3] for link in links] == [(program.id, before + 1, before + n)]
    assert report.heads[program.id or 0][1] == links[0].hash


def test_an_edit_anywhere_in_a_link_row_s_rows_is_named(engine: Engine) -> None:
    """A per-row value (reason, entity_id) or a value every row of the link shared (actor, time) edited in one
    row: the link's sha256 breaks, and that row is named — by its locator, or as the one row whose shared
    value differs from the others'. Restored, the chain verifies again."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 3)
    rows = _linked_rows(engine, program.id or 0)
    for (victim, position), column, forged, original in (
            (rows[3], "reason", "'伪造'", "NULL"),
            (rows[0], "entity_id", "'99999'", None),
            (rows[-1], "actor", "'李伪造'", "'系统'"),
            (rows[7], "action", "'stop'", "'run'")):
        if original is None:
            with engine.connect() as conn:
                original = "'" + str(conn.execute(text(f"SELECT {column} FROM auditevent WHERE id = :i"),
                                                  {"i": victim}).scalar_one()) + "'"
        _edit(engine, f"UPDATE auditevent SET {column} = {forged} WHERE id = :i", i=victim)
        assert _broken(engine, program.id) == ("edited", victim, position), column
        _edit(engine, f"UPDATE auditevent SET {column} = {original} WHERE id = :i", i=victim)
        assert _broken(engine, program.id) is None, column
    victim, position = rows[9]  # an id moved out of the link's run of ids
    _edit(engine, "UPDATE auditevent SET id = 99999999 WHERE id = :i", i=victim)
    assert _broken(engine, program.id) == ("edited", 99999999, position)
    _edit(engine, "UPDATE auditevent SET id = :i WHERE id = 99999999", i=victim)
    assert _broken(engine, program.id) is None


def test_a_row_inserted_into_or_deleted_from_a_link_row_s_rows_is_named(engine: Engine) -> None:
    """Inserted (the rows after it renumbered to make room): named "inserted"; deleted: the gap is named; deleted
    with the rest renumbered down: the row now at the deleted row's place is named."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 3)
    rows = _linked_rows(engine, program.id or 0)
    victim, position = rows[5]
    _edit(engine, "DELETE FROM auditevent WHERE id = :i", i=victim)
    assert _broken(engine, program.id) == ("deleted", rows[6][0], position)
    _edit(engine, "UPDATE auditevent SET chain_seq = chain_seq + 99999 WHERE chain = :c AND chain_seq > :s",
          c=program.id, s=position)
    _edit(engine, "UPDATE auditevent SET chain_seq = chain_seq - 100000 WHERE chain = :c AND chain_seq > 100000",
          c=program.id)
    assert _broken(engine, program.id) == ("edited", rows[6][0], position)


def test_a_row_inserted_into_a_link_row_s_rows_is_named_inserted(engine: Engine) -> None:
    """The rows after it renumbered to make room: the row at its place no longer gives the locator stored for
    that place, the row after it does."""
    from core.bulk import PRESEAL_ROWS

    other = make_program(engine)
    _moved_with_reasons(engine, other.id, PRESEAL_ROWS + 3)
    rows = _linked_rows(engine, other.id or 0)
    _, position = rows[4]
    _edit(engine, "UPDATE auditevent SET chain_seq = chain_seq + 100000 WHERE chain = :c AND chain_seq >= :s",
          c=other.id, s=position)
    _edit(engine, "UPDATE auditevent SET chain_seq = chain_seq - 99999 WHERE chain = :c AND chain_seq > 100000",
          c=other.id)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, from_state, to_state, actor, role, reason, "
            "data, at, chain, chain_seq) SELECT program_id, entity, '4242', action, from_state, to_state, actor, role, "
            "reason, data, at, chain, :s FROM auditevent WHERE id = :i"), {"s": position, "i": rows[0][0]})
        forged = int(conn.execute(text("SELECT max(id) FROM auditevent")).scalar_one())
    assert _broken(engine, other.id) == ("inserted", forged, position)


def test_a_link_row_removed_or_edited_breaks_the_chain(engine: Engine) -> None:
    """The link row is the rows' only proof: deleted, its rows are proven by nothing (the first is named);
    its hash edited, the link no longer follows (its last row is named); its locators edited, the chain still
    verifies only if the hash holds — it does not: they are not covered, but the hash is recomputed from rows."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 3)
    rows = _linked_rows(engine, program.id or 0)
    with engine.connect() as conn:
        digest = conn.execute(text("SELECT hash FROM auditlink WHERE chain = :c"), {"c": program.id}).scalar_one()
    _edit(engine, "UPDATE auditlink SET hash = :h WHERE chain = :c", h="f" * 64, c=program.id)
    assert _broken(engine, program.id) == ("edited", rows[-1][0], rows[-1][1])
    _edit(engine, "UPDATE auditlink SET hash = :h WHERE chain = :c", h=digest, c=program.id)
    assert _broken(engine, program.id) is None
    _edit(engine, "UPDATE auditlink SET last_seq = last_seq - 1 WHERE chain = :c", c=program.id)
    assert _broken(engine, program.id) is not None
    _edit(engine, "UPDATE auditlink SET last_seq = last_seq + 1 WHERE chain = :c", c=program.id)
    _edit(engine, "UPDATE auditevent SET chain_hash = :h WHERE id = :i", h="0" * 64, i=rows[2][0])
    assert _broken(engine, program.id) == ("edited", rows[2][0], rows[2][1])
    _edit(engine, "UPDATE auditevent SET chain_hash = NULL WHERE id = :i", i=rows[2][0])
    _edit(engine, "DELETE FROM auditlink WHERE chain = :c", c=program.id)
    assert _broken(engine, program.id) == ("edited", rows[0][0], rows[0][1])


def test_formats_one_two_and_three_mixed_in_one_chain_verify_and_an_edit_in_each_is_named(engine: Engine) -> None:
    """Rows sealed at commit (format 1), a bulk write as session 12 sealed it (format 2), a bulk transition and a
    bulk write of Python records (format 3), and again rows of formats 1 and 3 in one chain: it verifies, a recorded head at a link's end is checked against the
    link, and an edit in each part is named."""
    from core.audit_chain import check_recorded
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _write(engine, program.id, 2)
    _write_format_2(engine, program.id, PRESEAL_ROWS + 1, start=10)
    _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 2)
    _write(engine, program.id, PRESEAL_ROWS + 1, start=2000)  # write_audit's bulk path: format 3 too
    _write(engine, program.id, 3, start=5000)
    with transaction(engine) as session:
        assert _move(session, PRESEAL_ROWS + 4, program.id, action="again") == PRESEAL_ROWS + 4
    report = _verify(engine, program.id)
    assert report.broken is None
    with engine.connect() as conn:
        assert check_recorded(conn, report.heads) is None
        assert check_recorded(conn, {program.id or 0: (report.heads[program.id or 0][0], "e" * 64)}) is not None
    chain = _chain_rows(engine, program.id or 0)
    with engine.connect() as conn:
        hashes = dict(conn.execute(text("SELECT id, chain_hash FROM auditevent WHERE chain = :c"),
                                   {"c": program.id}).tuples().all())
    formats = [3 if hashes[i] is None else 2 if len(hashes[i]) == 8 else 1 for i, _, _ in chain]
    assert {1, 2, 3} <= set(formats)
    for part in (1, 2, 3):
        at = len(formats) - 2 - formats[::-1].index(part)  # the second to last row of the part's last run
        victim, position, _ = chain[at]
        assert formats[at] == part
        _edit(engine, "UPDATE auditevent SET to_state = 'forged' WHERE id = :i", i=victim)
        assert _broken(engine, program.id) == ("edited", victim, position), part
        _edit(engine, "UPDATE auditevent SET to_state = 'running' WHERE id = :i", i=victim)
        with engine.connect() as conn:
            restored = conn.execute(text("SELECT action FROM auditevent WHERE id = :i"), {"i": victim}).scalar_one()
        if restored not in ("run", "again"):  # written by _write: approved
            _edit(engine, "UPDATE auditevent SET to_state = 'approved' WHERE id = :i", i=victim)
        assert _broken(engine, program.id) is None, part


def _chain_rows(engine: Engine, program_id: int) -> list[tuple[int, int, str]]:
    with engine.connect() as conn:
        return [(int(i), int(s), str(h)) for i, s, h in conn.execute(text(
            "SELECT id, chain_seq, chain_hash FROM auditevent WHERE chain = :c ORDER BY chain_seq"), {"c": program_id})]


def test_a_bulk_write_is_one_sha256_link_and_its_rows_are_named_by_their_locators(engine: Engine) -> None:
    """Format 2 (models/audit.py, BULK_MARK): a bulk write's last row carries one sha256 link over every row's
    body, the others a crc32 locator. An edit anywhere in the link breaks the chain; the locators name the row."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before = _chained(engine, program.id)
    n = PRESEAL_ROWS + 5
    _write_format_2(engine, program.id, n)
    chain = _chain_rows(engine, program.id or 0)[before:]
    assert len(chain) == n and [len(h) for _, _, h in chain] == [8] * (n - 1) + [64]
    assert _verify(engine, program.id).broken is None
    for victim, position in ((chain[3][0], before + 4), (chain[-1][0], before + n)):
        with engine.begin() as conn:
            conn.execute(text("UPDATE auditevent SET actor = '李伪造' WHERE id = :i"), {"i": victim})
        broken = _verify(engine, program.id).broken
        assert broken is not None and (broken.kind, broken.audit_id, broken.position) == ("edited", victim, position)
        with engine.begin() as conn:
            conn.execute(text("UPDATE auditevent SET actor = '张审核' WHERE id = :i"), {"i": victim})
        assert _verify(engine, program.id).broken is None


def test_an_edited_row_whose_locator_was_recomputed_still_breaks_its_bulk_link(engine: Engine) -> None:
    """crc32 is no evidence: an editor can recompute a locator. The link's sha256 still fails; the link's last
    row is named then, as the locators no longer point anywhere."""
    from sqlalchemy import select

    from core.audit_chain import AUDIT, _content
    from core.bulk import PRESEAL_ROWS
    from models.audit import locator, row_body

    program = make_program(engine)
    before = _chained(engine, program.id)
    _write_format_2(engine, program.id, PRESEAL_ROWS + 1)
    chain = _chain_rows(engine, program.id or 0)[before:]
    victim, position = chain[10][0], chain[10][1]
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET reason = '补录' WHERE id = :i"), {"i": victim})
        values = tuple(conn.execute(select(*_content(conn)).where(AUDIT.c.id == victim)).one())
        conn.execute(text("UPDATE auditevent SET chain_hash = :h WHERE id = :i"),
                     {"h": locator(row_body(position, values)), "i": victim})
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id) == ("edited", chain[-1][0])


def test_a_row_inserted_into_a_bulk_link_with_the_rest_renumbered_is_named(engine: Engine) -> None:
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before = _chained(engine, program.id)
    _write_format_2(engine, program.id, PRESEAL_ROWS + 10)
    chain = _chain_rows(engine, program.id or 0)[before:]
    at = chain[5][1]
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET chain_seq = chain_seq + 100000 WHERE chain = :c AND chain_seq >= :s"),
                     {"c": program.id, "s": at})
        conn.execute(text("UPDATE auditevent SET chain_seq = chain_seq - 99999 WHERE chain = :c AND chain_seq > 100000"),
                     {"c": program.id})
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at, chain, chain_seq, "
            "chain_hash) SELECT program_id, entity, '999', action, actor, role, data, at, chain, :s, chain_hash "
            "FROM auditevent WHERE id = :i"), {"i": chain[5][0], "s": at})
        forged = int(conn.execute(text("SELECT max(id) FROM auditevent")).scalar_one())
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id, broken.position) == ("inserted", forged, at)


def test_a_bulk_links_last_row_cut_off_the_end_is_named(engine: Engine) -> None:
    """Its other rows are proven by nothing then: the chain is named cut from the link's first row on."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before = _chained(engine, program.id)
    _write_format_2(engine, program.id, PRESEAL_ROWS + 1)
    chain = _chain_rows(engine, program.id or 0)[before:]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": chain[-1][0]})
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id, broken.position) == ("deleted", None, before + 1)


def test_format_1_rows_before_and_after_a_bulk_link_verify_and_an_edit_in_each_is_named(engine: Engine) -> None:
    """Rows sealed one link each (format 1: every row written before format 2, and every row a commit seals) and a
    bulk link in one chain: the reader tells them apart by the hash's length, and names an edit in either."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    before = _chained(engine, program.id)
    _write(engine, program.id, 5)
    _write_format_2(engine, program.id, PRESEAL_ROWS + 2, start=5)
    _write(engine, program.id, 5, start=PRESEAL_ROWS + 7)
    chain = _chain_rows(engine, program.id or 0)[before:]
    assert [len(h) for _, _, h in chain] == [64] * 5 + [8] * (PRESEAL_ROWS + 1) + [64] * 6
    assert _verify(engine, program.id).broken is None
    for index in (2, 5 + PRESEAL_ROWS // 2, len(chain) - 2):
        victim = chain[index][0]
        with engine.begin() as conn:
            conn.execute(text("UPDATE auditevent SET entity_id = '伪' WHERE id = :i"), {"i": victim})
        broken = _verify(engine, program.id).broken
        assert broken is not None and (broken.kind, broken.audit_id) == ("edited", victim)
        with engine.begin() as conn:
            conn.execute(text("UPDATE auditevent SET entity_id = :e WHERE id = :i"), {"e": str(index), "i": victim})
        assert _verify(engine, program.id).broken is None


def _head(engine: Engine, program_id: int) -> tuple[int, str]:
    with engine.connect() as conn:
        seq, digest = conn.execute(text("SELECT seq, hash FROM auditchainhead WHERE chain = :c"),
                                   {"c": program_id}).one()
    return int(seq), str(digest)


def test_a_forged_link_row_is_named_by_verify_and_cannot_stand_in_for_a_recorded_head(engine: Engine) -> None:
    """A link row that proves none of the chain's rows was inserted by hand: verify names it, and the check against
    the heads recorded outside the database does not take it for the real link ending at the recorded place (two
    links ending at one place: one is forged)."""
    from core.audit_chain import check_recorded
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 3)
    recorded = _verify(engine).heads
    seq, digest = _head(engine, program.id or 0)
    with engine.connect() as conn:
        assert check_recorded(conn, recorded) is None
    _edit(engine, "INSERT INTO auditlink (chain, first_seq, last_seq, hash, locators) VALUES (:c, -1, :s, :h, :l)",
          c=program.id, s=seq, h=digest, l=b"")
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.position, broken.link) == ("inserted", -1, True)
    assert "链接记录" in broken.message() and "link row" in broken.message()
    with engine.connect() as conn:
        forged = check_recorded(conn, recorded)
    assert forged is not None and (forged.kind, forged.position) == ("edited", seq)


def test_a_bulk_write_committed_while_verify_walks_the_chain_is_not_a_break(engine: Engine) -> None:
    """The daily check runs while flows write: a bulk write that commits after verify read the chain's links (its
    rows and its link commit together) is read with its link, not reported as rows whose link was removed."""
    from sqlalchemy import event

    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 3)
    wrote: list[bool] = []

    def write_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not wrote and "FROM auditevent" in statement and "chain_seq >" in statement:
            wrote.append(True)  # the walk's first batch: the links were read just before
            _moved_with_reasons(engine, program.id, PRESEAL_ROWS + 5)

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", write_once)
        report = verify_chain(conn, program.id)
    assert wrote and report.broken is None
    assert report.heads[program.id or 0][0] == _head(engine, program.id or 0)[0]


@pytest.mark.parametrize("place", ["no chain", "before the first"])
def test_a_row_inserted_with_a_place_no_walk_reaches_is_named(engine: Engine, place: str) -> None:
    """A row given a place by hand but no chain, or a place before the chain's first, is outside the chain."""
    program = make_program(engine)
    _write(engine, program.id, 5)
    chain, seq = (None, 3) if place == "no chain" else (program.id, 0)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at, chain, chain_seq) "
            "SELECT program_id, entity, '999', action, actor, role, data, at, :c, :s FROM auditevent WHERE id = :i"),
            {"i": _ids(engine, program.id or 0)[1], "c": chain, "s": seq})
        forged = int(conn.execute(text("SELECT max(id) FROM auditevent")).scalar_one())
    broken = _verify(engine, program.id).broken
    assert broken is not None and (broken.kind, broken.audit_id) == ("inserted", forged)


def test_a_row_put_after_the_chains_head_is_not_sealed_into_the_next_bulk_write(engine: Engine) -> None:
    """A bulk write seals exactly the rows it wrote: a row planted where its rows end is refused, not linked in."""
    from core.bulk import PRESEAL_ROWS

    program = make_program(engine)
    _write(engine, program.id, 5)
    seq, _ = _head(engine, program.id or 0)
    n = PRESEAL_ROWS + 3
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at, chain, chain_seq) "
            "SELECT program_id, entity, '999', action, actor, role, data, at, chain, :s FROM auditevent WHERE id = :i"),
            {"i": _ids(engine, program.id or 0)[1], "s": seq + n + 1})
    with pytest.raises(RuntimeError, match="this write wrote"):
        _moved_with_reasons(engine, program.id, n)
    assert _head(engine, program.id or 0)[0] == seq  # nothing of the refused write stayed


def test_a_bulk_write_that_moves_no_rows_between_two_rows_of_one_transaction_keeps_the_chain(engine: Engine) -> None:
    """A decision's own row, then its items' bulk transition that moves nothing, then another row, one commit: the
    first row is sealed when the bulk write takes the chain's head, and the head moves past it even though no bulk
    row follows — the commit seals the last row after it, not onto its place."""
    from sqlalchemy import Integer, select

    from core.bulk import audit_from_select, json_rows

    program = make_program(engine)

    def one(session: Any, entity_id: int) -> None:
        write_audit(session, [AuditRecord(
            entity="gate", entity_id=entity_id, action="decide", from_state="open", to_state="decided", actor="张审核",
            role=Role.DISTRICT_REVIEWER, at=shanghai(2025, 9, 1, 10), reason=None, program_id=program.id, data={})])

    with transaction(engine) as session:
        one(session, 1)
        items = json_rows(session, "items", [("entity_id", Integer())], [])
        assert audit_from_select(session, select(items.c.entity_id, literal_column("NULL").label("reason")),
                                 entity="application", action="run", from_state="approved", to_state="running",
                                 actor="系统", role=Role.SYSTEM, at=shanghai(2025, 9, 2, 8), program_id=program.id,
                                 data={}) == 0
        one(session, 2)
    report = _verify(engine, program.id)
    assert report.broken is None
    with engine.connect() as conn:
        places = conn.execute(text("SELECT chain_seq FROM auditevent WHERE chain = :c AND entity = 'gate' "
                                   "ORDER BY id"), {"c": program.id}).scalars().all()
    assert places[1] == places[0] + 1 and report.heads[program.id or 0][0] == places[1]
