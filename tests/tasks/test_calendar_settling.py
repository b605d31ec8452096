"""A provisional date whose year became known behind the entry's back is settled by the next daily pass."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from models.audit import AuditEvent
from models.enrollment import Gate
from models.holiday_notice import parse_holiday_notice
from models.states import GateKind
from tasks.calendar.schedules import enter_schedule, settle_provisional
from tests.factories import clock_at, make_program, make_reviewers, shanghai
from tests.fixtures_notice_2027 import NOTICE_2027

SLUG = "shenyang-2025"


def _gate_written_provisional(engine: Engine, program_id: int) -> None:
    """What a pass that computed its date before the 2027 entry committed writes after it: still 暂定."""
    with Session(engine) as session:
        session.add(Gate(natural_key="late-writer", program_id=program_id, phase="enrollment",
                         kind=GateKind.CITY_REVIEW, title="市级审核", subject_type="batch", subject_id=None, items=[],
                         decider_role="program_manager", opened_at=shanghai(2026, 12, 20, 9),
                         due_on=date(2027, 1, 4), due_on_provisional=True, due_from=date(2026, 12, 4),
                         due_working_days=20))
        session.commit()


def _gate(engine: Engine) -> tuple[date, bool]:
    with Session(engine) as session:
        gate = session.execute(select(Gate).where(Gate.natural_key == "late-writer")).scalar_one()
        return gate.due_on, gate.due_on_provisional


def _settle_audits(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == "deadline_recomputed",
                                                             AuditEvent.actor == "system")).scalars())


def test_a_provisional_date_written_after_the_years_entry_is_settled_by_the_daily_pass(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    make_reviewers(engine, [])
    enter_schedule(engine, parse_holiday_notice(NOTICE_2027), NOTICE_2027, user_name="manager",
                   clock=clock_at(2026, 12, 21, 9))
    _gate_written_provisional(engine, program.id)
    assert _gate(engine) == (date(2027, 1, 4), True)

    settled = settle_provisional(engine, SLUG, clock=clock_at(2026, 12, 22, 9))

    due_on, provisional = _gate(engine)
    assert settled == {"gate": 1} and provisional is False
    audits = _settle_audits(engine)
    assert len(audits) == 1 and audits[0].data == {"from": "2027-01-04", "to": due_on.isoformat(),
                                                   "provisional": False}
    assert settle_provisional(engine, SLUG, clock=clock_at(2026, 12, 23, 9)) == {}  # settled once, not again


def test_the_daily_pass_leaves_a_date_still_waiting_for_its_year_alone_and_unrecorded(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    make_reviewers(engine, [])
    _gate_written_provisional(engine, program.id)

    assert settle_provisional(engine, SLUG, clock=clock_at(2026, 12, 22, 9)) == {}
    assert settle_provisional(engine, SLUG, clock=clock_at(2026, 12, 23, 9)) == {}

    assert _gate(engine) == (date(2027, 1, 4), True)
    with Session(engine) as session:
        assert session.execute(select(func.count()).where(AuditEvent.action == "deadline_recomputed")).scalar_one() == 0
