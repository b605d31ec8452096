"""Phase 6, continuous review: new applications keep forming batches, lists are republished, and the daily
compliance pass finds (and closes) violations of every rule; accounts and contracts are reconciled every day
for every running institution (a late batch's contracts, a new year's on 1 January); the enforcement ladders
move (a person decides each rung at its gate; a passed deadline opens the next gate by itself); in a quarter's
first month last quarter's statistics are issued once, as a report version sent to the program's managers.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.drug_list import WEEK
from flows.results import PERSIST_RESULT, RESULT_STORAGE
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


@flow(name="continuous-review", result_storage=RESULT_STORAGE, persist_result=PERSIST_RESULT)
async def continuous_review_flow(program: str, artifact: bool = True, wait: bool = False, rearm_seconds: int = WEEK) -> dict[str, Any]:
    blocked: list[str] = []
    enrollment_gates: list[int] = []
    try:
        enrollment = await reconcile_until_decided(lambda: enrollment_step(program), wait=wait,
                                                   rearm_seconds=rearm_seconds)
        enrollment_gates = enrollment.open_gate_ids
    except CalendarYearUnknown as exc:  # a strict program: this step fails alone, the review goes on
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
    if artifact:  # the program flow draws one table for all phases instead
        await progress_artifact(program, "continuous_review")
    result: dict[str, Any] = {"enrollment_open_gates": enrollment_gates, "drug_list_open_gates": drug_list.open_gate_ids,
                              "republished_institution_list": republished, "compliance": compliance,
                              "accounts": accounts, "contracts": contracts, "enforcement": enforcement,
                              "quarterly_report": quarterly}
    if blocked:
        result["calendar_blocked"] = blocked
    return result
