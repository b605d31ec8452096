"""Phase 4, account registration: every approved non-proxy institution needs a platform account."""

from __future__ import annotations

from typing import Any

from flows.product_flow import product_flow
from flows.steps import accounts_step, progress_artifact


@product_flow("account-registration")
async def accounts_flow(program: str, artifact: bool = True) -> dict[str, Any]:
    """No gate: status arrives by import or CLI; laggards are listed and reminded."""
    report = accounts_step(program)
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "accounts")
    return report
