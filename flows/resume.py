"""After a decision is recorded, wake the Prefect run waiting on that gate — or start one if it is gone.

What it says is what happened: a paused run in its process is "resumed"; a suspended run (work pool) is
"re-queued for a worker"; a run that ended or died (its worker or machine lost, or it timed out) is replaced
by a new run of its deployment, and the message says so. It never claims to have woken a run that is not alive.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from flows.gate_input import GateDecisionInput
from tasks.gates.rows import DecisionResult

# Prefect marks a run PAUSED first and saves the schema of the input it waits for a moment later; a resume in
# between is rejected with this reason and is worth retrying, not reporting.
_SCHEMA_NOT_YET_SAVED = "schema not found"
RECORDED = "决定已记录 / decision recorded"


def resume_waiting_run(result: DecisionResult, user: str, *, patience_seconds: float = 5.0) -> str:
    """Best-effort: the decision is already in the database, so a lost run only means another run continues.

    A run that is between two pauses (running its reconciliation, or paused but not yet ready for input) is
    waited for briefly, so a quick decision still wakes it instead of leaving it asleep on a gate that is
    already decided. A run still running after that, or one that ended, gets a fresh run of its deployment
    beside it: the reconcilers hold the program lock, so two runs never do anything twice.
    """
    if not result.flow_run_id:
        return f"{RECORDED}；没有等待中的流程，下一次运行会读取该决定 / no run is waiting: the next run picks it up"
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ObjectNotFound

    run_id = UUID(result.flow_run_id)
    run_input = GateDecisionInput(gate_id=result.gate_id, approve=result.approved, reject=result.rejected,
                                  decided_by=user, recorded=True).model_dump()
    deadline = time.monotonic() + patience_seconds
    try:
        with get_client(sync_client=True) as client:
            while True:
                try:
                    run = client.read_flow_run(run_id)
                except ObjectNotFound:
                    return (f"{RECORDED}；等待的流程 {run_id} 已不存在，下一次运行会继续 / the waiting run {run_id} no "
                            "longer exists: the next run carries on")
                state = run.state
                if state is not None and state.is_paused():
                    suspended = state.name == "Suspended"
                    response = client.resume_flow_run(run_id, run_input=run_input)
                    if response.status == SetStateStatus.ACCEPT:
                        if suspended:
                            return (f"{RECORDED}；流程 {run_id} 已重新排队，由工作进程继续 / run {run_id} re-queued: a "
                                    "worker carries on")
                        return f"{RECORDED}；已唤醒等待中的流程 / resumed run {run_id}"
                    reason = str(getattr(response.details, "reason", "") or response.status.value)
                    if _SCHEMA_NOT_YET_SAVED not in reason.lower() or time.monotonic() > deadline:
                        return _replace(client, run, f"无法唤醒（{reason}） / could not resume ({reason})")
                    time.sleep(0.05)
                    continue
                if state is not None and (state.is_scheduled() or state.is_pending()):
                    return (f"{RECORDED}；流程 {run_id} 即将运行，会读取该决定 / run {run_id} is about to start and "
                            "reads the decision")
                if state is not None and state.is_running() and time.monotonic() <= deadline:
                    time.sleep(0.25)
                    continue
                name = state.name if state is not None else "unknown"
                return _replace(client, run, f"原流程未在等待（{name}） / the run is not waiting ({name})")
    except Exception as exc:  # the API may be down; the database already holds the decision
        return (f"{RECORDED}；无法联系 Prefect（{exc.__class__.__name__}），下一次运行会继续 / could not reach Prefect "
                f"({exc}): the next run carries on")


def _replace(client: Any, run: Any, why: str) -> str:
    """Start a new run of the waiting run's deployment, keyed so that asking twice starts it once."""
    if run.deployment_id is None:  # a run started by hand (a test, `sanjin run --wait`): nothing to start again
        return f"{RECORDED}；{why}；下一次运行会继续 / the next run carries on"
    state_id = run.state.id if run.state is not None else "none"
    new = client.create_flow_run_from_deployment(
        run.deployment_id, parameters=run.parameters, idempotency_key=f"sanjin-replaces:{run.id}:{state_id}",
        tags=["sanjin", "replaces-waiting-run"])
    return f"{RECORDED}；{why}；已启动新的运行 {new.id} / started run {new.id} to carry on"
