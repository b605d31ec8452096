"""How a phase flow waits for people: pause for a decision, record it, reconcile again.

The gate rows are the truth. Prefect's pause is only how a run waits in process: its timeout is a
re-arm interval, not the business deadline (a timed-out pause fails the run, and the next scheduled
run simply waits again). A decision given while no run waits is found in the database next time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from prefect import get_run_logger, task
from prefect.context import FlowRunContext
from prefect.flow_runs import apause_flow_run

from core.clock_store import DatabaseClock
from core.db import shared_engine
from flows.gate_input import GateDecisionInput
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import GateError, attach_flow_run


class HasOpenGates(Protocol):
    open_gate_ids: list[int]


R = TypeVar("R", bound=HasOpenGates)


@task(name="record-gate-decision")
def record_decision(decision: GateDecisionInput) -> str:
    """Write a decision that came through Prefect's form; one from the CLI or web is already written."""
    if decision.recorded:
        return "already recorded"
    engine = shared_engine()
    try:
        result = decide_gate(engine, decision.gate_id, approve=decision.approve, reject=decision.reject,
                             reason=decision.reason, user_name=decision.decided_by, clock=DatabaseClock(engine))
    except GateError as exc:
        # Not this person's to decide, or decided meanwhile elsewhere: the run keeps waiting for a valid one.
        get_run_logger().warning("decision not recorded: %s", exc)
        return "refused"
    return result.state.value


@task(name="attach-waiting-run")
def attach(gate_ids: list[int], flow_run_id: str) -> None:
    attach_flow_run(shared_engine(), gate_ids, flow_run_id)


async def reconcile_until_decided(
    reconcile: Callable[[], R], *, wait: bool, rearm_seconds: int, poll_seconds: int = 2
) -> R:
    """Reconcile; while `wait` and gates are open, pause for a decision and reconcile again."""
    report = reconcile()
    context = FlowRunContext.get()
    while wait and report.open_gate_ids and context is not None and context.flow_run is not None:
        attach(report.open_gate_ids, str(context.flow_run.id))
        decision = await apause_flow_run(wait_for_input=GateDecisionInput, timeout=rearm_seconds,
                                         poll_interval=poll_seconds)
        record_decision(decision)
        report = reconcile()
    return report
