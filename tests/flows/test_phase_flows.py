"""Each phase flow under Prefect's test harness: it reconciles from the database and repeats nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core.clock_store import DatabaseClock
from flows.alliance import alliance_flow
from flows.enrollment import enrollment_flow
from flows.program import program_flow
from models.enrollment import Gate
from models.program import AllianceInvitation
from models.states import ApplicationState, GateKind, InstitutionKind, InvitationState
from models.tables import Application
from tasks.gates.deciding import decide_gate
from tasks.phases.alliance import respond_to_invitation
from tests.factories import make_applications, make_institution, make_program, make_reviewers, shanghai, table_counts

pytestmark = pytest.mark.prefect
SLUG = "shenyang-2025"



def _open_gates(engine: Engine, kind: GateKind) -> list[Gate]:
    with Session(engine) as session:
        return list(session.execute(select(Gate).where(Gate.kind == kind, Gate.state == "open")).scalars())


def test_alliance_flow_invites_every_city_once_and_asks_the_manager_to_confirm(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    make_program(engine, SLUG)
    make_reviewers(engine, [])
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 7, 9))
    first = asyncio.run(alliance_flow(SLUG))
    assert first["invited"] == 13
    for city in ("大连市", "鞍山市"):
        respond_to_invitation(engine, SLUG, city, accept=True, clock=clock)
    clock.set(shanghai(2025, 8, 16, 9))  # the window closed: confirm who accepted
    report = asyncio.run(alliance_flow(SLUG))
    assert report["invited"] == 0 and report["gate_opened"]
    (gate,) = _open_gates(engine, GateKind.ALLIANCE_CONFIRMATION)
    decide_gate(engine, gate.id, approve=gate.items, user_name="manager", clock=clock)
    with Session(engine) as session:
        states = session.execute(select(AllianceInvitation.state)).scalars().all()
    assert states.count(InvitationState.CONFIRMED) == 2
    before = table_counts(engine)
    asyncio.run(alliance_flow(SLUG))
    assert table_counts(engine) == before


def test_enrollment_flow_runs_a_batch_from_submission_to_running(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区"])
    insts = [make_institution(engine, district="和平区", kind=InstitutionKind.PRIVATE_CLINIC) for _ in range(3)]
    make_applications(engine, program, insts, submitted_at=shanghai(2025, 9, 12, 10))
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 9, 12, 12))
    asyncio.run(enrollment_flow(SLUG))  # into the first batch, cut off 2025-09-19
    clock.set(shanghai(2025, 9, 20, 9))
    asyncio.run(enrollment_flow(SLUG))
    (district,) = _open_gates(engine, GateKind.DISTRICT_REVIEW)
    decide_gate(engine, district.id, approve=district.items, user_name=reviewers["和平区"], clock=clock)
    asyncio.run(enrollment_flow(SLUG))
    (city,) = _open_gates(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    report = asyncio.run(enrollment_flow(SLUG))
    assert report["running"] == [1]
    before = table_counts(engine)
    asyncio.run(enrollment_flow(SLUG))
    assert table_counts(engine) == before
    with Session(engine) as session:
        assert set(session.execute(select(Application.state)).scalars()) == {ApplicationState.RUNNING}


def test_program_flow_runs_only_the_phases_due_and_they_overlap(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    make_program(engine, SLUG)
    DatabaseClock(engine).set(shanghai(2025, 9, 12, 9))  # drug_list and enrollment windows overlap
    result = asyncio.run(program_flow(SLUG, send_notices=False))
    assert result.pop("snapshot") is True  # the day's funnel snapshot for the overview's trend (issue 19)
    assert set(result) == {"drug_list", "enrollment"}
