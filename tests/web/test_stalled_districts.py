"""A stalled district is impossible to miss: the overview counts each district's open, overdue and expired gates
and the applications carried over, flags the stalled ones in red, and the home page lists every program with
its phase, open gates and alerts (issue 19)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import update
from sqlmodel import Session
from starlette.testclient import TestClient

from models.clock import SHANGHAI
from models.enrollment import Gate
from models.states import GateState
from tasks.gates.deciding import decide_gate
from tests.web.conftest import SLUG, World, sign_in


def _row(page: str, district: str) -> str:
    return page.split(f'data-district="{district}"')[1].split("</tr>")[0]


def _day_after_due(world: World) -> None:
    due = world.district_gate("和平区").due_on
    world.clock.set(datetime.combine(due + timedelta(days=1), time(9), tzinfo=SHANGHAI))


def test_a_district_whose_gate_is_past_due_is_flagged_red_and_the_other_is_not(world: World,
                                                                               client: TestClient) -> None:
    shenhe = world.district_gate("沈河区")
    decide_gate(world.engine, shenhe.id or 0, approve=shenhe.items, user_name=world.reviewers["沈河区"],
                clock=world.clock)
    sign_in(client, "manager")
    before = client.get(f"/programs/{SLUG}").text
    assert 'data-stalled="1"' not in before and "stalled-alert" not in before  # within its deadline: not flagged
    _day_after_due(world)
    page = client.get(f"/programs/{SLUG}").text
    heping, shenhe = _row(page, "和平区"), _row(page, "沈河区")
    assert 'data-stalled="1"' in heping and "滞后" in heping and "2025-09-20" in heping
    assert 'data-stalled="1"' not in shenhe
    assert "和平区（1 项审批逾期未决定）" in page.split('id="stalled-alert"')[1].split("</div>")[0]


def test_applications_an_expired_gate_carried_over_are_counted_with_their_age(world: World,
                                                                              client: TestClient) -> None:
    gate = world.district_gate("和平区")
    with Session(world.engine) as session:  # what tasks/phases/enrollment.carry_over_overdue leaves behind
        session.execute(update(Gate).where(Gate.id == gate.id).values(state=GateState.EXPIRED))  # type: ignore[arg-type]
        session.commit()
    _day_after_due(world)
    sign_in(client, "manager")
    row = _row(client.get(f"/programs/{SLUG}").text, "和平区")
    cells = row.split("<td>")
    assert cells[5].startswith("1")  # one expired gate
    assert f"<b class=\"late\">{len(gate.items)}</b>" in cells[6]  # its applications still wait
    waited = (gate.due_on + timedelta(days=1) - datetime(2025, 9, 12).date()).days
    assert f"2025-09-12（{waited} 天）" in cells[7] and 'data-stalled="1"' in row


def test_the_home_page_lists_each_program_with_its_phase_open_gates_and_alerts(world: World,
                                                                               client: TestClient) -> None:
    sign_in(client, "manager")
    row = client.get("/").text.split(f'data-program="{SLUG}"')[1].split("</tr>")[0]
    assert "机构申报" in row or "申报" in row  # the enrollment window is open on 09-20
    assert f'<a href="/inbox?program={SLUG}">2</a>' in row and "无</span>" in row
    _day_after_due(world)
    row = client.get("/").text.split(f'data-program="{SLUG}"')[1].split("</tr>")[0]
    assert "2 项审批已逾期" in row and "审批滞后：和平区、沈河区" in row
