"""Phase 5, contract signing: an annual agreement with each enterprise whose products were selected."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.steps import contracts_step, progress_artifact


@flow(name="contract-signing")
async def contracts_flow(program: str) -> dict[str, Any]:
    """No gate per contract: unsigned ones past due are laggards (reminded, then escalated)."""
    report = contracts_step(program)
    await progress_artifact(program, "contracts")
    return report
