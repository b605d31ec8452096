"""Phase 5, contract signing: an annual agreement with each enterprise whose products were selected."""

from __future__ import annotations

from typing import Any

from flows.product_flow import product_flow
from flows.steps import contracts_step, progress_artifact


@product_flow("contract-signing")
async def contracts_flow(program: str, artifact: bool = True) -> dict[str, Any]:
    """No gate per contract: unsigned ones past due are laggards (reminded, then escalated)."""
    report = contracts_step(program)
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "contracts")
    return report
