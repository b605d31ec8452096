"""Running flows under the runner's Prefect API and reading back what Prefect recorded."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class FlowCall:
    name: str
    seconds: float
    flow_run_id: str | None
    state: str
    result: Any
    error: str | None = None


async def run_flow(flow: Any, *args: Any, tag: str, **kwargs: Any) -> FlowCall:
    """Call an async flow with a tag (to find its runs in the API later); its wall time as the caller sees it."""
    from prefect import tags

    start = time.perf_counter()
    with tags(tag):
        state = await flow(*args, return_state=True, **kwargs)
    seconds = time.perf_counter() - start
    run_id = state.state_details.flow_run_id
    error = None
    try:
        result = await state.aresult(raise_on_failure=True)
    except Exception as exc:  # the flow failed: keep its time, report its error
        result, error = None, f"{exc.__class__.__name__}: {str(exc)[:1500]}"  # SQL with 100,000 parameters…
    return FlowCall(flow.name, seconds, str(run_id) if run_id else None, state.type.value, result, error)


async def api_counts(tag: str, *, expect_task_runs: int | None = None, settle_seconds: float = 20.0) -> dict[str, Any]:
    """Flow and task runs the API holds for flow runs tagged `tag`, read after the task-run recorder settles.

    Task runs reach the API in the background (events → task-run recorder), so the count is read
    until it reaches `expect_task_runs` or stops changing for 2 s, at most `settle_seconds`.
    With the recorder disabled the API never learns of task runs and the count stays 0.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    flow_filter = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
    start = time.monotonic()
    last: tuple[int, float] | None = None
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(flow_run_filter=flow_filter, limit=200,
                                                sort=FlowRunSort.ID_DESC)  # sort=None: 422 from this server
        while True:
            count = await _count_task_runs(client, flow_filter)
            now = time.monotonic()
            if expect_task_runs is not None and count >= expect_task_runs:
                break
            if last is None or last[0] != count:
                last = (count, now)
            elif now - last[1] >= 2.0:
                break
            if now - start > settle_seconds:
                break
            await asyncio.sleep(0.25)
    return {"flow_runs": len(flow_runs), "task_runs": count, "settled_after_s": round(time.monotonic() - start, 2),
            "flow_run_states": sorted({r.state.type.value for r in flow_runs if r.state is not None})}


async def _count_task_runs(client: Any, flow_filter: Any) -> int:
    from prefect.client.schemas.sorting import TaskRunSort

    total, offset = 0, 0
    while True:
        page = await client.read_task_runs(flow_run_filter=flow_filter, offset=offset, limit=200,
                                           sort=TaskRunSort.ID_DESC)
        total += len(page)
        if len(page) < 200:
            return total
        offset += 200


def read_flow_run_state(run_id: str) -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
        return state.type.value if state is not None else None


def recorder_enabled() -> bool:
    import os

    return os.environ.get("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "true").lower() not in ("false", "0")
