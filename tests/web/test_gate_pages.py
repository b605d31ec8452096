"""Every kind of gate shows what is decided with its findings; big gates and inboxes are paged, and
"approve all" still reaches every item, not only the page on the screen."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from starlette.testclient import TestClient

from core.clock_store import DatabaseClock
from models.catalog import ListVersion, Product
from models.enrollment import Application, Gate
from models.program import AllianceInvitation
from models.states import ApplicationState, GateKind, GateState, InvitationState, ListKind
from tasks.gates.deciding import decide_gate
from tasks.intake.declaration_import import DECLARATION_COLUMNS, import_declaration
from tasks.phases.alliance import reconcile_alliance, respond_to_invitation
from tasks.phases.drug_list import reconcile_drug_list
from tests.factories import ensure_user, make_program, shanghai
from tests.factories_files import product_row, write_xlsx
from tests.web.conftest import PASSWORD, World, csrf_of, sign_in
from web.app import create_app
from web.settings import WebSettings


def _states(engine: Engine, ids: list[int]) -> list[ApplicationState]:
    with Session(engine) as session:
        return [session.get(Application, i).state for i in ids]  # type: ignore[union-attr]


def _open(engine: Engine, kind: GateKind) -> list[Gate]:
    with Session(engine) as session:
        return list(session.execute(select(Gate).where(col(Gate.kind) == kind, col(Gate.state) == GateState.OPEN)
                                    .order_by(Gate.id)).scalars())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- application gates, paged


def test_a_gate_shows_one_page_of_items_and_the_pager_reaches_the_rest(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")  # three applications
    sign_in(client, world.reviewers["和平区"])
    first = client.get(f"/gates/{gate.id}?per_page=2").text
    second = client.get(f"/gates/{gate.id}?per_page=2&page=2").text
    ids = sorted(gate.items)
    assert all(f'id="item-{i}"' in first for i in ids[:2]) and f'id="item-{ids[2]}"' not in first
    assert f'id="item-{ids[2]}"' in second and f'id="item-{ids[0]}"' not in second
    assert "第 1 页 / 共 2 页（3 条）" in first and 'rel="next"' in first and 'rel="prev"' in second
    assert "全部批准（全部 3 项未决定事项）" in first


def test_approve_all_on_a_paged_gate_approves_the_items_not_on_the_screen(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    sign_in(client, world.reviewers["和平区"])
    token = csrf_of(client, f"/gates/{gate.id}?per_page=1")
    response = client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": token,
                                                             "back": f"/gates/{gate.id}?per_page=1&page=1"})
    assert response.status_code == 303 and response.headers["location"] == f"/gates/{gate.id}?per_page=1&page=1"
    assert _states(world.engine, gate.items) == [ApplicationState.DISTRICT_APPROVED] * 3


def test_approve_this_page_decides_only_the_items_listed_on_it(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    ids = sorted(gate.items)
    sign_in(client, world.reviewers["和平区"])
    token = csrf_of(client, f"/gates/{gate.id}?per_page=2")
    client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve_page", "page_item": [str(i) for i in ids[:2]],
                                                  "csrf_token": token})
    assert _states(world.engine, ids) == [ApplicationState.DISTRICT_APPROVED] * 2 + [ApplicationState.SUBMITTED]
    page = client.get(f"/gates/{gate.id}").text
    assert "已批准 <b>2</b>，已驳回 <b>0</b>，待决定 <b>1</b>" in page
    assert "尚余 1 项待决定" in page  # the flash after the decision


def test_items_can_be_filtered_by_outcome_and_by_findings(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    first, second, third = sorted(gate.items)
    with Session(world.engine) as session:
        app = session.get(Application, third)
        assert app is not None
        app.findings = [{"row": 4, "column": "联系电话", "value": "123", "rule": "phone", "message": "联系电话位数不对"}]
        session.add(app)
        session.commit()
    sign_in(client, world.reviewers["和平区"])
    client.post(f"/gates/{gate.id}/decide", data={f"item_{first}": "reject", f"reason_{first}": "证照过期",
                                                  "csrf_token": csrf_of(client, "/inbox")})
    shown = {show: client.get(f"/gates/{gate.id}?show={show}").text for show in
             ("undecided", "rejected", "approved", "findings")}
    assert f'id="item-{first}"' not in shown["undecided"] and f'id="item-{second}"' in shown["undecided"]
    assert f'id="item-{first}"' in shown["rejected"] and "证照过期" in shown["rejected"]
    assert "没有符合条件的事项" in shown["approved"]
    assert f'id="item-{third}"' in shown["findings"] and f'id="item-{second}"' not in shown["findings"]
    assert client.get(f"/gates/{gate.id}?show=everything").status_code == 400
    assert client.get(f"/gates/{gate.id}?page=0").status_code == 400
    assert client.get(f"/gates/{gate.id}?page=abc").status_code == 400


def test_the_inbox_is_paged_and_an_observer_sees_every_open_gate_read_only(world: World, client: TestClient) -> None:
    sign_in(client, "observer")
    first = client.get("/inbox?per_page=1").text
    second = client.get("/inbox?per_page=1&page=2").text
    gates = world.gates(GateKind.DISTRICT_REVIEW)
    assert f"/gates/{gates[0].id}" in first and f"/gates/{gates[1].id}" in second
    assert "共 2 页" in first and 'name="gate"' not in first and "bulk-approve" not in first
    assert "3 / 3" in first  # undecided / all items


def test_the_inbox_filters_by_program_kind_and_district(world: World, client: TestClient) -> None:
    sign_in(client, "observer")
    assert "沈河区" in client.get("/inbox?district=沈河区").text
    assert "和平区" not in client.get("/inbox?district=沈河区").text.split("<tbody>")[1]
    assert "没有等待您处理" in client.get("/inbox?kind=city_review").text
    assert "没有等待您处理" in client.get("/inbox?program=jiangxi-2025").text
    assert client.get("/inbox?kind=bogus").status_code == 400


# --------------------------------------------------------------------------- the other kinds of gate


@pytest.fixture
def manager_client(engine: Engine) -> TestClient:
    from models.states import Role

    ensure_user(engine, "manager", Role.PROGRAM_MANAGER, password=PASSWORD)
    app = create_app(engine, settings=WebSettings(secret_key="test-secret-key-0123456789"))
    return sign_in(TestClient(app, raise_server_exceptions=False, follow_redirects=False), "manager")


def _declare(engine: Engine, tmp_path: Path, clock: DatabaseClock) -> None:
    for n, name in ((1, "甲制药有限公司"), (2, "乙制药有限公司")):
        rows = [product_row(10 * n + k, 生产企业=name, 投标企业=name) for k in range(3)]
        path = write_xlsx(tmp_path / f"{name}.xlsx", (*DECLARATION_COLUMNS, "类别", "特药"), rows)
        import_declaration(engine, "shenyang-2025", path, name, clock=clock)


def test_a_declaration_gate_shows_the_enterprise_its_products_and_findings(engine: Engine, manager_client: TestClient,
                                                                          tmp_path: Path) -> None:
    make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 20, 10))
    _declare(engine, tmp_path, clock)
    reconcile_drug_list(engine, "shenyang-2025", clock=clock)
    first, _second = _open(engine, GateKind.DECLARATION_REVIEW)
    page = manager_client.get(f"/gates/{first.id}").text
    assert "甲制药有限公司" in page and "申报品种（3）" in page and "企业申报审核" in page
    assert "没有邮箱" in page  # a finding: the decision can only go out by phone or letter
    assert page.count('name="page_item"') == 1  # one declaration to decide
    manager_client.post(f"/gates/{first.id}/decide", data={f"item_{first.items[0]}": "reject",
                                                           f"reason_{first.items[0]}": "承诺函未盖章",
                                                           "csrf_token": csrf_of(manager_client, "/inbox")})
    after = manager_client.get(f"/gates/{first.id}").text
    assert "已驳回（项目管理员）" in after and "承诺函未盖章" in after


def test_a_list_approval_gate_shows_the_diff_to_publish_and_refuses_a_stale_list(
        engine: Engine, manager_client: TestClient, tmp_path: Path) -> None:
    make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 20, 10))
    _declare(engine, tmp_path, clock)
    reconcile_drug_list(engine, "shenyang-2025", clock=clock)
    for gate in _open(engine, GateKind.DECLARATION_REVIEW):
        decide_gate(engine, gate.id or 0, approve=gate.items, user_name="manager", clock=clock)
    clock.set(shanghai(2025, 9, 16, 9))
    reconcile_drug_list(engine, "shenyang-2025", clock=clock)
    (approval,) = _open(engine, GateKind.LIST_APPROVAL)
    page = manager_client.get(f"/gates/{approval.id}").text
    assert "与空清单（首次发布）相比" in page and "新增 <b>6</b>" in page and page.count('<tr class="added">') == 6
    assert "甲制药有限公司" in page and 'name="item_1"' in page
    paged = manager_client.get(f"/gates/{approval.id}?per_page=4&page=2").text
    assert paged.count('<tr class="added">') == 2
    with Session(engine) as session:  # the list changes after the gate opened: it can no longer be approved
        product = session.execute(select(Product).order_by(Product.id)).scalars().first()  # type: ignore[arg-type]
        assert product is not None
        product_id, price = product.id, product.winning_price
        product.winning_price = Decimal("99.99")
        session.add(product)
        session.commit()
    stale = manager_client.get(f"/gates/{approval.id}").text
    assert "送审后清单内容已变化" in stale and 'name="page_item"' not in stale
    with Session(engine) as session:
        product = session.get(Product, product_id)
        assert product is not None
        product.winning_price = price
        session.add(product)
        session.commit()
    manager_client.post(f"/gates/{approval.id}/decide", data={"bulk": "approve", "csrf_token": csrf_of(manager_client, "/inbox")})
    with Session(engine) as session:
        assert session.execute(select(ListVersion).where(col(ListVersion.kind) == ListKind.DRUGS)).scalar_one().entry_count == 6
    decided = manager_client.get(f"/gates/{approval.id}").text  # what was approved stays visible once published
    assert "本事项批准发布的药品清单：第 1 版" in decided and "新增 <b>6</b>" in decided
    assert decided.count('<tr class="added">') == 6 and "没有变化" not in decided


def test_an_alliance_gate_shows_every_invitation_and_its_answer(engine: Engine, manager_client: TestClient) -> None:
    make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 7, 10))
    reconcile_alliance(engine, "shenyang-2025", clock=clock)
    respond_to_invitation(engine, "shenyang-2025", "大连市", accept=True, clock=clock)
    respond_to_invitation(engine, "shenyang-2025", "鞍山市", accept=False, clock=clock)
    clock.set(shanghai(2025, 8, 18, 10))  # the window closed: the manager confirms who accepted
    reconcile_alliance(engine, "shenyang-2025", clock=clock)
    (gate,) = _open(engine, GateKind.ALLIANCE_CONFIRMATION)
    page = manager_client.get(f"/gates/{gate.id}").text
    assert "大连市" in page and "鞍山市" in page and "该市谢绝加入联盟" in page and "尚未答复" in page
    assert page.count('name="page_item"') == 1 and "不在本次确认范围" in page
    manager_client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": csrf_of(manager_client, "/inbox")})
    with Session(engine) as session:
        dalian = session.execute(select(AllianceInvitation).where(col(AllianceInvitation.city) == "大连市")).scalar_one()
    assert dalian.state == InvitationState.CONFIRMED


def test_an_enforcement_gate_is_in_the_inbox_and_shows_the_violations_evidence(
        engine: Engine, manager_client: TestClient) -> None:
    from datetime import date

    from models.compliance.codes import SubjectType, ViolationRule
    from models.operations import Violation
    from tasks.enforcement.ladder import reconcile_enforcement
    from tests.factories import make_enterprise

    program = make_program(engine)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 12, 1, 9))
    late = make_enterprise(engine, "迟送制药有限公司")
    with Session(engine) as session:
        session.add(Violation(program_id=program.id or 0, rule=ViolationRule.DELIVERY_PATTERN,
                              subject_type=SubjectType.ENTERPRISE, subject_id=late.id or 0, object_key="2025Q4",
                              evidence={"超时配送次数": 5}, detected_on=date(2025, 12, 1), detected_at=clock.now()))
        session.commit()
    reconcile_enforcement(engine, "shenyang-2025", clock=clock)
    (gate,) = _open(engine, GateKind.ENFORCEMENT)
    assert "约谈" in manager_client.get("/inbox").text
    page = manager_client.get(f"/gates/{gate.id}").text
    assert "迟送制药有限公司" in page and "超时配送次数：5" in page and "待约谈" in page
    assert "delivery_pattern" not in page  # staff read Chinese, never codes
