"""People read names, not record numbers or machine timestamps (issue #19: "never an id alone").

Found trying the demo as a manager at the end of session 10: the audit trail read 用户（第2号）, 公布清单（第16号）
and 处理程序（第3号）; a village clinic's application read 代采（上级机构 #151）; a late-delivery ladder's evidence
read 统计起点：2025-09-24T09:00:00+08:00.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, insert, select
from sqlmodel import Session
from starlette.testclient import TestClient

from core.clock_store import DatabaseClock
from models.audit import AuditEvent
from models.catalog import ListVersion
from models.enrollment import Gate, Institution
from models.outbox import Notice
from models.program import User
from models.program_definition import PhaseName
from models.reasons import evidence_text, reason_text
from models.states import GateKind, InstitutionKind, ListKind, Role
from models.windows import WindowClosed
from notifications.render import render_notice
from tasks.outbox.send_notices import render_context
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import ensure_user, make_applications, make_institution, make_program, shanghai
from tests.notifications.samples import sample
from tests.web.conftest import PASSWORD, SLUG, World, csrf_of, sign_in
from web.app import create_app
from web.settings import WebSettings


def test_an_instant_in_evidence_or_a_reason_reads_as_shanghai_time_not_iso_text() -> None:
    assert evidence_text({"超时订单数": 10, "统计起点": "2025-09-24T09:00:00+08:00", "阈值": 3}) == \
        "超时订单数：10；统计起点：2025-09-24 09:00；阈值：3"
    assert reason_text("企业多次超时或拒绝配送（统计起点：2025-09-24T01:00:00Z；超时订单数：10）") == \
        "企业多次超时或拒绝配送（统计起点：2025-09-24 09:00；超时订单数：10）"
    assert evidence_text({"发现日期": "2025-09-24", "订单号": "PO-2025-09-24T1"}) == \
        "发现日期：2025-09-24；订单号：PO-2025-09-24T1"  # a date, or a code that only looks like one, stays as it is


def test_the_audit_trail_names_a_user_a_list_version_and_an_institution(world: World, client: TestClient) -> None:
    with Session(world.engine) as session:
        manager = session.execute(select(User.id).where(User.name == "manager")).scalar_one()
        institution_id, institution_name = session.execute(select(Institution.id, Institution.name)).tuples().first() \
            or (0, "")
        version = ListVersion(program_id=world.program.id, kind=ListKind.DRUGS, number=4, content_hash="0" * 64,
                              published_at=world.clock.now())
        session.add(version)
        session.flush()
        version_id = version.id
        at = datetime.fromisoformat("2025-09-20T10:00:00+08:00")
        common = {"from_state": None, "to_state": None, "data": {}, "actor": "manager", "role": Role.PROGRAM_MANAGER,
                  "at": at}
        session.execute(insert(AuditEvent), [common | row for row in (
            {"program_id": None, "entity": "user", "entity_id": str(manager), "action": "set_password"},
            {"program_id": world.program.id, "entity": "list_version", "entity_id": str(version_id),
             "action": "publish", "to_state": "drugs"},
            {"program_id": world.program.id, "entity": "institution", "entity_id": str(institution_id),
             "action": "update"})])
        session.commit()
    page = sign_in(client, "manager").get("/audit").text
    assert "用户 · 价采处王科长" in page and "公布清单 · 药品清单 第4版" in page and f"医药机构 · {institution_name}" in page
    assert "第" + str(manager) + "号" not in page and f"（第{version_id}号）" not in page
    export = client.get("/audit?format=csv").content.decode("utf-8-sig")
    assert "公布清单 · 药品清单 第4版" in export


def test_a_village_clinic_names_the_institution_that_procures_for_it(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    ensure_user(engine, "manager", Role.PROGRAM_MANAGER, password=PASSWORD, display_name="价采处王科长")
    parent = make_institution(engine, district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    clinic = make_institution(engine, district="和平区", kind=InstitutionKind.VILLAGE_CLINIC, proxy_parent_id=parent.id)
    make_applications(engine, program, [parent, clinic], submitted_at=shanghai(2025, 9, 12, 10))
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 9, 12, 12))
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    with Session(engine) as session:
        gate = session.execute(select(Gate.id).where(Gate.kind == GateKind.DISTRICT_REVIEW)).scalars().first()
    client = TestClient(create_app(engine, settings=WebSettings(secret_key="test-secret-key-0123456789")),
                    raise_server_exceptions=False, follow_redirects=False)
    page = sign_in(client, "manager").get(f"/gates/{gate}").text
    assert f"由{parent.name}代采" in page and "上级机构 #" not in page


def test_a_window_refusal_names_the_phase_in_words_in_both_languages() -> None:
    """The demo's summary printed 'the drug_list window of …': the English half named the phase by its code."""
    message = str(WindowClosed("沈阳市集采药品“三进”工作（2025年）", PhaseName.DRUG_LIST, date(2025, 8, 10),
                               date(2025, 9, 15), date(2025, 8, 7)))
    assert "「征集“三进”集采药品清单」" in message or "药品清单" in message
    assert "the drug list window" in message and "drug_list" not in message


def test_an_enforcement_letter_writes_the_evidence_instant_as_a_letter_would() -> None:
    """The printed 约谈 letter read 统计起点：2025-09-23T09:00:00+08:00 (the reason as the compliance pass keeps it)."""
    context = {**sample("enforcement_notice"),
               "reason": "企业多次超时或拒绝配送（统计起点：2025-09-23T09:00:00+08:00；超时订单数：5；阈值：3）"}
    rendered = render_notice("enforcement_notice", context, strict=True)
    for body in (rendered.text, rendered.html):
        assert "统计起点：2025-09-23 09:00" in body and "T09:00:00" not in body


def test_a_district_rejection_letter_names_the_districts_bureau(world: World, client: TestClient) -> None:
    """The rejection read 区（县）医保局初审结果：未通过 — which bureau, the institution could not tell."""
    sign_in(client, world.reviewers["和平区"])
    gate = world.district_gate("和平区")
    first = gate.items[0]
    client.post(f"/gates/{gate.id}/decide", data={f"item_{first}": "reject", f"reason_{first}": "承诺药品数量不足",
                                                  "csrf_token": csrf_of(client, "/inbox")})
    with Session(world.engine) as session:
        notice = session.execute(select(Notice).where(Notice.kind == "application_decision")).scalars().one()
        rendered = render_notice(notice.kind, render_context(notice, {}), strict=True)
    for body in (rendered.text, rendered.html):
        assert "和平区医疗保障局初审结果" in body and "区（县）医保局" not in body
