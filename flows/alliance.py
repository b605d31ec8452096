"""Phase 1, 联盟 invitation: invite the cities, collect answers, the manager confirms the members."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flows.product_flow import product_flow
from flows.steps import alliance_step, progress_artifact
from flows.waiting import reconcile_until_decided

WEEK = 7 * 24 * 3600


@product_flow("alliance-invitation")
async def alliance_flow(program: str, artifact: bool = True, wait: bool = False, rearm_seconds: int = WEEK) -> dict[str, Any]:
    report = await reconcile_until_decided(lambda: alliance_step(program), wait=wait, rearm_seconds=rearm_seconds)
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "alliance")
    return asdict(report)
