"""The audit page shows a bulk link's rows although its filter indexes leave them out (migration 0035).

A bulk write's rows (chain format 3: a place, no hash, proved by one `auditlink` row) are most of a trail, and an
entry for each in the (program, at, id), (entity, at, id) and (actor, at, id) indexes cost figure 1 ≈ 0.55 s. The
indexes are partial now; the page reads the other rows through them and a link's rows through the link's first
row, which stands for them all because a link's rows share program, entity, actor and instant. Policy: whatever
the filters and wherever a page starts, the page shows exactly the rows, in exactly the order, that a plain
`ORDER BY at DESC, id DESC` over the filters gives.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, null, select, text
from sqlmodel import Session, col
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

import core.bulk
from core.audit_chain import verify_chain
from core.bulk import audit_from_select, table_of, write_audit
from models.audit import AuditEvent, AuditLink
from models.enrollment import Application
from models.program import User
from models.states import Role
from models.transitions import AuditRecord
from tasks.trust.scope import audit_scope
from tests.factories import make_program, shanghai
from tests.web.conftest import SLUG, World, sign_in
from web.pages_records import _since_until, audit_page_rows
from web.pagination import Page, decode_key, encode_key, page_of

OTHER = "ningxia-2025"
SHARED = shanghai(2025, 10, 1, 9)  # the instant two links and some single rows share


def _record(program_id: int | None, entity: str, entity_id: Any, actor: str, at: datetime) -> AuditRecord:
    return AuditRecord(entity=entity, entity_id=entity_id, action="note", from_state=None, to_state=None, actor=actor,
                       role=Role.PROGRAM_MANAGER if actor != "system" else Role.SYSTEM, reason=None, data={},
                       at=at, program_id=program_id)


def _trail(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows sealed one by one and bulk links, over two programs, three actors and three entity kinds: two links of
    one instant (one chain) with single rows of that instant around them, a link of another program at that instant
    too, and links at instants of their own. Links of three rows and more (the writers' threshold lowered)."""
    monkeypatch.setattr(core.bulk, "PRESEAL_ROWS", 3)
    other = make_program(world.engine, OTHER)
    mine, theirs, apps = world.program.id, other.id, world.apps
    singles = [(mine if i % 3 else theirs, ("application", "gate", "batch")[i % 3], apps[i % len(apps)],
                ("alice", "bob", "system")[i % 4 % 3], SHARED + timedelta(minutes=(i % 7) - 3)) for i in range(40)]
    with Session(world.engine) as session:
        session.execute(insert(table_of(AuditEvent)), [
            {"program_id": p, "entity": e, "entity_id": str(i), "action": "note", "actor": a,
             "role": Role.PROGRAM_MANAGER, "data": {}, "at": at} for p, e, i, a, at in singles[:20]])
        session.commit()
    with Session(world.engine) as session:  # one write: runs of records, two links at SHARED and a short run
        write_audit(session, [
            *[_record(mine, "application", apps[i % len(apps)], "alice", SHARED) for i in range(7)],
            *[_record(mine, "gate", i, "bob", SHARED) for i in range(5)],
            *[_record(mine, "application", apps[i % len(apps)], "alice", SHARED + timedelta(minutes=1))
              for i in range(2)],
            *[_record(mine, "batch", i, "system", SHARED + timedelta(minutes=2)) for i in range(4)]])
        session.commit()
    with Session(world.engine) as session:  # single rows of SHARED written after the links
        session.execute(insert(table_of(AuditEvent)), [
            {"program_id": p, "entity": e, "entity_id": str(i), "action": "note", "actor": a,
             "role": Role.PROGRAM_MANAGER, "data": {}, "at": at} for p, e, i, a, at in singles[20:]])
        session.commit()
    app = table_of(Application)
    for program_id, at in ((theirs, SHARED), (mine, SHARED - timedelta(minutes=2)), (mine, SHARED - timedelta(days=1))):
        with Session(world.engine) as session:  # the enrollment flow's bulk writer: one link per statement
            audit_from_select(session, select(app.c.id.label("entity_id"), null().label("reason"))
                              .where(app.c.id.in_(apps)), entity="application", action="start_running",
                              from_state=None, to_state=None, actor="system", role=Role.SYSTEM, at=at,
                              program_id=program_id)
            session.commit()


def _expected(session: Session, user: User, q: dict[str, str]) -> list[int]:
    """The filter's rows newest first, by a plain query."""
    where: list[Any] = list(_since_until(q, col(AuditEvent.at)))
    if (scope := audit_scope(user)) is not None:
        where.append(scope)
    if q["program"]:
        pid = session.execute(text("SELECT id FROM program WHERE slug = :s"), {"s": q["program"]}).scalar()
        where.append(col(AuditEvent.program_id) == (pid if pid is not None else -1))
    for name in ("entity", "entity_id", "actor"):
        if q[name]:
            where.append(getattr(AuditEvent, name) == q[name])
    return [int(i) for i in session.execute(select(col(AuditEvent.id)).where(*where).order_by(
        col(AuditEvent.at).desc(), col(AuditEvent.id).desc())).scalars()]


def _page(session: Session, user: User, q: dict[str, str], **params: str) -> tuple[Page, list[AuditEvent]]:
    pager = page_of("/audit", QueryParams({**params, "per_page": params.get("per_page", "3")}), q, keyset=True)
    fetched = audit_page_rows(session, user, dict(q), pager)
    shown = fetched[:pager.per_page]
    rows = list(reversed(shown)) if pager.backwards else shown
    return pager.keyed([(e.at.isoformat(), int(e.id or 0)) for e in rows], len(fetched)), rows


def _walk(session: Session, user: User, q: dict[str, str]) -> list[int]:
    """Every page from the first by the 下一页 cursor, as the page's links go."""
    pager, rows = _page(session, user, q)
    seen = [int(e.id or 0) for e in rows]
    while pager.has_next:
        assert pager.last_key is not None
        pager, rows = _page(session, user, q, after=encode_key(pager.last_key))
        seen += [int(e.id or 0) for e in rows]
    return seen


FILTERS = [dict(zip(("program", "entity", "actor"), combo, strict=True)) for combo in itertools.product(
    ("", SLUG, OTHER), ("", "application", "gate", "batch"), ("", "alice", "system"))]


def test_every_filter_pages_through_exactly_the_rows_of_a_plain_newest_first_query(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _trail(world, monkeypatch)
    with Session(world.engine) as session:
        assert session.execute(select(AuditLink)).all(), "the trail has bulk links"
        manager = session.execute(select(User).where(User.name == "manager")).scalar_one()
        reviewer = session.execute(select(User).where(User.name == world.reviewers["和平区"])).scalar_one()
        checked = 0
        for user, filters in [*((manager, f) for f in FILTERS),
                              (reviewer, {"program": SLUG, "entity": "application", "actor": ""}),
                              (reviewer, {"program": "", "entity": "", "actor": "system"})]:
            for dates in ({}, {"since": "2025-10-01", "until": "2025-10-01"}):
                q = {"program": "", "entity": "", "entity_id": "", "actor": "", "since": "", "until": "",
                     **filters, **dates}
                expected = _expected(session, user, q)
                assert _walk(session, user, q) == expected, q
                checked += bool(expected)
                if len(expected) > 4:  # the second page by number, the last page, and back from the last page
                    assert [e.id for e in _page(session, user, q, page="2")[1]] == expected[3:6], q
                    last, rows = _page(session, user, q, page="9", last="1")
                    assert [e.id for e in rows] == expected[-3:], q
                    assert last.first_key is not None
                    _, before = _page(session, user, q, before=encode_key(last.first_key))
                    assert [e.id for e in before] == expected[-6:-3], q
        assert checked > 40
        one = {"program": SLUG, "entity": "application", "entity_id": str(world.apps[0]), "actor": "", "since": "",
               "until": ""}
        assert [e.id for e in _page(session, manager, one, per_page="100")[1]] == _expected(session, manager, one)
        assert decode_key(encode_key(("x", 1))) == ("x", 1)


def test_the_trail_with_links_of_one_instant_still_verifies(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _trail(world, monkeypatch)
    with Session(world.engine) as session:
        links = session.execute(select(AuditLink)).all()
        assert len(links) >= 5
        rows = session.execute(text("SELECT count(*) FROM auditevent")).scalar_one()
    with world.engine.connect() as conn:
        report = verify_chain(conn)  # every chain, as `sanjin audit verify`
    assert report.broken is None and report.rows == rows, report


def test_a_bulk_write_links_only_rows_of_one_entity_actor_and_instant(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`write_audit` with records that differ in entity, actor or instant links each run of alike records on its
    own; a run too short to link is left to the commit, and many such rows together get a hash each as they are
    written (not one link: the page finds a link's rows through its first row, which must stand for them all)."""
    monkeypatch.setattr(core.bulk, "PRESEAL_ROWS", 3)
    pid, apps = world.program.id, world.apps
    with Session(world.engine) as session:
        write_audit(session, [
            *[_record(pid, "application", apps[i % len(apps)], "alice", SHARED) for i in range(4)],
            _record(pid, "application", apps[0], "bob", SHARED),  # another actor: a run of one, not linked
            *[_record(pid, "gate", i, "bob", SHARED) for i in range(3)],
            *[_record(pid, "gate", i, "bob", SHARED + timedelta(seconds=1)) for i in range(3)],
            *[_record(pid, "gate", i, "bob", SHARED + timedelta(seconds=2 + i)) for i in range(4)]])  # a clock per record
        hashed = session.execute(select(col(AuditEvent.chain_hash)).where(AuditEvent.chain == pid).order_by(
            col(AuditEvent.chain_seq).desc()).limit(4)).scalars().all()
        assert all(h is not None and len(h) == 64 for h in hashed)  # sealed as written, a hash each (format 1)
        session.commit()
        links = session.execute(select(AuditLink).where(AuditLink.chain == pid).order_by(
            col(AuditLink.first_seq))).scalars().all()
        assert [link.last_seq - link.first_seq + 1 for link in links] == [4, 3, 3]
        for link in links:
            members = session.execute(select(AuditEvent.entity, AuditEvent.actor, AuditEvent.at, AuditEvent.program_id)
                                      .where(AuditEvent.chain == link.chain,
                                             col(AuditEvent.chain_seq).between(link.first_seq, link.last_seq))).all()
            assert len(set(members)) == 1, members
        ordered = session.execute(select(AuditEvent.actor, AuditEvent.entity).order_by(col(AuditEvent.chain_seq))
                                  .where(AuditEvent.chain == pid)).all()
        assert [a for a, _ in ordered[-15:]] == ["alice"] * 4 + ["bob"] * 11  # the chain keeps the records' order
        with world.engine.connect() as conn:
            assert verify_chain(conn).broken is None


def _index_sql(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                     "AND tbl_name = 'auditevent'")).all()
        else:
            rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'auditevent' "
                                     "AND schemaname = current_schema()")).all()
    return {str(name): str(sql or "") for name, sql in rows}


def test_the_filter_indexes_leave_out_bulk_link_rows_and_the_others_keep_every_row(engine: Engine) -> None:
    indexes = _index_sql(engine)
    for name in ("ix_audit_program_at", "ix_audit_entity_at", "ix_audit_actor_at"):
        where = indexes[name].split("WHERE", 1)[-1].replace("(", "").replace(")", "").lower()
        assert "chain_hash is not null or chain_seq is null" in where, indexes[name]
    for name in ("ix_audit_at_id", "ix_audit_entity_id", "ux_audit_chain"):
        assert "WHERE" not in indexes[name].upper(), indexes[name]


def test_a_filtered_page_walks_the_partial_index_and_finds_links_by_their_first_row(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite (no statistics) uses a partial index only when the query states its predicate; the links' query
    reads `auditlink` and probes each link's first row by ux_audit_chain, not the audit rows one by one."""
    if world.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan (PostgreSQL's: test_postgres_proves_the_partial_index_from_the_page_query)")
    _trail(world, monkeypatch)
    plans = _plans(world, {"program": SLUG, "entity": "", "actor": "alice"})
    walks = [p for s, p in plans if "auditlink" not in s and "ORDER BY" in s]
    assert walks and all("ix_audit_actor_at (actor=?" in p for p in walks), plans
    linked = [p for s, p in plans if "auditlink" in s]
    assert linked and all(p.startswith("SCAN auditlink") and "ux_audit_chain" in p for p in linked), plans


def _plans(world: World, filters: dict[str, str], settings: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: object, cursor: object, statement: str, parameters: Any, context: object,
               executemany: bool) -> None:
        if "auditevent" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    q = {"program": "", "entity": "", "entity_id": "", "actor": "", "since": "", "until": "", **filters}
    with Session(world.engine) as session:
        manager = session.execute(select(User).where(User.name == "manager")).scalar_one()
        event.listen(world.engine, "before_cursor_execute", record)
        try:
            _page(session, manager, q)
        finally:
            event.remove(world.engine, "before_cursor_execute", record)
    explain = "EXPLAIN QUERY PLAN " if world.engine.dialect.name == "sqlite" else "EXPLAIN "
    with world.engine.connect() as conn:
        for setting in settings:
            conn.exec_driver_sql(setting)
        return [(s, " ".join(str(r[-1]) for r in conn.exec_driver_sql(explain + s, p).all())) for s, p in seen]


def test_postgres_proves_the_partial_index_from_the_page_query(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL proves the partial index's predicate from the page's own query: its filtered walk may use it (a
    small table, so sequential scans and sorts are priced out to show which indexes the query can use at all)."""
    if world.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plan (SQLite's: test_a_filtered_page_walks_the_partial_index_…)")
    _trail(world, monkeypatch)
    with world.engine.begin() as conn:
        conn.execute(text("ANALYZE auditevent"))
    plans = _plans(world, {"program": "", "entity": "", "actor": "alice"},
                   settings=("SET enable_seqscan = off", "SET enable_sort = off"))
    walks = [p for s, p in plans if "auditlink" not in s and "ORDER BY auditevent.at DESC" in s]
    assert walks and all("ix_audit_actor_at" in p for p in walks), plans
    linked = [p for s, p in plans if "auditlink" in s]  # a link's rows by their place in the chain
    assert linked and all("ux_audit_chain" in p for p in linked), plans


def test_the_export_holds_every_row_of_the_filter_bulk_links_included(world: World, client: TestClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The download walks the time index with the filters compared row by row: a link's rows are in it too."""
    _trail(world, monkeypatch)
    sign_in(client, "manager")
    with Session(world.engine) as session:
        manager = session.execute(select(User).where(User.name == "manager")).scalar_one()
        for filters in ({"program": SLUG}, {"actor": "system"}, {"entity": "application", "actor": "alice"},
                        {"program": OTHER, "entity": "application"}):
            q = {"program": "", "entity": "", "entity_id": "", "actor": "", "since": "", "until": "", **filters}
            response = client.get("/audit", params={**filters, "format": "csv"})
            assert response.status_code == 200
            rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:]
            expected = _expected(session, manager, q)
            assert len(rows) == len(expected) and len(expected) > 3, filters


def _flag_mixed_links(engine: Engine) -> int:
    """What migration 0035 does once: list the links whose rows differ (its own statement, run as it is)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "deploy/migrations/versions/0035_audit_filter_partial.py"
    spec = importlib.util.spec_from_file_location("migration_0035", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with engine.begin() as conn:
        conn.execute(text(migration.MIXED))
        return int(conn.execute(text("SELECT count(*) FROM auditlinkmixed")).scalar_one())


def _walk_both_ways(session: Session, user: User, q: dict[str, str]) -> tuple[list[int], list[int]]:
    """Every page by 下一页 from the first, then by 上一页 from the last; a page seen twice fails (no endless loop)."""
    pager, rows = _page(session, user, q, per_page="2")
    forward, pages = [int(e.id or 0) for e in rows], 1
    while pager.has_next:
        assert pager.last_key is not None and pages < 50, "the pager does not move on"
        pager, rows = _page(session, user, q, per_page="2", after=encode_key(pager.last_key))
        forward += [int(e.id or 0) for e in rows]
        pages += 1
    pager, rows = _page(session, user, q, per_page="2", page="99", last="1")
    backward = [int(e.id or 0) for e in rows]
    while pager.has_prev:
        assert pager.first_key is not None and pages < 100, "the pager does not move back"
        pager, rows = _page(session, user, q, per_page="2", before=encode_key(pager.first_key))
        backward = [int(e.id or 0) for e in rows] + backward
        pages += 1
    return forward, backward


def test_a_link_written_before_0035_with_unlike_rows_pages_exactly_like_a_plain_query(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before migration 0035 `write_audit` linked a chain's records whatever their entity, actor or time (a clock
    read per record). The migration lists such links and the page reads their rows one by one, each by its own
    time: every filter, with and without dates, pages forward and back through exactly the plain query's rows
    (read through the link's first row, rows were shown outside the dates, missed, and 下一页 repeated a page)."""
    monkeypatch.setattr(core.bulk, "PRESEAL_ROWS", 3)
    monkeypatch.setattr(core.bulk, "_alike_runs", lambda rows: iter([rows]))  # the old writer: one link
    pid, apps = world.program.id, world.apps
    with Session(world.engine) as session:
        write_audit(session, [
            *[_record(pid, "application", apps[i % len(apps)], "alice", SHARED + timedelta(days=i)) for i in range(4)],
            *[_record(pid, "gate", i, "bob", SHARED + timedelta(days=i, hours=1)) for i in range(3)],
            *[_record(pid, "application", apps[i % len(apps)], "bob", SHARED) for i in range(2)]])
        session.commit()
    assert _flag_mixed_links(world.engine) == 1
    with Session(world.engine) as session:
        manager = session.execute(select(User).where(User.name == "manager")).scalar_one()
        checked = 0
        for filters in ({"actor": "alice"}, {"actor": "bob"}, {"entity": "gate"}, {"entity": "application"},
                        {"program": SLUG}, {"program": SLUG, "actor": "bob", "entity": "application"}):
            for dates in ({}, {"until": "2025-10-01"}, {"since": "2025-10-02"}, {"since": "2025-10-02",
                                                                                 "until": "2025-10-03"}):
                q = {"program": "", "entity": "", "entity_id": "", "actor": "", "since": "", "until": "",
                     **filters, **dates}
                expected = _expected(session, manager, q)
                assert _walk_both_ways(session, manager, q) == (expected, expected), q
                checked += bool(expected)
        assert checked >= 20
