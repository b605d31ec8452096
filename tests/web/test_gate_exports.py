"""Every kind of gate downloads what its page shows, as XLSX and CSV with Chinese headers and names (issue #19):
a declaration review its products, a list approval the diff it approves (and, decided, the diff it approved), an
alliance confirmation every invitation, an enforcement gate each ladder with its evidence — scoped like the page."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from core.clock_store import DatabaseClock
from models.clock import FixedClock
from models.compliance.codes import SubjectType, ViolationRule
from models.operations import Violation
from models.states import GateKind
from tasks.enforcement.ladder import reconcile_enforcement
from tasks.gates.deciding import decide_gate
from tasks.phases.alliance import reconcile_alliance, respond_to_invitation
from tasks.phases.drug_list import reconcile_drug_list
from tests.factories import make_enterprise, make_institution, make_program, make_running_application, shanghai
from tests.web.conftest import SLUG, World, sign_in
from tests.web.test_exports import _csv, _xlsx
from tests.web.test_gate_pages import _declare, _open, manager_client  # noqa: F401  (a fixture)
from tests.web.test_no_raw_codes import _raw_codes
from web import gate_exports


def _html(rows: list[list[str]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)


def test_a_declaration_gate_and_the_list_approval_export_their_products_and_the_diff_approved(
        engine: Engine, manager_client: TestClient, tmp_path: Path) -> None:  # noqa: F811
    make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 20, 10))
    _declare(engine, tmp_path, clock)
    reconcile_drug_list(engine, SLUG, clock=clock)
    first, second = _open(engine, GateKind.DECLARATION_REVIEW)
    sheet = _xlsx(manager_client.get(f"/gates/{first.id}?format=xlsx"))
    assert sheet[1] == list(gate_exports.DECLARATION_COLUMNS)  # under the title row
    assert len(sheet) == 2 + 3 and {r[0] for r in sheet[2:]} == {"甲制药有限公司"}
    assert all(r[-3] == "待决定" and "没有邮箱" in r[-4] for r in sheet[2:])
    for gate in (first, second):
        decide_gate(engine, gate.id or 0, approve=gate.items, user_name="manager", clock=clock)
    decided = _csv(manager_client.get(f"/gates/{first.id}?format=csv"))
    assert {r[-3] for r in decided[1:]} == {"已批准"} and {r[-2] for r in decided[1:]} == {"项目管理员"}

    clock.set(shanghai(2025, 9, 16, 9))
    reconcile_drug_list(engine, SLUG, clock=clock)
    (approval,) = _open(engine, GateKind.LIST_APPROVAL)
    rows = _csv(manager_client.get(f"/gates/{approval.id}?format=csv&per_page=4"))  # every change, not a page
    assert rows[0] == list(gate_exports.LIST_CHANGE_COLUMNS) and len(rows) == 1 + 6
    assert {r[0] for r in rows[1:]} == {"新增"} and {r[-3] for r in rows[1:]} == {"待决定"}
    decide_gate(engine, approval.id or 0, approve=approval.items, user_name="manager", clock=clock)
    approved = _csv(manager_client.get(f"/gates/{approval.id}?format=csv"))  # published: the diff it approved
    assert len(approved) == 1 + 6 and {r[-3] for r in approved[1:]} == {"已批准"}
    assert sorted(r[1] for r in approved[1:]) == sorted(r[1] for r in rows[1:])
    assert not _raw_codes(_html(sheet + decided + rows + approved))


def test_an_alliance_gate_exports_every_invitation_with_its_answer(engine: Engine,
                                                                   manager_client: TestClient) -> None:  # noqa: F811
    make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 7, 10))
    reconcile_alliance(engine, SLUG, clock=clock)
    respond_to_invitation(engine, SLUG, "大连市", accept=True, clock=clock)
    respond_to_invitation(engine, SLUG, "鞍山市", accept=False, clock=clock)
    clock.set(shanghai(2025, 8, 18, 10))
    reconcile_alliance(engine, SLUG, clock=clock)
    (gate,) = _open(engine, GateKind.ALLIANCE_CONFIRMATION)
    rows = _xlsx(manager_client.get(f"/gates/{gate.id}?format=xlsx"))
    assert rows[1] == list(gate_exports.ALLIANCE_COLUMNS)
    by_city = {r[0]: r for r in rows[2:]}
    assert by_city["大连市"][3] == "已同意" and by_city["大连市"][-3] == "待决定"
    assert by_city["鞍山市"][3] == "已谢绝" and by_city["鞍山市"][-3] == "不在本次确认范围"
    assert "该市谢绝加入联盟" in by_city["鞍山市"][6]
    assert not _raw_codes(_html(rows))


def test_an_enforcement_gate_exports_the_ladder_with_its_evidence(engine: Engine,
                                                                  manager_client: TestClient) -> None:  # noqa: F811
    program = make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 12, 1, 9))
    late = make_enterprise(engine, "迟送制药有限公司")
    with Session(engine) as session:
        session.add(Violation(program_id=program.id or 0, rule=ViolationRule.DELIVERY_PATTERN,
                              subject_type=SubjectType.ENTERPRISE, subject_id=late.id or 0, object_key="2025Q4",
                              evidence={"超时配送次数": 5}, detected_on=date(2025, 12, 1), detected_at=clock.now()))
        session.commit()
    reconcile_enforcement(engine, SLUG, clock=clock)
    (gate,) = _open(engine, GateKind.ENFORCEMENT)
    rows = _csv(manager_client.get(f"/gates/{gate.id}?format=csv"))
    assert rows[0] == list(gate_exports.LADDER_COLUMNS) and len(rows) == 2
    subject, _, rule, detected, evidence, state, *_ = rows[1]
    assert "迟送制药有限公司" in subject and rule and detected == "2025-12-01"
    assert evidence == "超时配送次数：5" and state == "待约谈"
    assert not _raw_codes(_html(rows))


def test_a_reviewer_cannot_export_another_districts_enforcement_gate(world: World, client: TestClient) -> None:
    from tasks.enforcement.manual import start_ladder

    inst = make_institution(world.engine, district="和平区", name="和平区违规药房")
    make_running_application(world.engine, world.program, inst, running_at=shanghai(2025, 9, 1, 9))
    started = start_ladder(world.engine, SLUG, user_name="manager", clock=FixedClock(shanghai(2025, 10, 8, 9)),
                           reason="导出范围测试", institution=inst.name)
    sign_in(client, world.reviewers["沈河区"])
    assert client.get(f"/gates/{started.gate_id}?format=csv").status_code == 403
    client.cookies.clear()
    sign_in(client, world.reviewers["和平区"])
    rows = _csv(client.get(f"/gates/{started.gate_id}?format=csv"))
    assert "和平区违规药房" in rows[1][0] and rows[1][1] == "和平区" and "导出范围测试" in rows[1][4]
