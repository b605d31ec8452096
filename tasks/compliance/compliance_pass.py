"""The compliance pass over one program: derive, then reconcile every rule, all in one transaction.

A reconciler: run it twice and the second run finds the same rows and writes nothing; a violation whose cause
is gone closes with the date and reason; every opening and closing is in the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.sql.selectable import Select
from sqlmodel import Session

from core.audit_chain import seal_audit
from models.clock import Clock
from models.compliance.codes import CLOSE_REASONS, ViolationRule
from models.compliance.price_alerts import AlertBand
from models.operations import LowestPrice, Payment, Violation
from tasks.calendar import working_days_for
from tasks.compliance import carrying, prices, supply
from tasks.compliance.context import PassContext
from tasks.compliance.derive import drop_order_completion, refresh_order_completion, refresh_payables
from tasks.compliance.reconcile import RuleOutcome, create_finding_table, drop_finding_table, reconcile_rule
from tasks.compliance.sql import flush_statistics
from tasks.programs import get_program, lock_program

PAYMENT = Payment.__table__  # type: ignore[attr-defined]
LP = LowestPrice.__table__  # type: ignore[attr-defined]
VIOLATION = Violation.__table__  # type: ignore[attr-defined]


@dataclass
class PassResult:
    """What one pass did, per rule (in the order the rules ran)."""

    slug: str
    outcomes: list[RuleOutcome] = field(default_factory=list)
    payables_created: int = 0
    # Wall seconds per step ("derive", then each rule's value): where a slow pass spends its time.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def opened(self) -> int:
        return sum(o.opened for o in self.outcomes)

    @property
    def closed(self) -> int:
        return sum(o.closed for o in self.outcomes)


def _finders(ctx: PassContext, conn: Connection) -> list[tuple[ViolationRule, Callable[[], Select[Any]]]]:
    def distinct(column: Any, where: Any) -> list[Any]:
        return [r[0] for r in conn.execute(select(column).where(where).distinct())]

    return [
        (ViolationRule.SUPPLY_ABOVE_WINNING_PRICE, lambda: supply.supply_above_winning_price(ctx)),
        (ViolationRule.LATE_DELIVERY, lambda: supply.late_deliveries(ctx)),
        (ViolationRule.DELIVERY_PATTERN, lambda: supply.delivery_patterns(ctx)),
        (ViolationRule.LATE_PAYMENT, lambda: supply.late_payments(ctx)),
        (ViolationRule.OVERDUE_INTERVIEW, lambda: supply.interview_candidates(
            # Every program's due dates: the rule's query keeps the program's payables; joining the orders here
            # to narrow a list of a few dates cost a scan of both tables.
            ctx, distinct(PAYMENT.c.due_on, PAYMENT.c.due_on < ctx.today))),
        (ViolationRule.SALE_PRICE, lambda: prices.sale_prices(ctx)),
        (ViolationRule.ONLINE_OFFLINE_PRICE, lambda: prices.online_prices(ctx)),
        (ViolationRule.TOO_FEW_DRUGS, lambda: carrying.too_few_drugs(ctx)),
        (ViolationRule.RECOMMENDED_SHARE, lambda: carrying.recommended_shares(ctx)),
        (ViolationRule.SPECIAL_DRUG, lambda: carrying.special_drugs(ctx)),
        (ViolationRule.EARLY_EXIT, lambda: carrying.early_exits(ctx, conn)),
        (ViolationRule.LATE_PRICE_REPORT, lambda: prices.late_price_reports(
            ctx, distinct(LP.c.effective_on, LP.c.program_id == ctx.program_id))),
        (ViolationRule.NO_SALES, lambda: prices.no_sales(ctx)),
        (ViolationRule.PRICE_ALERT_RED, lambda: prices.price_alerts(ctx, AlertBand.RED)),
        (ViolationRule.PRICE_ALERT_YELLOW, lambda: prices.price_alerts(ctx, AlertBand.YELLOW)),
        (ViolationRule.PRICE_ALERT_BLUE, lambda: prices.price_alerts(ctx, AlertBand.BLUE)),
    ]


def run_compliance_pass(engine: Engine, slug: str, *, clock: Clock,
                        rules: list[ViolationRule] | None = None) -> PassResult:
    """Derive payables and order completion, then reconcile each rule (all of them, or those named)."""
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        program_id = program.id or 0
    result = PassResult(slug)
    with engine.begin() as conn:
        # One pass of a program at a time: two would both find "no violation yet" and open it twice.
        lock_program(conn, program_id, slug=slug, what="compliance pass")
        if conn.dialect.name == "postgresql":
            # Every statement of the pass is set-based over the whole program: hash and merge joins. A nested
            # loop chosen from statistics older than the pass's own writes probed tables row by row for minutes.
            conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
            # As the bulk writers (core/bulk.insert_from_select): the pass groups, sorts and hashes a million order
            # lines, deliveries and settlements at provincial scale; the default 4 MB sends those through disk.
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            # A provincial pass costs its statements past `jit_above_cost`, and each then compiled its expressions
            # for a scan it does once (0.16 s of CPU for an UPDATE that touched no row, at 200,000 order lines).
            conn.exec_driver_sql("SET LOCAL jit = off")
        started = time.perf_counter()
        ctx = PassContext(program_id, defn.rules, clock.today(), clock.now(), working_days_for(conn, defn))
        refresh_order_completion(conn, program_id)
        result.payables_created = refresh_payables(
            conn, program_id, ctx.calendar, today=ctx.today, due=defn.rules.payment_due,
            roll_forward=defn.rules.payment_due_roll_forward_to_working_day)
        create_finding_table(conn)  # temporary: a failed pass rolls it back with everything else
        alerts = {ViolationRule.PRICE_ALERT_RED, ViolationRule.PRICE_ALERT_YELLOW, ViolationRule.PRICE_ALERT_BLUE}
        if rules is None or alerts & set(rules):
            prices.create_price_reference(conn, ctx)  # once for the three bands
        result.seconds["derive"] = round(time.perf_counter() - started, 3)
        for rule, finder in _finders(ctx, conn):
            if rules is not None and rule not in rules:
                continue
            started = time.perf_counter()
            result.outcomes.append(reconcile_rule(conn, program_id, rule, finder(), today=ctx.today,
                                                  now=ctx.now, close_reason=CLOSE_REASONS[rule],
                                                  merge_joins=rule in supply.ORDER_KEYED))
            result.seconds[rule.value] = round(time.perf_counter() - started, 3)
        drop_finding_table(conn)
        flush_statistics(conn, VIOLATION)  # what the first findings wrote, for the next pass and the pages
        prices.drop_price_reference(conn)
        drop_order_completion(conn)
        # The pass's audit rows (a few per rule, tasks/compliance/violation_audit.py) are sealed here: its bare
        # connection has no Session commit to do it.
        seal_audit(conn)
    return result
