"""Phase 3, institution enrollment: "申报一批、成熟一批、运行一批", district then city review."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flows.product_flow import product_flow
from flows.steps import enrollment_step, progress_artifact
from flows.waiting import reconcile_until_decided

WEEK = 7 * 24 * 3600


@product_flow("institution-enrollment")
async def enrollment_flow(program: str, artifact: bool = True, wait: bool = False, rearm_seconds: int = WEEK,
                          poll_seconds: int = 2) -> dict[str, Any]:
    report = await reconcile_until_decided(lambda: enrollment_step(program), wait=wait,
                                           rearm_seconds=rearm_seconds, poll_seconds=poll_seconds)
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "enrollment")
    return asdict(report)
