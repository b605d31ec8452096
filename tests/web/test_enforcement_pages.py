"""Enforcement on the staff pages: a manager records an enterprise's exit and bad record on its page (the same gate
and bar as the CLI, audited), the bar is shown there; a ladder is started by hand; a district reviewer sees and
decides only its own districts' enforcement gates."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select
from sqlmodel import Session, col
from starlette.testclient import TestClient

from core.clock_store import DatabaseClock
from models.audit import AuditEvent
from models.catalog import Enterprise
from models.compliance.codes import SubjectType, ViolationRule
from models.enforcement import BadRecord, EnforcementCase, EnterpriseExit, LadderState
from models.enrollment import Gate
from models.operations import Violation
from models.states import EnterpriseState, GateKind, GateState, Role
from tasks.enforcement.ladder import reconcile_enforcement
from tests.factories import (
    ensure_user,
    make_enterprise,
    make_institution,
    make_product,
    make_program,
    make_reviewers,
    make_running_application,
    shanghai,
)
from tests.web.conftest import PASSWORD, csrf_of, sign_in
from tests.web.test_no_raw_codes import _raw_codes
from web.app import create_app
from web.settings import WebSettings

SLUG = "shenyang-2025"


def _client(engine: Engine, name: str) -> TestClient:
    app = create_app(engine, settings=WebSettings(secret_key="test-secret-key-0123456789"))
    return sign_in(TestClient(app, raise_server_exceptions=False, follow_redirects=False), name)


def _world(engine: Engine) -> dict[str, object]:
    program = make_program(engine, SLUG)
    make_reviewers(engine, [])
    ensure_user(engine, "manager", Role.PROGRAM_MANAGER, password=PASSWORD)
    ensure_user(engine, "heping", Role.DISTRICT_REVIEWER, districts=["和平区"], password=PASSWORD)
    ensure_user(engine, "shenhe", Role.DISTRICT_REVIEWER, districts=["沈河区"], password=PASSWORD)
    DatabaseClock(engine).set(shanghai(2025, 12, 1, 9))
    enterprise = make_enterprise(engine, "期满制药有限公司")
    make_product(engine, enterprise, name="阿托伐他汀钙片")
    pharmacy = make_institution(engine, district="和平区")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 9, 30, 9))
    return {"program": program, "enterprise": enterprise, "pharmacy": pharmacy}


def test_a_manager_records_an_exit_and_a_bad_record_on_the_enterprise_page_and_sees_the_bar(engine: Engine) -> None:
    world = _world(engine)
    enterprise = world["enterprise"]
    assert isinstance(enterprise, Enterprise)
    manager = _client(engine, "manager")
    url = f"/programs/{SLUG}/enterprises/{enterprise.id}"
    page = manager.get(url).text
    assert "阿托伐他汀钙片" in page and "无不良记录" in page and "登记退出申请" in page
    token = csrf_of(manager, url)
    bad = manager.post(f"{url}/exit", data={"exits_on": "2026-13-01", "reason": "协议期满", "csrf_token": token})
    assert bad.status_code == 303 and "YYYY-MM-DD" in manager.get(url).text  # the refusal, shown on the page
    done = manager.post(f"{url}/exit", data={"exits_on": "2026-01-01", "reason": "协议期满", "csrf_token": token})
    assert done.status_code == 303
    with Session(engine) as session:
        gate = session.execute(select(Gate).where(col(Gate.kind) == GateKind.ENTERPRISE_EXIT)).scalar_one()
        assert gate.state == GateState.OPEN and session.execute(select(EnterpriseExit)).scalar_one().exits_on == \
            date(2026, 1, 1)
    manager.post(f"{url}/bad-record", data={"starts_on": "2025-12-01", "reason": "拒绝配送，情节严重",
                                            "csrf_token": token})
    page = manager.get(url).text
    assert "禁止申报至 2027-11-30（含）" in page and "拒绝配送，情节严重" in page and not _raw_codes(page)
    with Session(engine) as session:
        assert session.execute(select(BadRecord)).scalar_one().recorded_by == "manager"
        assert session.get(Enterprise, enterprise.id).state == EnterpriseState.BARRED  # type: ignore[union-attr]
        bar = session.execute(select(AuditEvent).where(col(AuditEvent.action) == "bar")).scalar_one()
        assert bar.actor == "manager" and bar.reason == "拒绝配送，情节严重"
    assert "限制参与" in manager.get("/audit?entity=enterprise").text  # the bar in the audit trail, in Chinese


def test_a_district_reviewer_may_not_record_a_bad_record_or_an_exit(engine: Engine) -> None:
    world = _world(engine)
    enterprise = world["enterprise"]
    assert isinstance(enterprise, Enterprise)
    reviewer = _client(engine, "heping")
    url = f"/programs/{SLUG}/enterprises/{enterprise.id}"
    assert "记入不良记录</button>" not in reviewer.get(url).text
    token = csrf_of(reviewer, url)
    refused = reviewer.post(f"{url}/bad-record", data={"starts_on": "2025-12-01", "reason": "x", "csrf_token": token})
    assert refused.status_code == 403
    with Session(engine) as session:
        assert session.execute(select(BadRecord)).first() is None


def test_a_reviewer_starts_a_ladder_by_hand_and_another_district_can_neither_see_nor_decide_it(engine: Engine) -> None:
    world = _world(engine)
    pharmacy = world["pharmacy"]
    heping, shenhe = _client(engine, "heping"), _client(engine, "shenhe")
    url = f"/programs/{SLUG}/enforcement"
    foreign = shenhe.post(f"{url}/start", data={"subject_kind": "institution", "subject": pharmacy.insurance_code,  # type: ignore[attr-defined]
                                                "reason": "群众举报", "csrf_token": csrf_of(shenhe, url)})
    assert foreign.status_code == 303 and "无权" in shenhe.get(url).text
    heping.post(f"{url}/start", data={"subject_kind": "institution", "subject": pharmacy.insurance_code,  # type: ignore[attr-defined]
                                      "reason": "群众举报：串换集采药品", "csrf_token": csrf_of(heping, url)})
    with Session(engine) as session:
        case = session.execute(select(EnforcementCase)).scalar_one()
        gate = session.execute(select(Gate).where(col(Gate.kind) == GateKind.ENFORCEMENT)).scalar_one()
    assert case.started_by == "heping" and case.state == LadderState.PROPOSED and gate.district == "和平区"
    page = heping.get(url).text
    assert "群众举报：串换集采药品" in page and "人工启动：heping" in page and not _raw_codes(page)
    assert "群众举报" in heping.get(f"/gates/{gate.id}").text  # the reason is the gate's evidence
    assert "群众举报" not in shenhe.get(url).text  # another district's ladders are not listed
    assert shenhe.get(f"/gates/{gate.id}").status_code == 403
    refused = shenhe.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": csrf_of(shenhe, url)})
    assert refused.status_code == 403
    with Session(engine) as session:
        assert session.get(EnforcementCase, case.id).state == LadderState.PROPOSED  # type: ignore[union-attr]


def test_an_enterprise_disqualified_on_the_gate_page_can_be_given_a_bad_record_there(engine: Engine) -> None:
    world = _world(engine)
    program, enterprise = world["program"], world["enterprise"]
    assert isinstance(enterprise, Enterprise)
    clock = DatabaseClock(engine)
    with Session(engine) as session:
        session.add(Violation(program_id=program.id or 0, rule=ViolationRule.LATE_PRICE_REPORT,  # type: ignore[attr-defined]
                              subject_type=SubjectType.ENTERPRISE, subject_id=enterprise.id or 0,
                              object_key="2025-10-24", evidence={"最低价执行日期": "2025-09-22"},
                              detected_on=date(2025, 12, 1), detected_at=clock.now()))
        session.commit()
    reconcile_enforcement(engine, SLUG, clock=clock)
    with Session(engine) as session:
        gate = session.execute(select(Gate).where(col(Gate.kind) == GateKind.ENFORCEMENT)).scalar_one()
    manager = _client(engine, "manager")
    page = manager.get(f"/gates/{gate.id}").text
    assert "同时记入不良记录" in page and "最低价执行日期：2025-09-22" in page
    manager.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "bad_record": "1",
                                                   "csrf_token": csrf_of(manager, f"/gates/{gate.id}")})
    with Session(engine) as session:
        assert session.execute(select(BadRecord)).scalar_one().barred_until == date(2027, 11, 30)
    assert "禁止申报至 2027-11-30（含）" in manager.get(f"/programs/{SLUG}/enterprises/{enterprise.id}").text
