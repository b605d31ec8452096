"""The bulk writers every task relies on: exact counts of what was new, exactly-once notices, no parameter limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, Integer, Text, cast, func, literal, select
from sqlmodel import Session

from core.bulk import (
    audit_from_select,
    insert_ignoring_conflicts,
    insert_rows,
    json_bool,
    json_object,
    json_rows,
    json_text,
    table_of,
    write_audit,
)
from models.audit import AuditEvent
from models.enrollment import Application, Institution
from models.outbox import Notice
from models.states import InstitutionKind, NoticeStatus, Role
from models.transitions import AuditRecord
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices, enqueue_notices_from
from tests.factories import make_applications, make_institution, make_program, shanghai

NOW = datetime(2025, 9, 12, 2, tzinfo=UTC)


def _draft(n: int, email: str | None = "a@example.cn") -> NoticeDraft:
    return NoticeDraft(key=f"test:{n}", kind="account_reminder", recipient_type="institution",
                       recipient_name=f"机构{n}", email=email, context={"n": n, "名称": "沈阳“三进”"}, recipient_id=n)


def test_a_notice_is_enqueued_once_however_often_it_is_asked_for(engine: Engine) -> None:
    with Session(engine) as session:
        assert enqueue_notices(session, [_draft(1), _draft(2)], NOW) == 2
        assert enqueue_notices(session, [_draft(2), _draft(3), _draft(3)], NOW) == 1  # only 3 is new
        session.commit()
        notices = {n.idempotency_key: n for n in session.execute(select(Notice)).scalars()}
    assert sorted(notices) == ["test:1", "test:2", "test:3"]
    assert notices["test:1"].context == {"n": 1, "名称": "沈阳“三进”"}
    assert notices["test:1"].attempts == 0 and notices["test:1"].next_attempt_at == NOW


def test_a_notice_without_address_is_kept_for_follow_up_not_sent(engine: Engine) -> None:
    with Session(engine) as session:
        enqueue_notices(session, [_draft(1, email=None), _draft(2, email="")], NOW)
        session.commit()
        rows = session.execute(select(Notice.status, Notice.next_attempt_at)).all()
    assert rows == [(NoticeStatus.NO_ADDRESS, None)] * 2


def test_notices_written_by_the_database_count_only_the_new_ones(engine: Engine) -> None:
    program = make_program(engine)
    insts = [make_institution(engine, email=e) for e in ("x@example.cn", None)]
    make_applications(engine, program, insts, submitted_at=shanghai(2025, 9, 12, 10))
    inst = table_of(Institution)
    with Session(engine) as session:
        def source() -> object:
            return select(
                (literal("welcome:") + cast(inst.c.id, Text)).label("idempotency_key"),
                literal(program.id, Integer).label("program_id"), literal("welcome").label("kind"),
                literal("institution").label("recipient_type"), inst.c.id.label("recipient_id"),
                inst.c.name.label("recipient_name"), inst.c.email.label("email"),
                json_object(session, {"name": inst.c.name, "program": json_text(session, "沈阳"),
                                      "first": json_bool(session, inst.c.id == insts[0].id)}).label("context"))
        assert enqueue_notices_from(session, source(), NOW) == 2  # type: ignore[arg-type]
        assert enqueue_notices_from(session, source(), NOW) == 0  # type: ignore[arg-type]
        session.commit()
        notices = {n.recipient_id: n for n in session.execute(select(Notice)).scalars()}
    first, second = (notices[i.id] for i in insts)
    assert first.context == {"name": insts[0].name, "program": "沈阳", "first": True}
    assert second.context["first"] is False  # a JSON boolean on SQLite too, not 0
    assert (first.status, first.next_attempt_at) == (NoticeStatus.PENDING, NOW)
    assert (second.status, second.next_attempt_at) == (NoticeStatus.NO_ADDRESS, None)


def test_inserting_counts_exactly_the_rows_that_were_new(engine: Engine) -> None:
    rows = [{"name": f"机构{n}", "address": "沈阳", "uscc": f"USCC{n:014d}", "legal_rep": "张三",
             "insurance_code": f"H{n:011d}", "contact_name": "李四", "phone": "13800000000", "email": None,
             "district": "和平区", "kind": InstitutionKind.VILLAGE_CLINIC} for n in range(5)]
    with Session(engine) as session:
        assert insert_ignoring_conflicts(session, Institution, rows[:3], ["uscc"]) == 3
        assert insert_ignoring_conflicts(session, Institution, rows, ["uscc"]) == 2
        session.commit()
        stored = session.execute(select(Institution).where(Institution.uscc == rows[4]["uscc"])).scalars().one()
    assert stored.kind == InstitutionKind.VILLAGE_CLINIC
    assert stored.special_designated is False and stored.private_tertiary is False  # column defaults applied


def test_audit_rows_from_python_and_from_the_database_read_back_the_same(engine: Engine) -> None:
    program = make_program(engine)
    apps = make_applications(engine, program, [make_institution(engine)], submitted_at=shanghai(2025, 9, 12, 10))
    app = table_of(Application)
    with Session(engine) as session:
        write_audit(session, [AuditRecord(entity="application", entity_id=apps[0], action="district_approve",
                                          from_state="submitted", to_state="district_approved", actor="审核员",
                                          role=Role.DISTRICT_REVIEWER, at=NOW, program_id=program.id,
                                          data={"gate_id": 7})])
        assert audit_from_select(session, select(app.c.id.label("entity_id"), literal(None, Text).label("reason")),
                                 entity="application", action="district_approve", from_state="submitted",
                                 to_state="district_approved", actor="审核员", role=Role.DISTRICT_REVIEWER, at=NOW,
                                 program_id=program.id, data={"gate_id": 7}) == 1
        session.commit()
        python_row, sql_row = session.execute(select(AuditEvent).where(AuditEvent.entity == "application")
                                              .order_by(AuditEvent.id)).scalars().all()
    def fields(a: AuditEvent) -> tuple[object, ...]:
        return (a.program_id, a.entity, a.entity_id, a.action, a.from_state, a.to_state, a.actor, a.role, a.reason,
                a.data, a.at)
    assert fields(python_row) == fields(sql_row)


def test_a_set_of_ids_beyond_the_postgresql_parameter_limit_is_one_parameter(engine: Engine) -> None:
    many = list(range(1, 70_001))  # > 65,535: an IN list would fail on PostgreSQL
    with Session(engine) as session:
        ids = json_rows(session, "many", [("id", Integer())], [(i,) for i in many])
        pairs = json_rows(session, "pairs", [("id", Integer()), ("reason", Text())],
                          [(i, "原因" if i % 2 else None) for i in many])
        assert session.execute(select(func.count(), func.sum(ids.c.id))).one() == (len(many), sum(many))
        assert session.execute(select(func.count(pairs.c.reason), func.max(pairs.c.id))).one() == (35_000, 70_000)


def test_bulk_inserts_of_plain_rows_report_their_count(engine: Engine) -> None:
    program = make_program(engine)
    rows = [{"program_id": program.id, "entity": "program", "entity_id": str(program.id), "action": "note",
             "from_state": None, "to_state": None, "actor": "system", "role": Role.SYSTEM, "reason": None,
             "data": {"i": i, "nested": {"a": [1, 2]}}, "at": NOW} for i in range(3)]
    with Session(engine) as session:
        assert insert_rows(session, AuditEvent, rows) == 3
        session.commit()
        data = session.execute(select(AuditEvent.data).where(AuditEvent.action == "note")
                               .order_by(AuditEvent.id)).scalars().all()
    assert data == [{"i": i, "nested": {"a": [1, 2]}} for i in range(3)]


def test_a_bulk_write_on_postgresql_leaves_the_planner_fresh_row_statistics(engine: Engine) -> None:
    """Stale statistics after 100,000 new rows made the planner pick nested loops that ran for minutes."""
    from core.bulk import BULK_ANALYZE_ROWS, refresh_statistics

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans without row statistics: nothing to refresh")
    with Session(engine) as session:
        n = enqueue_notices(session, [_draft(i) for i in range(BULK_ANALYZE_ROWS)], NOW)
        refresh_statistics(session, n, Notice)
        estimate = session.connection().exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE relname = 'notice' AND relnamespace = current_schema()::regnamespace"
        ).scalar_one()
        assert estimate == BULK_ANALYZE_ROWS


def test_values_every_row_shares_are_stored_as_bound_values_are_and_written_once(engine: Engine) -> None:
    """A bulk insert's shared values (quotes, Chinese, JSON, an enum, a time, a flag, NULL, and on SQLite a NUL,
    which a statement's text cannot hold) read back exactly as given; on SQLite they are not bound in every row."""
    from sqlalchemy import event

    from core.bulk import insert_columns

    odd = "O'Brien “三进” '' \\ %s ?" + ("\x00" if engine.dialect.name == "sqlite" else "")
    shared = {"program_id": None, "kind": "account_reminder", "recipient_type": "institution", "email": odd,
              "context": {"名称": "沈阳“三进”", "q": "it's"}, "status": NoticeStatus.PENDING, "attempts": 0,
              "created_at": NOW, "maybe_delivered": True, "subject": "主题 'x'"}
    bound: list[int] = []

    def widths(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith('INSERT INTO notice') and executemany:
            bound.append(len(parameters[0]))

    event.listen(engine, "before_cursor_execute", widths)
    try:
        with Session(engine) as session:
            insert_columns(session, table_of(Notice), {"idempotency_key": [f"k:{i}" for i in range(3)],
                                                        "recipient_name": [f"机构{i}" for i in range(3)]}, shared)
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", widths)
    with Session(engine) as session:
        notices = session.execute(select(Notice).order_by(Notice.id)).scalars().all()
    assert [n.recipient_name for n in notices] == ["机构0", "机构1", "机构2"]
    for n in notices:
        assert (n.program_id, n.kind, n.recipient_type, n.email, n.context, n.status, n.attempts, n.created_at,
                n.maybe_delivered, n.subject) == tuple(shared.values())
    if engine.dialect.name == "sqlite":
        assert bound == [3]  # the two per-row columns and the e-mail holding NUL; everything else in the text


def test_a_sealed_bulk_audit_write_binds_only_what_differs_per_row_and_still_verifies(engine: Engine) -> None:
    """The import's 100,000 submissions: the ten values every row shares go into the statement once (SQLite), the
    rows are sealed as written, and the chain verifies."""
    from sqlalchemy import event

    from core.audit_chain import verify_chain
    from core.bulk import PRESEAL_ROWS, insert_columns

    program = make_program(engine)
    n = PRESEAL_ROWS + 10
    bound: list[int] = []

    def widths(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO auditevent") and executemany:
            bound.append(len(parameters[0]))

    event.listen(engine, "before_cursor_execute", widths)
    try:
        with Session(engine) as session:
            insert_columns(session, table_of(AuditEvent), {"entity_id": [str(i) for i in range(n)]}, {
                "program_id": program.id, "entity": "application", "action": "submit", "from_state": None,
                "to_state": "submitted", "actor": "张'三", "role": Role.SYSTEM, "reason": None, "at": NOW,
            }, stored={"data": [f'{{"row": {i}}}' for i in range(n)]})
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", widths)
    with Session(engine) as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.action == "submit")
                               .order_by(AuditEvent.id)).scalars().all()
    assert [(r.entity_id, r.actor, r.at, r.data, r.chain) for r in rows[:2]] == [
        ("0", "张'三", NOW, {"row": 0}, program.id), ("1", "张'三", NOW, {"row": 1}, program.id)]
    assert len(rows) == n and all(r.chain_seq is not None for r in rows)
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert report.broken is None and report.rows >= n
    if engine.dialect.name == "sqlite":
        assert bound == [4]  # entity id, data, id and place in the chain


def test_a_shared_integer_beyond_64_bits_is_refused_as_when_bound_not_stored_as_a_float(engine: Engine) -> None:
    from core.bulk import insert_columns

    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's COPY refuses it in its own words")
    with Session(engine) as session, pytest.raises(OverflowError):
        insert_columns(session, table_of(Notice), {"idempotency_key": ["k:1", "k:2"], "recipient_name": ["a", "b"]},
                       {"kind": "account_reminder", "recipient_type": "institution", "context": {},
                        "status": NoticeStatus.PENDING, "attempts": 1 << 63, "created_at": NOW})
