"""The funnel counts institutions stage by stage (cumulative, a re-applicant once), batches apart and only when they
hold applications; the program flow's snapshot is written once per program and day (issue 19)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session

from models.enrollment import Application, Batch
from models.operations import Contract, PlatformAccount
from models.progress import ProgramSnapshot
from models.states import AccountState, ApplicationState, BatchState, ContractState
from tasks.reports.progress import funnel_counts, snapshots, take_snapshot
from tests.factories import clock_at, make_enterprise, make_institution, make_program, shanghai

SLUG = "shenyang-2025"


def test_the_funnel_counts_institutions_cumulatively_and_batches_apart(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    states = [ApplicationState.SUBMITTED, ApplicationState.DISTRICT_APPROVED, ApplicationState.APPROVED,
              ApplicationState.RUNNING, ApplicationState.RUNNING, ApplicationState.REJECTED]
    insts = [make_institution(engine) for _ in states]
    enterprise = make_enterprise(engine)
    with Session(engine) as session:
        running = Batch(program_id=program.id or 0, number=1, state=BatchState.RUNNING, opened_on=date(2025, 9, 1),
                        cutoff_on=date(2025, 9, 10))
        empty = Batch(program_id=program.id or 0, number=2, state=BatchState.RUNNING, opened_on=date(2025, 9, 11),
                      cutoff_on=date(2025, 9, 20))
        session.add_all([running, empty])
        session.flush()
        session.execute(insert(Application), [
            {"program_id": program.id, "institution_id": i.id, "attempt": 1, "district": i.district, "state": s,
             "committed_drug_count": 60, "submitted_at": shanghai(2025, 9, 5, 9), "findings": [],
             "batch_id": running.id} for i, s in zip(insts, states, strict=True)])
        # the rejected institution applied again and is under review: still one institution that applied
        session.execute(insert(Application), [{
            "program_id": program.id, "institution_id": insts[-1].id, "attempt": 2, "district": insts[-1].district,
            "state": ApplicationState.SUBMITTED, "committed_drug_count": 60, "submitted_at": shanghai(2025, 9, 25, 9),
            "findings": []}])
        session.add(PlatformAccount(program_id=program.id or 0, institution_id=insts[3].id or 0,
                                    state=AccountState.REGISTERED, due_on=date(2025, 10, 31)))
        session.add(PlatformAccount(program_id=program.id or 0, institution_id=insts[4].id or 0,
                                    state=AccountState.PENDING, due_on=date(2025, 10, 31)))
        session.add(Contract(program_id=program.id or 0, institution_id=insts[3].id or 0,
                             enterprise_id=enterprise.id or 0, year=2025, state=ContractState.SIGNED,
                             due_on=date(2025, 11, 30)))
        session.commit()
        counts = funnel_counts(session, program.id or 0)
    assert counts == {"applied": 6, "district_reviewed": 4, "city_reviewed": 3, "running": 2, "registered": 1,
                      "signed": 1, "batch_running": 1}  # the empty batch is no batch running


def test_the_snapshot_is_written_once_per_program_and_day(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    assert take_snapshot(engine, SLUG, clock=clock_at(2025, 9, 20, 9)) is True
    make_institution(engine)
    assert take_snapshot(engine, SLUG, clock=clock_at(2025, 9, 20, 18)) is False  # a later run the same day
    assert take_snapshot(engine, SLUG, clock=clock_at(2025, 9, 21, 9)) is True
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(ProgramSnapshot)).scalar_one() == 2
        days = [day for day, _ in snapshots(session, program.id or 0, until=date(2025, 9, 20))]
    assert days == [date(2025, 9, 20)]  # a simulated clock never sees its future
