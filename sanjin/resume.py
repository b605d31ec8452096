"""After a decision is recorded, wake the Prefect run waiting on that gate, if there still is one."""

from __future__ import annotations

from uuid import UUID

from flows.gate_input import GateDecisionInput
from tasks.gates import DecisionResult


def resume_waiting_run(result: DecisionResult, user: str) -> str:
    """Best-effort: the decision is already in the database, so a lost run only means the next run continues."""
    if not result.flow_run_id:
        return "没有等待中的流程；下一次运行会读取该决定 / no run is waiting: the next run picks the decision up"
    from prefect.flow_runs import resume_flow_run

    run_input = GateDecisionInput(gate_id=result.gate_id, approve=result.approved, reject=result.rejected,
                                  decided_by=user, recorded=True).model_dump()
    try:
        resume_flow_run(UUID(result.flow_run_id), run_input=run_input)
    except Exception as exc:  # the run may be gone (killed, crashed, finished); the database already decided
        return (f"等待中的流程 {result.flow_run_id} 无法唤醒（{exc.__class__.__name__}）；下一次运行会继续 / "
                f"could not resume run {result.flow_run_id} ({exc}); the next run carries on")
    return f"已唤醒等待中的流程 / resumed run {result.flow_run_id}"
