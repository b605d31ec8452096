"""The outbox and the audit trail are paged and filterable (program, entity, user, date; status, kind, recipient)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert
from sqlmodel import Session
from starlette.testclient import TestClient

from models.audit import AuditEvent
from models.outbox import Notice
from models.states import NoticeStatus, Role
from tests.factories import shanghai
from tests.web.conftest import SLUG, World, sign_in


def _notices(world: World, n: int) -> None:
    start = shanghai(2025, 9, 1, 9)
    with Session(world.engine) as session:
        session.execute(insert(Notice), [
            {"idempotency_key": f"records-{i}", "program_id": world.program.id,
             "kind": "account_reminder" if i % 2 else "application_decision", "recipient_type": "institution",
             "recipient_name": f"机构{i:03d}", "email": f"inst{i:03d}@example.cn" if i % 10 else None, "context": {},
             "status": NoticeStatus.DEAD if i % 10 == 0 else NoticeStatus.SENT, "attempts": 1,
             "created_at": start + timedelta(days=i // 10)} for i in range(120)])
        session.commit()


def test_the_outbox_is_paged_newest_first_and_counts_each_status(world: World, client: TestClient) -> None:
    _notices(world, 120)
    sign_in(client, "manager")
    first = client.get("/notices").text
    assert "第 1 页 / 共 3 页（120 条）" in first and first.count('name="notice"') == 5  # dead ones on this page
    assert "机构119" in first and "机构069" not in first
    third = client.get("/notices?page=3").text
    assert "机构019" in third and "机构000" in third and "机构119" not in third
    assert "发送失败</a>：<b>12</b>" in first and "已发送</a>：<b>108</b>" in first


def test_the_outbox_filters_by_program_status_kind_recipient_and_date(world: World, client: TestClient) -> None:
    _notices(world, 120)
    sign_in(client, "observer")
    dead = client.get("/notices?status=dead").text
    assert "共 12 条" in dead or "（12 条）" in dead
    kind = client.get("/notices?kind=account_reminder&per_page=200").text
    assert kind.count("<td>账户注册提醒</td>") == 60 and "<td>机构申请审核结果</td>" not in kind
    assert client.get("/notices?recipient=inst007@").text.count("<tr><td>") <= 1
    assert "机构007" in client.get("/notices?recipient=inst007@").text
    dated = client.get("/notices?since=2025-09-02&until=2025-09-02&per_page=200").text
    assert "机构010" in dated and "机构019" in dated and "机构009" not in dated and "机构020" not in dated
    assert "没有通知" in client.get("/notices?program=jiangxi-2025").text
    assert client.get("/notices?since=2025-13-01").status_code == 400
    assert 'name="notice"' not in dated  # an observer resends nothing


def test_the_audit_trail_is_paged_and_filterable_by_program_entity_user_and_date(world: World,
                                                                                 client: TestClient) -> None:
    at = shanghai(2025, 9, 25, 9)
    with Session(world.engine) as session:
        session.execute(insert(AuditEvent), [
            {"program_id": world.program.id, "entity": "application", "entity_id": str(i), "action": "note",
             "actor": "alice" if i % 2 else "bob", "role": Role.PROGRAM_MANAGER, "data": {},
             "at": at + timedelta(minutes=i)} for i in range(130)])
        session.commit()
    sign_in(client, "manager")
    mine = f"/audit?program={SLUG}&entity=application&actor=alice&since=2025-09-25&until=2025-09-25"
    first = client.get(mine).text
    assert first.count("alice（") == 50 and "bob（" not in first and 'rel="next"' in first
    assert "机构申请（第129号）" in first  # newest first; no such application, so its number stands in
    second = client.get(mine + "&page=2").text
    assert second.count("alice（") == 15 and 'rel="next"' not in second and 'rel="prev"' in second
    assert "没有符合条件的记录" in client.get(mine.replace("2025-09-25&until", "2025-09-26&until")).text
    one = client.get("/audit?entity=application&entity_id=7").text
    assert "机构申请（第7号）</td>" in one and one.count("<tr><td>") == 1
    assert client.get("/audit?page=-1").status_code == 400


def test_a_list_version_pages_its_entries_and_its_changes(world: World, client: TestClient) -> None:
    from sqlalchemy import select

    from models.catalog import ListVersion
    from tests.web.test_pages import _run_to_published_list

    _run_to_published_list(world, client)
    with Session(world.engine) as session:
        version = session.execute(select(ListVersion)).scalar_one()
    first = client.get(f"/lists/{version.id}?per_page=3").text
    second = client.get(f"/lists/{version.id}?per_page=3&page=2").text
    assert first.count('<tr class="added">') == 3 and second.count('<tr class="added">') == 1
    assert "第 1 页 / 共 2 页（4 条）" in first
    added = client.get(f"/lists/{version.id}?show=added").text
    assert added.count('<tr class="">') == 4 and "新增的条目" in added  # every entry of the first version is new
    assert "没有条目" in client.get(f"/lists/{version.id}?show=removed").text
    assert client.get(f"/lists/{version.id}?show=bogus").status_code == 400


def test_a_reviewers_outbox_status_counts_are_the_notices_its_scope_lets_it_read(world: World, client: TestClient) -> None:
    """The counts go through the recipient index (tasks.trust.scope.notice_counts), not notice_scope per notice:
    they must still count exactly what notice_scope shows — its districts' institutions and itself, never an
    enterprise or another user that shares an id with one of them — per program and in all."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from models.enrollment import Institution
    from models.program import User
    from tasks.trust.scope import notice_counts, notice_scope

    statuses = [NoticeStatus.PENDING, NoticeStatus.NO_ADDRESS, NoticeStatus.SENT]
    with Session(world.engine) as session:
        institutions = session.execute(select(col(Institution.id), col(Institution.name))).all()
        users = {u.name: u for u in session.execute(select(User)).scalars()}
        rows = [{"recipient_type": "institution", "recipient_id": i, "recipient_name": name} for i, name in institutions]
        rows += [{"recipient_type": "user", "recipient_id": u.id, "recipient_name": u.name} for u in users.values()]
        rows += [{"recipient_type": kind, "recipient_id": i, "recipient_name": "同号的其他收件人"}
                 for kind in ("enterprise", "city") for i, _ in institutions]
        session.execute(insert(Notice), [
            {**r, "idempotency_key": f"scope-{k}", "program_id": world.program.id if k % 4 else None,
             "kind": "application_decision", "context": {}, "status": statuses[k % 3],
             "created_at": shanghai(2025, 9, 1, 9)} for k, r in enumerate(rows)])
        session.commit()
        for name in [*world.reviewers.values(), "manager"]:
            user = users[name]
            scope = notice_scope(user)
            for program_id in (None, world.program.id):
                where = [c for c in (scope, col(Notice.program_id) == program_id if program_id else None) if c is not None]
                expected = {str(getattr(s, "value", s)): int(n) for s, n in session.execute(
                    select(col(Notice.status), func.count()).where(*where).group_by(Notice.status)).all()}
                assert notice_counts(session, user, program_id=program_id) == expected, (name, program_id)
    page = sign_in(client, world.reviewers["和平区"]).get("/notices").text
    assert "发件箱" in page


def test_a_compliance_pass_row_on_the_audit_trail_names_its_rule_and_how_many_violations_in_chinese(
        world: World, client: TestClient) -> None:
    with Session(world.engine) as session:
        session.execute(insert(AuditEvent), [
            {"program_id": world.program.id, "entity": "violation", "entity_id": "late_delivery",
             "action": "violation_opened", "to_state": "open", "actor": "system", "role": Role.SYSTEM,
             "data": {"rule": "late_delivery", "violations": 12345, "ids": [[1, 12345]], "sha256": "0" * 64},
             "at": shanghai(2026, 1, 10, 9)}])
        session.commit()
    sign_in(client, "manager")
    page = client.get(f"/audit?program={SLUG}&entity=violation").text
    assert "违规记录 · 超时配送 · 12,345 条" in page and "— → 未整改" in page and "late_delivery" not in page.replace('value="late_delivery"', "")


def test_one_entitys_history_is_looked_up_by_its_id_not_walked_through_its_kind(world: World,
                                                                                client: TestClient) -> None:
    """The audit page for one entity (`entity` + `entity_id`) reads that entity's few rows through the narrow
    (entity_id, entity) index and sorts them (migration 0034). SQLite keeps no statistics: shown the kind's
    (entity, at, id) index as well, it walks every row of the kind newest first to skip the sort."""
    from sqlalchemy import event

    at = shanghai(2025, 9, 25, 9)
    with Session(world.engine) as session:
        session.execute(insert(AuditEvent), [
            {"program_id": world.program.id, "entity": "application", "entity_id": str(i % 40), "action": "note",
             "actor": "alice", "role": Role.PROGRAM_MANAGER, "data": {}, "at": at + timedelta(minutes=i)}
            for i in range(200)])
        session.commit()
    sign_in(client, "manager")
    seen: list[tuple[str, object]] = []

    def record(conn: object, cursor: object, statement: str, parameters: object, context: object,
               executemany: bool) -> None:
        if "FROM auditevent" in statement and "entity_id" in statement.split("WHERE", 1)[-1]:
            seen.append((statement, parameters))

    event.listen(world.engine, "before_cursor_execute", record)
    try:
        page = client.get(f"/audit?program={SLUG}&entity=application&entity_id=7&since=2025-09-01").text
    finally:
        event.remove(world.engine, "before_cursor_execute", record)
    assert page.count("机构申请（第7号）</td>") == 5  # 7, 47, 87, 127, 167
    assert seen, "the page read no audit rows by entity id"
    if world.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans from statistics: no hint, nothing to check here
    with world.engine.connect() as conn:
        for statement, parameters in seen:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                         parameters).all())
            assert "ix_audit_entity_id (entity_id=?)" in plan, plan
