"""Decisions a reviewer trusts: a refusal looks like one, the page speaks plainly, a bulk decision names its count
first, each item shows when it was submitted and what became of the institution's earlier attempts, and an
expired gate says its undecided items went on to the next batch (issue 19)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session
from starlette.testclient import TestClient

from models.enrollment import Application, Gate
from models.states import ApplicationState, GateState
from tests.factories import shanghai
from tests.web.conftest import World, csrf_of, sign_in


def test_a_rejection_without_a_reason_is_shown_as_an_error_in_plain_chinese(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    item = sorted(gate.items)[0]
    sign_in(client, world.reviewers["和平区"])
    client.post(f"/gates/{gate.id}/decide", data={f"item_{item}": "reject", "csrf_token": csrf_of(client, "/inbox")})
    page = client.get(f"/gates/{gate.id}").text
    banner = page.split('class="flash flash-error" role="alert">')[1].split("</p>")[0]
    assert "驳回必须说明理由" in banner
    assert str(item) not in banner and " / " not in banner and "[" not in banner  # no ids, no English half


def test_a_decision_says_what_was_decided_without_engineer_words(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    sign_in(client, world.reviewers["和平区"])
    client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    banner = client.get(f"/gates/{gate.id}").text.split('class="flash" role="status">')[1].split("</p>")[0]
    assert f"「{gate.title}」已决定：批准 {len(gate.items)} 项" in banner
    assert "流程" not in banner and "run" not in banner and " / " not in banner


def test_every_bulk_button_asks_for_a_confirmation_naming_the_count(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    sign_in(client, world.reviewers["和平区"])
    page = client.get(f"/gates/{gate.id}?per_page=2").text
    assert f'data-confirm="确认批准全部 {len(gate.items)} 项未决定的事项' in page
    assert f'data-confirm="确认驳回全部 {len(gate.items)} 项未决定的事项' in page
    assert 'data-confirm="确认批准本页 2 项未决定的事项' in page
    assert '<span id="expiry-rule">逾期后未决定事项转入下一批</span>' in page  # what its due date passing does
    inbox = client.get("/inbox").text
    assert 'data-confirm-sum="gate"' in inbox and f'data-undecided="{len(gate.items)}"' in inbox


def test_an_item_shows_its_submission_date_and_the_earlier_attempt_with_its_reason(
        world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    item = sorted(gate.items)[0]
    with Session(world.engine) as session:  # the institution applied before and was turned down
        current = session.get(Application, item)
        assert current is not None
        session.execute(update(Application).where(Application.id == item).values(attempt=2))  # type: ignore[arg-type]
        session.add(Application(program_id=current.program_id, institution_id=current.institution_id, attempt=1,
                                district=current.district, state=ApplicationState.REJECTED, committed_drug_count=20,
                                submitted_at=shanghai(2025, 8, 25, 9), reason="承诺配备品种少于30种"))
        session.commit()
    sign_in(client, world.reviewers["和平区"])
    row = client.get(f"/gates/{gate.id}").text.split(f'id="item-{item}"')[1].split("</tr>")[0]
    assert "2025-09-12 10:00 提交" in row and "第 2 次申请" in row
    assert "第 1 次申请（2025-08-25 09:00 提交）：已驳回，理由：承诺配备品种少于30种" in row


def test_items_of_an_expired_gate_read_carried_over_not_pending(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    with Session(world.engine) as session:  # what tasks/phases/enrollment.carry_over_overdue leaves behind
        session.execute(update(Gate).where(Gate.id == gate.id).values(state=GateState.EXPIRED))  # type: ignore[arg-type]
        session.commit()
    sign_in(client, "manager")
    page = client.get(f"/gates/{gate.id}").text
    assert page.count("逾期未决定，已转入下一批") == len(gate.items)
    assert "待决定</span>" not in page and f"已转入下一批 <b>{len(gate.items)}</b>" in page
