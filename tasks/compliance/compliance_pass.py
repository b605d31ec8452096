"""The compliance pass over one program: derive, then reconcile every rule.

A reconciler: run it twice and the second run finds the same rows and writes nothing; a violation whose cause
is gone closes with the date and reason; every opening and closing is in the audit trail.

On SQLite (and with `connections=1`) the pass is one transaction on one connection, as it always was. On
PostgreSQL its independent rule families (`FAMILIES`) run side by side on a few connections, each family one
transaction: PostgreSQL runs neither an INSERT … SELECT nor a read of a temporary table with parallel workers, so
one connection used one of the server's cores while the plain SQL of figure 8 used several (issue #14: 11.2 s of
pass against 5.3 s of plain SQL at 1,000,000 order lines, all of it sequential statements). How it stays one
pass (`run_compliance_pass`):
- the coordinating connection takes the program's lock and holds it, with the imports' locks on deliveries and
  settlements, until every family has committed or rolled back: still one pass per program at a time, and every
  family reads the same deliveries and settlements;
- the coordinator runs the settlement family itself (payables write the program's `ComplianceMark`, whose key
  refers to the program row it holds locked), the other families run on threads, each on its own connection;
- a family's audit rows are sealed at the very end of its transaction, as the pass's were: a worker seals and
  commits; the coordinator seals only after every worker has ended, so no two families hold a chain's head and
  wait for each other;
- a family that fails rolls back alone; the others commit, the pass reports the failure
  (`CompliancePassIncomplete`) and the next pass, a reconciler, completes what is missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
from tasks.compliance.derive import drop_order_completion, lock_inputs, refresh_order_completion, refresh_payables
from tasks.compliance.reconcile import RuleOutcome, create_finding_table, drop_finding_table, reconcile_rule
from tasks.compliance.sql import defer_statistics, flush_statistics
from tasks.programs import get_program, lock_program

log = logging.getLogger(__name__)

PAYMENT = Payment.__table__  # type: ignore[attr-defined]
LP = LowestPrice.__table__  # type: ignore[attr-defined]
VIOLATION = Violation.__table__  # type: ignore[attr-defined]


@dataclass
class PassResult:
    """What one pass did, per rule (in the order the rules ran)."""

    slug: str
    outcomes: list[RuleOutcome] = field(default_factory=list)
    payables_created: int = 0
    # Wall seconds per step ("derive", then each rule's value; "derive <family>" when families ran side by side):
    # where a slow pass spends its time.
    seconds: dict[str, float] = field(default_factory=dict)
    connections: int = 1

    @property
    def opened(self) -> int:
        return sum(o.opened for o in self.outcomes)

    @property
    def closed(self) -> int:
        return sum(o.closed for o in self.outcomes)


class CompliancePassIncomplete(RuntimeError):
    """Some rule families of a pass failed and rolled back; the others committed. The next pass completes them."""

    def __init__(self, slug: str, failed: dict[str, BaseException]) -> None:
        self.slug, self.failed = slug, failed
        names = "、".join(FAMILY_LABELS.get(n, n) for n in failed)
        english = ", ".join(failed)
        # The error's kind only: its text can carry SQL and the rows' values (sanjin/errors.py says why not).
        kinds = ", ".join(sorted({type(e).__name__ for e in failed.values()}))
        super().__init__(
            f"项目 {slug} 的合规检查未全部完成：{names}出错（{kinds}）已回滚，其余规则已提交；再次运行合规检查即可补齐 / the "
            f"compliance pass of {slug} did not complete: the {english} rules failed ({kinds}) and were rolled "
            "back, the others were committed; run the pass again to complete it")


@dataclass(frozen=True)
class Family:
    """Rules that share derived data, run in order in one transaction: what they need is built where they run."""

    name: str
    rules: tuple[ViolationRule, ...]
    completion: bool = False  # COMPLETION (a temporary table, so per connection)
    payables: bool = False  # refresh the payables (and the program's ComplianceMark) first
    reference: bool = False  # the price reference of the three alert bands (temporary tables)


_ALERTS = (ViolationRule.PRICE_ALERT_RED, ViolationRule.PRICE_ALERT_YELLOW, ViolationRule.PRICE_ALERT_BLUE)
# The order the rules ran in one transaction (and are reported in): `_finders`.
_ALL = (ViolationRule.SUPPLY_ABOVE_WINNING_PRICE, ViolationRule.LATE_DELIVERY, ViolationRule.DELIVERY_PATTERN,
        ViolationRule.LATE_PAYMENT, ViolationRule.OVERDUE_INTERVIEW, ViolationRule.SALE_PRICE,
        ViolationRule.ONLINE_OFFLINE_PRICE, ViolationRule.TOO_FEW_DRUGS, ViolationRule.RECOMMENDED_SHARE,
        ViolationRule.SPECIAL_DRUG, ViolationRule.EARLY_EXIT, ViolationRule.LATE_PRICE_REPORT,
        ViolationRule.NO_SALES, *_ALERTS)
# One transaction: everything derived first, then every rule in order (SQLite, `connections=1`).
SEQUENTIAL = Family("all", _ALL, completion=True, payables=True, reference=True)
# Side by side on PostgreSQL. What each family reads that another writes: none. The payables feed the late
# payments and the interview candidates (same family, the coordinator's, which writes the program's mark);
# COMPLETION feeds the payables (an order's one delivery), the late deliveries and the enterprises' pattern, so it
# is built by both of those families (a temporary table is its connection's; both builds run at once); the price
# reference feeds the three alert bands. Every rule reads and writes only its own violations.
# The supply price rule reads the orders alone; it runs in the coordinator's family to even out the two
# connections' work (at 1,000,000 order lines, loaded: coordinator 13.9-20.5 s, worker 15.0-24.4 s with it in
# the price family; the rule is ~1 s of it). The first family is the coordinator's; the others are handed to the
# worker connections in this order, so the longest comes first.
FAMILIES = (
    Family("settlements", (ViolationRule.SUPPLY_ABOVE_WINNING_PRICE, ViolationRule.OVERDUE_INTERVIEW,
                           ViolationRule.LATE_PAYMENT), completion=True, payables=True),
    Family("deliveries", (ViolationRule.LATE_DELIVERY, ViolationRule.DELIVERY_PATTERN), completion=True),
    Family("prices", (ViolationRule.SALE_PRICE,
                      ViolationRule.ONLINE_OFFLINE_PRICE, ViolationRule.TOO_FEW_DRUGS,
                      ViolationRule.RECOMMENDED_SHARE, ViolationRule.SPECIAL_DRUG, ViolationRule.EARLY_EXIT,
                      ViolationRule.LATE_PRICE_REPORT, ViolationRule.NO_SALES, *_ALERTS), reference=True),
)
FAMILY_LABELS = {"settlements": "货款结算与供货价类规则", "deliveries": "配送类规则", "prices": "价格与配备类规则"}


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


def run_compliance_pass(engine: Engine, slug: str, *, clock: Clock, rules: list[ViolationRule] | None = None,
                        connections: int | None = None) -> PassResult:
    """Derive payables and order completion, then reconcile each rule (all of them, or those named).

    `connections`: how many connections the pass uses at once on PostgreSQL (default the setting
    `compliance_connections`); SQLite always uses one.
    """
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        program_id = program.id or 0
    postgres = engine.dialect.name == "postgresql"
    if connections is None:
        from core.settings import get_settings

        connections = get_settings().compliance_connections
    connections = max(1, connections) if postgres else 1
    result = PassResult(slug, connections=connections)
    failed: dict[str, BaseException] = {}
    try:
        with engine.begin() as conn:
            # One pass of a program at a time: two would both find "no violation yet" and open it twice.
            lock_program(conn, program_id, slug=slug, what="compliance pass")
            _tune(conn)
            ctx = PassContext(program_id, defn.rules, clock.today(), clock.now(), working_days_for(conn, defn))
            if connections == 1:
                _run_family(conn, SEQUENTIAL, ctx, rules, result)
                # The pass's audit rows (a few per rule, tasks/compliance/violation_audit.py) are sealed here: its
                # bare connection has no Session commit to do it.
                seal_audit(conn)
            else:
                _side_by_side(engine, conn, ctx, rules, result, failed)
    except _CoordinatorFailed:
        pass  # its transaction rolled back, after every worker had ended; reported below with the others
    result.outcomes.sort(key=lambda o: _ALL.index(o.rule))
    if failed:
        for name, exc in failed.items():
            log.error("项目 %s 的合规检查：%s出错（%s），已回滚 / compliance pass of %s: the %s rules failed (%s) and "
                      "were rolled back", slug, FAMILY_LABELS.get(name, name), type(exc).__name__, slug, name,
                      type(exc).__name__)
        raise CompliancePassIncomplete(slug, failed) from next(iter(failed.values()))
    return result


class _CoordinatorFailed(Exception):
    """The coordinator's own family failed: its transaction rolls back (once the workers have ended)."""


def _side_by_side(engine: Engine, conn: Connection, ctx: PassContext, rules: list[ViolationRule] | None,
                  result: PassResult, failed: dict[str, BaseException]) -> None:
    """The families on `result.connections` connections: the first on the coordinator's `conn` (which holds the
    program's lock), the others on worker threads, each its own connection and transaction."""
    # Deliveries and settlements as every family will read them: their imports wait until the pass ends.
    lock_inputs(conn)
    own, others = FAMILIES[0], [f for f in FAMILIES[1:] if _wanted(f, rules)]
    # The coordinator's ANALYZE of `violation` would hold its lock until the coordinator commits, after every
    # worker: a worker's ANALYZE would wait for it while the coordinator waits for the worker.
    defer_statistics(conn, VIOLATION)
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=result.connections - 1, thread_name_prefix="compliance") as pool:
        futures: list[tuple[Family, Future[None]]] = [
            (family, pool.submit(_worker, engine, family, ctx, rules, result, lock)) for family in others]
        try:
            _run_family(conn, own, ctx, rules, result, lock)
        except Exception as exc:  # its transaction stays open (aborted) and keeps the program's lock
            failed[own.name] = exc
        for family, future in futures:  # every worker ends before the coordinator's transaction does
            try:
                future.result()
            except Exception as exc:
                failed[family.name] = exc
    defer_statistics(conn, VIOLATION, False)
    if own.name in failed:
        raise _CoordinatorFailed
    flush_statistics(conn, VIOLATION)
    seal_audit(conn)  # last: every worker has sealed and committed, so no chain's head is held by another family


def _tune(conn: Connection) -> None:
    """The planner settings every connection of the pass runs its statements with (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    # Every statement of the pass is set-based over the whole program: hash and merge joins. A nested
    # loop chosen from statistics older than the pass's own writes probed tables row by row for minutes.
    conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
    # As the bulk writers (core/bulk.insert_from_select): the pass groups, sorts and hashes a million order
    # lines, deliveries and settlements at provincial scale; the default 4 MB sends those through disk.
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    # A provincial pass costs its statements past `jit_above_cost`, and each then compiled its expressions
    # for a scan it does once (0.16 s of CPU for an UPDATE that touched no row, at 200,000 order lines).
    conn.exec_driver_sql("SET LOCAL jit = off")


def _wanted(family: Family, rules: list[ViolationRule] | None) -> bool:
    return rules is None or any(r in rules for r in family.rules)


def _worker(engine: Engine, family: Family, ctx: PassContext, rules: list[ViolationRule] | None,
            result: PassResult, lock: threading.Lock) -> None:
    """One family on its own connection, in its own transaction, sealed at its end (a thread of the pool)."""
    with engine.begin() as conn:
        _tune(conn)
        _run_family(conn, family, ctx, rules, result, lock)
        seal_audit(conn)


def _run_family(conn: Connection, family: Family, ctx: PassContext, rules: list[ViolationRule] | None,
                result: PassResult, lock: threading.Lock | None = None) -> None:
    """Derive what the family's rules read, reconcile them in order, drop the scratch tables (not the seal)."""
    defn_rules = ctx.rules
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    outcomes: list[RuleOutcome] = []
    payables = 0
    if family.completion:
        refresh_order_completion(conn, ctx.program_id)
    if family.payables:
        payables = refresh_payables(conn, ctx.program_id, ctx.calendar, today=ctx.today, due=defn_rules.payment_due,
                                    roll_forward=defn_rules.payment_due_roll_forward_to_working_day)
    create_finding_table(conn)  # temporary: a failed pass rolls it back with everything else
    if family.reference and (rules is None or set(_ALERTS) & set(rules)):
        prices.create_price_reference(conn, ctx)  # once for the three bands
    seconds["derive" if family is SEQUENTIAL else f"derive {family.name}"] = round(time.perf_counter() - started, 3)
    finders = dict(_finders(ctx, conn))
    for rule in family.rules:
        if rules is not None and rule not in rules:
            continue
        started = time.perf_counter()
        outcomes.append(reconcile_rule(conn, ctx.program_id, rule, finders[rule](), today=ctx.today, now=ctx.now,
                                       close_reason=CLOSE_REASONS[rule], merge_joins=rule in supply.ORDER_KEYED))
        seconds[rule.value] = round(time.perf_counter() - started, 3)
    drop_finding_table(conn)
    flush_statistics(conn, VIOLATION)  # what the first findings wrote, for the next pass and the pages
    if family.reference:
        prices.drop_price_reference(conn)
    if family.completion:
        drop_order_completion(conn)
    with lock or threading.Lock():
        result.outcomes.extend(outcomes)
        result.seconds.update(seconds)
        if family.payables:
            result.payables_created = payables
