"""A bulk decision posted as a browser without JavaScript posts it (`confirm=ask`) is not made: the server answers with
a page naming the count and the items, whose 确认 posts the same choice again (issue #19)."""

from __future__ import annotations

import re

from sqlmodel import Session
from starlette.testclient import TestClient

from models.enrollment import Application, Gate
from models.states import ApplicationState, GateState
from tests.web.conftest import World, csrf_of, sign_in

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _state(world: World, gate_id: int) -> GateState:
    with Session(world.engine) as session:
        gate = session.get(Gate, gate_id)
        assert gate is not None
        return gate.state


def test_a_page_of_items_is_confirmed_by_name_and_then_only_those_items_are_decided(world: World,
                                                                                     client: TestClient) -> None:
    gate = world.district_gate("和平区")
    ids = sorted(gate.items)
    sign_in(client, world.reviewers["和平区"])
    token = csrf_of(client, f"/gates/{gate.id}?per_page=2")
    asked = client.post(f"/gates/{gate.id}/decide", data={
        "bulk": "approve_page", "page_item": [str(i) for i in ids[:2]], "confirm": "ask", "csrf_token": token,
        "back": f"/gates/{gate.id}?per_page=2&page=1"})
    assert asked.status_code == 200 and 'id="confirm-count">2<' in asked.text
    assert len(re.findall(r"<li>[^<]+（和平区）</li>", asked.text)) == 2  # the institutions, by name
    assert f'href="/gates/{gate.id}?per_page=2&amp;page=1" id="confirm-back"' in asked.text
    assert _state(world, gate.id or 0) == GateState.OPEN
    with Session(world.engine) as session:
        assert all(session.get(Application, i).state == ApplicationState.SUBMITTED for i in ids)  # type: ignore[union-attr]

    form = HIDDEN.findall(asked.text.split('id="confirm-form"')[1])
    assert ("confirm", "given") in form and ("bulk", "approve_page") in form
    posted: dict[str, list[str]] = {}
    for k, v in form:
        posted.setdefault(k, []).append(v.replace("&amp;", "&"))
    done = client.post(f"/gates/{gate.id}/decide", data=posted)
    assert done.status_code == 303
    with Session(world.engine) as session:
        states = [session.get(Application, i).state for i in ids]  # type: ignore[union-attr]
    assert states == [ApplicationState.DISTRICT_APPROVED] * 2 + [ApplicationState.SUBMITTED]


def test_a_bulk_rejection_without_a_reason_is_refused_before_it_is_confirmed(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    sign_in(client, world.reviewers["和平区"])
    token = csrf_of(client, f"/gates/{gate.id}")
    refused = client.post(f"/gates/{gate.id}/decide", data={"bulk": "reject", "confirm": "ask", "csrf_token": token})
    assert refused.status_code == 303
    page = client.get(f"/gates/{gate.id}").text
    assert "flash-error" in page and "驳回必须说明理由" in page
    assert _state(world, gate.id or 0) == GateState.OPEN


def test_another_districts_reviewer_is_refused_rather_than_asked(world: World, client: TestClient) -> None:
    gate = world.district_gate("和平区")
    sign_in(client, world.reviewers["沈河区"])
    token = csrf_of(client, "/inbox")
    assert client.post(f"/gates/{gate.id}/decide", data={"bulk": "approve", "confirm": "ask",
                                                         "csrf_token": token}).status_code == 403
    assert client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve", "confirm": "ask",
                                              "csrf_token": token}).status_code == 403
