"""Phase 2, enterprise list collection: declarations reviewed one by one, the list approved, published."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flows.product_flow import product_flow
from flows.steps import drug_list_step, progress_artifact
from flows.waiting import reconcile_until_decided

WEEK = 7 * 24 * 3600


@product_flow("drug-list-collection")
async def drug_list_flow(program: str, artifact: bool = True, wait: bool = False, rearm_seconds: int = WEEK) -> dict[str, Any]:
    report = await reconcile_until_decided(lambda: drug_list_step(program), wait=wait, rearm_seconds=rearm_seconds)
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "drug_list")
    return asdict(report)
