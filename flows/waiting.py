"""How a phase flow waits for people: pause (or suspend) for a decision, record it, reconcile again.

The gate rows are the truth. Prefect's pause is only how a run waits: its timeout is a re-arm interval,
not the business deadline (a timed-out wait fails the run, and the next scheduled run simply waits
again). A decision given while no run waits is found in the database next time.

A run a worker started (a work-pool deployment, `sanjin deploy`) **suspends**: its process exits and
frees the worker slot and its ~140 MB for the hours people take; a decision re-queues it and a worker
runs the flow again from the top, which is safe because every reconciler is. A run of `sanjin serve`
or the demo, which has no worker to come back to, pauses in its process as before.

A woken run does not replay its earlier waits. Each suspension has a key of its own (never Prefect's
call counter), so a woken run reads the decision that woke it (if it came through Prefect's form; the
CLI and web write theirs to the database first), reconciles once from what the database says, and
suspends again on whatever is still open. Replaying every earlier suspend call, as Prefect's counter
keys make a run do, cost the k-th wake k reconciliations (1–2 s each under load) before its first
useful step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from prefect import get_run_logger, task
from prefect.context import FlowRunContext
from prefect.flow_runs import apause_flow_run, asuspend_flow_run

from core.clock_store import DatabaseClock
from core.db import shared_engine
from flows.gate_input import GateDecisionInput
from tasks.gates.rows import GateError, attach_waiting_run


class HasOpenGates(Protocol):
    open_gate_ids: list[int]


R = TypeVar("R", bound=HasOpenGates)


@task(name="record-gate-decision")
def record_decision(decision: GateDecisionInput) -> str:
    """Write a decision that came through Prefect's form; one from the CLI or web is already written."""
    if decision.recorded:
        return "already recorded"
    from tasks.gates.deciding import decide_gate  # its effects' modules only when a form's decision is written

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
def attach(gate_ids: list[int], flow_run_id: str) -> list[int]:
    """Attach this run to its open gates; the ones still open, and the runs it supersedes are cancelled.

    Superseded: a run the schedule re-armed earlier, or one a decision started beside a busy run. Cancelling
    the older waiter keeps one waiting run per gate, instead of suspended runs piling up until they time out.
    """
    still_open, superseded = attach_waiting_run(shared_engine(), gate_ids, flow_run_id)
    if superseded:
        _cancel_waiting(superseded, flow_run_id)
    return still_open


def _cancel_waiting(run_ids: list[str], newer: str) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            try:
                state = client.read_flow_run(UUID(run_id)).state
                if state is not None and state.is_paused():
                    client.set_flow_run_state(UUID(run_id), Cancelled(message=f"superseded by run {newer}"), force=True)
            except Exception as exc:  # gone, or the API refused: it times out on its own
                get_run_logger().warning("could not cancel superseded run %s: %s", run_id, exc)


def frees_its_worker(context: FlowRunContext) -> bool:
    """True for a run a work-pool worker started: it can suspend and be started again by a worker."""
    run = context.flow_run
    return run is not None and run.deployment_id is not None and run.work_pool_name is not None


async def reconcile_until_decided(
    reconcile: Callable[[], R], *, wait: bool, rearm_seconds: int, poll_seconds: int = 2
) -> R:
    """Reconcile; while `wait` and gates are open, pause (or suspend) for a decision and reconcile again."""
    context = FlowRunContext.get()
    pooled = context is not None and frees_its_worker(context)
    if pooled and context is not None:
        woke_with = await decision_that_woke(context)
        if woke_with is not None and not woke_with.recorded:
            record_decision(woke_with)
    report = reconcile()
    while wait and report.open_gate_ids and context is not None and context.flow_run is not None:
        if not attach(report.open_gate_ids, str(context.flow_run.id)):
            report = reconcile()  # decided while this run reconciled: carry on instead of waiting
            continue
        if pooled:
            # The process ends here (Prefect raises `Pause`); after the decision a worker starts the run again
            # from the top, where `decision_that_woke` reads it. A key of its own: never replayed.
            decision = await asuspend_flow_run(wait_for_input=GateDecisionInput, timeout=rearm_seconds,
                                               key=suspension_key(context))
        else:
            decision = await apause_flow_run(wait_for_input=GateDecisionInput, timeout=rearm_seconds,
                                             poll_interval=poll_seconds)
        if decision is not None and not decision.recorded:  # the CLI and web wrote theirs before waking the run
            record_decision(decision)
        report = reconcile()
    return report


_KEY_PREFIX = "sanjin-wait-"


def suspension_key(context: FlowRunContext) -> str:
    """`sanjin-wait-<n>-<random>`: n orders this run's suspensions (the last one woke it), the random part keeps a
    key unique even after Prefect clears a run's pause keys (a retry, a crash rescheduled), so no stale input
    under an old key is ever read back as a new decision."""
    from uuid import uuid4

    return f"{_KEY_PREFIX}{len(_our_keys(context)) + 1}-{uuid4().hex[:8]}"


def _our_keys(context: FlowRunContext) -> list[str]:
    run = context.flow_run
    keys = (run.empirical_policy.pause_keys or set()) if run is not None else set()
    return [k for k in keys if k.startswith(_KEY_PREFIX)]


async def decision_that_woke(context: FlowRunContext) -> GateDecisionInput | None:
    """The input the run's last suspension was resumed with, or None (a first start, no input, or unreadable).

    Prefect keeps a run's pause keys while it is suspended and woken, so the last one (highest n) is the
    suspension this process follows. One API read; a decision made through the CLI or web is already in the
    database and only says so (`recorded`).
    """
    keys = _our_keys(context)
    if not keys or context.flow_run is None:
        return None
    from prefect.input.actions import aread_flow_run_input
    from prefect.input.run_input import keyset_from_base_key

    last = max(keys, key=lambda k: int(k[len(_KEY_PREFIX):].split("-", 1)[0]))
    try:
        value = await aread_flow_run_input(keyset_from_base_key(f"suspended-{last}")["response"],
                                           flow_run_id=context.flow_run.id)
        return GateDecisionInput(**value) if value else None
    except Exception as exc:  # the database holds every recorded decision: reconciling is still right
        get_run_logger().warning("could not read the decision that woke this run: %s", exc)
        return None
