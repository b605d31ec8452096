"""Phase 6, continuous review: new applications keep forming batches, lists are republished, and the daily
compliance pass finds (and closes) violations of every rule; accounts and contracts are reconciled every day
for every running institution (a late batch's contracts, a new year's on 1 January); the enforcement ladders
move (a person decides each rung at its gate; a passed deadline opens the next gate by itself); in a quarter's
first month last quarter's statistics are issued once, as a report version sent to the program's managers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger

from flows.drug_list import WEEK
from flows.product_flow import product_flow
from flows.steps import (
    accounts_step,
    compliance_step,
    contracts_step,
    drug_list_step,
    enforcement_step,
    enrollment_step,
    progress_artifact,
    quarterly_report_step,
    republish_institutions_step,
)
from flows.waiting import reconcile_until_decided
from models.workdays import CalendarYearUnknown


@dataclass
class ReviewDay:
    """One reconciliation of the whole review; `open_gate_ids` are the gates a waiting run pauses on."""

    result: dict[str, Any] = field(default_factory=dict)
    open_gate_ids: list[int] = field(default_factory=list)


def _review_day(program: str) -> ReviewDay:
    """Every step once, in order; a step a strict calendar blocks fails alone and the review goes on."""
    blocked: list[str] = []
    enrollment_gates: list[int] = []
    try:
        enrollment_gates = enrollment_step(program).open_gate_ids
    except CalendarYearUnknown as exc:
        get_run_logger().error("%s", exc)
        blocked.append(str(exc))
    accounts: dict[str, Any] | None = None
    contracts: dict[str, Any] | None = None
    try:  # every day, for every running institution: late batches, and 1 January's new contracts (每年一签)
        accounts = accounts_step(program)
        contracts = contracts_step(program)
    except CalendarYearUnknown as exc:
        get_run_logger().error("%s", exc)
        blocked.append(str(exc))
    drug_list = drug_list_step(program)
    republished = republish_institutions_step(program)
    compliance = compliance_step(program)
    enforcement: dict[str, Any] | None = None
    try:  # after the compliance pass: a violation found (or cured) today moves its ladder today
        enforcement = enforcement_step(program)
    except CalendarYearUnknown as exc:
        get_run_logger().error("%s", exc)
        blocked.append(str(exc))
    # After the day's reconciling: the statistics count the orders and joins recorded by now (001 §四(四)).
    quarterly = quarterly_report_step(program)
    enforcement_gates = [int(g) for g in (enforcement or {}).get("open_gate_ids", [])]
    result: dict[str, Any] = {"enrollment_open_gates": enrollment_gates, "drug_list_open_gates": drug_list.open_gate_ids,
                              "republished_institution_list": republished, "compliance": compliance,
                              "accounts": accounts, "contracts": contracts, "enforcement": enforcement,
                              "enforcement_open_gates": enforcement_gates, "quarterly_report": quarterly}
    if blocked:
        result["calendar_blocked"] = blocked
    return ReviewDay(result, enrollment_gates + enforcement_gates)


@product_flow("continuous-review")
async def continuous_review_flow(program: str, artifact: bool = True, wait: bool = False, rearm_seconds: int = WEEK,
                                 poll_seconds: int = 2) -> dict[str, Any]:
    """With `wait`, the run pauses while an application's or an enforcement gate is open (the enforcement ladder's
    rungs and enterprise exits are people's decisions too); each decision re-runs the whole day, which repeats
    nothing already done."""
    day = await reconcile_until_decided(lambda: _review_day(program), wait=wait, rearm_seconds=rearm_seconds,
                                        poll_seconds=poll_seconds)
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "continuous_review")
    return day.result
