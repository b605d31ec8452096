"""The program flow: each day, run every phase that has work, overlapping windows included.

Phases whose windows overlap (Shenyang's list collection and enrollment) all progress on the same
day. Inside one program run they are reconciled one after another; for phases that must wait for
people at the same time, each phase flow is also served as its own deployment (`deploy/`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from prefect import get_run_logger
from sqlmodel import Session, select

from core.clock_store import DatabaseClock
from core.db import shared_engine
from flows.accounts import accounts_flow
from flows.alliance import alliance_flow
from flows.continuous_review import continuous_review_flow
from flows.contracts import contracts_flow
from flows.drug_list import drug_list_flow
from flows.enrollment import enrollment_flow
from flows.product_flow import product_flow
from flows.steps import progress_artifact, send_notices_step, snapshot_step
from models.enrollment import Batch, Gate
from models.program_definition import PhaseName
from models.states import BatchState, GateState
from models.workdays import CalendarYearUnknown
from tasks.programs import get_program

PHASE_FLOWS: dict[PhaseName, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    PhaseName.ALLIANCE: alliance_flow,
    PhaseName.DRUG_LIST: drug_list_flow,
    PhaseName.ENROLLMENT: enrollment_flow,
    PhaseName.ACCOUNTS: accounts_flow,
    PhaseName.CONTRACTS: contracts_flow,
    PhaseName.CONTINUOUS_REVIEW: continuous_review_flow,
}


WIND_DOWN_DAYS = 14


def phases_due(program: str) -> list[str]:
    """Phases with work today: an open window, an open gate, or (enrollment) a batch not yet running."""
    engine = shared_engine()
    today = DatabaseClock(engine).today()
    with Session(engine) as session:
        row, defn = get_program(session, program)
        gated = set(session.exec(select(Gate.phase).where(Gate.program_id == row.id,
                                                          Gate.state == GateState.OPEN)).all())
        unfinished = session.exec(select(Batch.id).where(Batch.program_id == row.id,
                                                         Batch.state != BatchState.RUNNING)).first()
    due = []
    for spec in defn.timeline():
        window = spec.window.state_on(today)
        closes = spec.window.closes
        # The close of a window moves its phase on: a closed phase keeps running for a while to open
        # the gates its close calls for (the list approval, carry-over of undecided applications).
        lately_closed = window == "closed" and closes is not None and (today - closes).days <= WIND_DOWN_DAYS
        if window == "open" or spec.name.value in gated or lately_closed or (
                spec.name == PhaseName.ENROLLMENT and unfinished is not None and window == "closed"):
            due.append(spec.name.value)
    return due


@product_flow("sanjin-program")
async def program_flow(program: str, send_notices: bool = True, reminders: bool = False) -> dict[str, Any]:
    """Reconcile every due phase once; the schedule (or the demo's clock) brings the next day."""
    due = phases_due(program)
    results: dict[str, Any] = {}
    for name in due:  # one after another: concurrent subflows in one loop cost seconds each in Prefect 3.8
        try:
            results[name] = await PHASE_FLOWS[PhaseName(name)](program, artifact=False)
        except CalendarYearUnknown as exc:
            # A strict program refuses a deadline in a year without an official schedule: that phase's step
            # fails (its run shows the message), the program's other phases still run today.
            get_run_logger().error("%s", exc)
            results[name] = {"calendar_blocked": str(exc)}
    if reminders:  # production runs reminders as their own deployment at the bureau's chosen time
        from flows.reminders import reminders_step

        try:
            results["reminders"] = reminders_step(program)
        except CalendarYearUnknown as exc:
            get_run_logger().error("%s", exc)
            results["reminders"] = {"calendar_blocked": str(exc)}
    results["snapshot"] = snapshot_step(program)  # after the phases: the day's counts as they moved them
    if send_notices:
        results["notices"] = send_notices_step()
    await progress_artifact(program, "program")
    return results
