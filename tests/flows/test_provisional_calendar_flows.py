"""A winter without next year's holiday schedule: every pass runs on provisional dates, which settle on entry."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core.clock_store import DatabaseClock
from flows.program import program_flow
from models.audit import AuditEvent
from models.clock import SHANGHAI
from models.enrollment import Gate
from models.holiday_notice import parse_holiday_notice
from models.operations import PlatformAccount
from models.states import GateKind, GateState, InstitutionKind
from tasks.calendar import working_days_for
from tasks.calendar.schedules import enter_schedule
from tasks.gates.deciding import decide_gate
from tasks.programs import get_program, load_program
from tests.factories import PROGRAM_FILES, make_applications, make_institution, make_program, make_reviewers, shanghai
from tests.fixtures_notice_2027 import NOTICE_2027

pytestmark = pytest.mark.prefect
SLUG = "shenyang-2025"


def _decide_open_gates(engine: Engine, reviewers: dict[str, str], clock: DatabaseClock) -> None:
    with Session(engine) as session:
        gates = list(session.execute(select(Gate).where(Gate.state == GateState.OPEN)).scalars())
    for gate in gates:
        user = reviewers[gate.district] if gate.kind == GateKind.DISTRICT_REVIEW else "manager"
        decide_gate(engine, gate.id, approve=gate.items, user_name=user, clock=clock)


def _provisional(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {"gate": session.execute(select(func.count()).where(Gate.due_on_provisional)).scalar_one(),
                "account": session.execute(select(func.count()).where(PlatformAccount.due_on_provisional))
                .scalar_one()}


def test_shenyang_runs_december_to_march_without_a_2027_schedule_and_settles_when_it_is_entered(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区"])
    clock = DatabaseClock(engine)
    early = [make_institution(engine, kind=InstitutionKind.PRIVATE_CLINIC) for _ in range(2)]
    make_applications(engine, program, early, submitted_at=shanghai(2026, 12, 2, 10))
    day = date(2026, 12, 1)
    while day <= date(2027, 3, 31):  # a week a step, every pass of the program each time
        if day == date(2027, 3, 16):  # late applicants: their gates are still open when the schedule arrives
            late = [make_institution(engine, kind=InstitutionKind.PRIVATE_CLINIC) for _ in range(2)]
            make_applications(engine, program, late, submitted_at=shanghai(2027, 3, 16, 10))
        clock.set(datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI))
        result = asyncio.run(program_flow(SLUG, send_notices=False, reminders=True))
        assert "calendar_blocked" not in repr(result)
        if day < date(2027, 3, 16):
            _decide_open_gates(engine, reviewers, clock)
        day += timedelta(days=7)
    with Session(engine) as session:
        open_gates = list(session.execute(select(Gate).where(Gate.state == GateState.OPEN)).scalars())
        running = session.execute(select(func.count()).select_from(PlatformAccount)).scalar_one()
    assert open_gates and all(g.due_on_provisional and g.due_on.year == 2027 for g in open_gates)
    assert running == 2  # the December batch ran and owes accounts, with provisional deadlines
    before = _provisional(engine)
    assert before["gate"] >= 1 and before["account"] == 2

    report = enter_schedule(engine, parse_holiday_notice(NOTICE_2027), NOTICE_2027, user_name="manager",
                            clock=clock)
    assert sum(report.recomputed.values()) == sum(before.values())
    assert _provisional(engine) == {"gate": 0, "account": 0}
    with Session(engine) as session:
        _, defn = get_program(session, SLUG)
        official = working_days_for(session, defn)
        for gate in session.execute(select(Gate)).scalars():
            opened = gate.opened_at.astimezone(SHANGHAI).date()
            assert gate.due_from is None and gate.due_working_days is None
            assert official.is_official(gate.due_on.year)
            assert gate.due_on >= opened
        audited = session.execute(select(func.count()).where(AuditEvent.action == "deadline_recomputed")).scalar_one()
        entered = session.execute(select(AuditEvent).where(AuditEvent.action == "enter_schedule")).scalar_one()
    assert audited == sum(before.values())
    assert entered.actor == "manager" and entered.entity_id == "2027"
    again = enter_schedule(engine, parse_holiday_notice(NOTICE_2027), NOTICE_2027, user_name="manager", clock=clock)
    assert again.already_entered and not again.recomputed


def test_a_strict_program_fails_only_the_step_that_needs_2027(
        engine: Engine, database_url: str, prefect_api: str, tmp_path: Path) -> None:
    strict = tmp_path / "shenyang-2025.yaml"
    strict.write_text(PROGRAM_FILES[SLUG].read_text(encoding="utf-8").replace(
        "calendar_unknown_year: provisional", "calendar_unknown_year: strict"), encoding="utf-8")
    make_program(engine, SLUG)
    load_program(engine, strict, clock=DatabaseClock(engine))
    make_reviewers(engine, ["和平区"])
    clock = DatabaseClock(engine)
    with Session(engine) as session:
        program, defn = get_program(session, SLUG)
    assert defn.calendar_unknown_year == "strict"
    reviewers = {"和平区": "reviewer0"}
    make_applications(engine, program, [make_institution(engine, kind=InstitutionKind.PRIVATE_CLINIC)],
                      submitted_at=shanghai(2026, 12, 2, 10))
    day, result = date(2026, 12, 1), {}
    while "calendar_blocked" not in repr(result) and day < date(2027, 1, 1):
        clock.set(datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI))
        result = asyncio.run(program_flow(SLUG, send_notices=False, reminders=True))
        _decide_open_gates(engine, reviewers, clock)
        day += timedelta(days=7)
    # The batch was approved in December; running it owes an account within 20 working days: into 2027.
    blocked = [r["calendar_blocked"] for r in result.values() if isinstance(r, dict) and "calendar_blocked" in r]
    assert blocked, result
    assert all("2027年" in str(b) and "sanjin calendar import" in str(b) for b in blocked)
    from tasks.phases.drug_list import reconcile_drug_list

    reconcile_drug_list(engine, SLUG, clock=clock)  # a step that needs no 2027 deadline still runs that day
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(PlatformAccount)).scalar_one() == 0
        assert session.execute(select(func.count()).where(Gate.state == GateState.DECIDED)).scalar_one() == 2


def test_entering_a_later_year_leaves_dates_still_waiting_for_an_earlier_one_unrecorded(engine: Engine) -> None:
    from tests.factories import clock_at

    make_program(engine, SLUG)
    make_reviewers(engine, [])
    notice_2028 = NOTICE_2027.replace("2027年", "2028年")
    # Not a real 2028 schedule (its weekdays would not match): a 2028 entry needs only to parse as one.
    from models.holiday_notice import FestivalArrangement, HolidayNotice

    fake = HolidayNotice(2028, (FestivalArrangement("元旦", (date(2028, 1, 1),), ()),))
    with Session(engine) as session:
        session.add(Gate(natural_key="k", program_id=1, phase="enrollment", kind=GateKind.CITY_REVIEW, title="t",
                         subject_type="batch", subject_id=None, items=[], decider_role="program_manager",
                         opened_at=shanghai(2026, 12, 20, 9), due_on=date(2027, 1, 4), due_on_provisional=True,
                         due_from=date(2026, 12, 4), due_working_days=20))
        session.commit()
    report = enter_schedule(engine, fake, notice_2028, user_name="manager", clock=clock_at(2026, 12, 21, 9))
    assert report.recomputed == {}
    with Session(engine) as session:
        gate = session.execute(select(Gate)).scalar_one()
        audited = session.execute(select(func.count()).where(AuditEvent.action == "deadline_recomputed")).scalar_one()
    assert (gate.due_on, gate.due_on_provisional, audited) == (date(2027, 1, 4), True, 0)
