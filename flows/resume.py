"""After a decision is recorded, wake the Prefect run waiting on that gate, if there still is one."""

from __future__ import annotations

import time
from uuid import UUID

from flows.gate_input import GateDecisionInput
from tasks.gates.rows import DecisionResult

# Prefect marks a run PAUSED first and saves the schema of the input it waits for a moment later; a resume in
# between is rejected with this reason and is worth retrying, not reporting.
_SCHEMA_NOT_YET_SAVED = "schema not found"


def resume_waiting_run(result: DecisionResult, user: str, *, patience_seconds: float = 5.0) -> str:
    """Best-effort: the decision is already in the database, so a lost run only means the next run continues.

    A run that is between two pauses (running its reconciliation, or paused but not yet ready for input) is
    waited for briefly, so a quick decision still wakes it instead of leaving it asleep on a gate that is
    already decided until its re-arm interval.
    """
    if not result.flow_run_id:
        return "没有等待中的流程；下一次运行会读取该决定 / no run is waiting: the next run picks the decision up"
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    run_id = UUID(result.flow_run_id)
    run_input = GateDecisionInput(gate_id=result.gate_id, approve=result.approved, reject=result.rejected,
                                  decided_by=user, recorded=True).model_dump()
    deadline = time.monotonic() + patience_seconds
    try:
        with get_client(sync_client=True) as client:
            while True:
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_paused():
                    response = client.resume_flow_run(run_id, run_input=run_input)
                    if response.status == SetStateStatus.ACCEPT:
                        return f"已唤醒等待中的流程 / resumed run {result.flow_run_id}"
                    reason = str(getattr(response.details, "reason", "") or response.status.value)
                    if _SCHEMA_NOT_YET_SAVED not in reason.lower() or time.monotonic() > deadline:
                        return (f"无法唤醒流程 {result.flow_run_id}（{reason}）；下一次运行会继续 / "
                                f"could not resume run {result.flow_run_id} ({reason}); the next run carries on")
                    time.sleep(0.05)
                    continue
                if state is None or not state.is_running() or time.monotonic() > deadline:
                    name = state.name if state is not None else "unknown"
                    return (f"流程 {result.flow_run_id} 未在等待（{name}）；下一次运行会继续 / run "
                            f"{result.flow_run_id} is not waiting ({name}): the next run carries on")
                time.sleep(0.25)
    except Exception as exc:  # the API may be down or the run gone; the database already holds the decision
        return (f"无法唤醒流程 {result.flow_run_id}（{exc.__class__.__name__}）；下一次运行会继续 / "
                f"could not resume run {result.flow_run_id} ({exc}); the next run carries on")
