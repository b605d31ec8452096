"""Figure 8 (issue #14): the compliance pass at provincial scale, and the import of the platform's order export.

- **Import**: N order lines (default 1,000,000) as the platform's XLSX export through `import_operations`, in
  rows/s, beside the floor of reading the same file with python-calamine alone (measured in the same run).
- **Pass**: `run_compliance_pass` over those orders with one delivery each (a few late, a few missing), their
  settlements (a few late, a few unpaid) and one sale price per institution (default 100,000), beside a
  plain-SQL script doing the same joins and aggregations (order completion, payables, payments covered,
  late orders, the enterprises' pattern, late payables, prices in force against the winning price, the
  median purchase price per product) as `SELECT count(*)`s, in the same run. Target ≤ 2× the plain SQL.
- Peak RSS of the process (target ≤ 1 GiB).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, fresh_database, setup_program, shanghai
from benchmarks.instrument import peak_rss_mb

ORDER_HEADER = ("订单编号", "机构医保编码", "药品统一编码", "配送企业", "采购数量", "采购单价(元)", "下单时间")
TODAY = datetime(2026, 1, 10, 9)
CHUNK = 100_000


def _write_orders(path: Path, n: int, codes: list[str], drugs: list[tuple[str, Decimal]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Sheet1")
    sheet.write_row(0, 0, ORDER_HEADER)
    start = datetime(2025, 10, 1, 8)
    for k in range(n):
        drug, price = drugs[k % len(drugs)]
        if k % 53 == 7:
            price = price * Decimal("1.25")  # a purchase price in the yellow band, and above the winning price
        ordered = start + timedelta(minutes=k * 100 * 24 * 60 // n)  # evenly over 100 days
        sheet.write_row(k + 1, 0, (f"PO{k:08d}", codes[k % len(codes)], drug, "国药控股沈阳有限公司",
                                   str(10 + k % 90), f"{price:.2f}", f"{ordered:%Y-%m-%d %H:%M}"))
    workbook.close()


def _calamine_floor(path: Path) -> float:
    """Seconds python-calamine takes to read the whole sheet, in a process of its own (benchmarks.orders_import):
    it holds ~824 MB at 1,000,000 lines, which would otherwise be this process's peak RSS, not the product's."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "benchmarks.orders_import", "--child", "floor", str(path)],
                         capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def _operations(engine: Any, n_inst: int) -> dict[str, int]:
    """Deliveries (one per order: ~1 % never, ~25 % after 72 h), settlements (~5 % unpaid, some late), prices."""
    from sqlalchemy import func, insert, select

    from models.catalog import Product
    from models.clock import SHANGHAI
    from models.enrollment import Institution
    from models.operations import Delivery, PurchaseOrder, SalePrice, Settlement

    limit = TODAY.replace(tzinfo=SHANGHAI)
    counts = {"deliveries": 0, "settlements": 0, "prices": 0}
    with engine.begin() as conn:
        order = PurchaseOrder.__table__  # type: ignore[attr-defined]
        last = conn.execute(select(func.max(order.c.id))).scalar_one() or 0
        for low in range(0, last + 1, CHUNK):  # a chunk at a time: the rows' dicts stay out of the peak RSS
            deliveries, settlements = [], []
            for oid, ordered, quantity, amount in conn.execute(
                    select(order.c.id, order.c.ordered_at, order.c.quantity, order.c.amount)
                    .where(order.c.id >= low, order.c.id < low + CHUNK)):
                if oid % 100 == 3:
                    continue
                arrived = ordered + timedelta(hours=oid % 97)
                if arrived >= limit:
                    continue
                accepted = arrived.date()
                deliveries.append({"order_id": oid, "arrived_at": arrived, "accepted_on": accepted,
                                   "quantity": quantity})
                if oid % 20 == 11:
                    continue
                paid = min(accepted + timedelta(days=oid % 70), TODAY.date())
                settlements.append({"order_id": oid, "paid_on": paid, "amount": amount})
            if deliveries:
                conn.execute(insert(Delivery), deliveries)
            if settlements:
                conn.execute(insert(Settlement), settlements)
            counts["deliveries"] += len(deliveries)
            counts["settlements"] += len(settlements)
        program_id = conn.execute(select(PurchaseOrder.program_id).limit(1)).scalar_one()  # type: ignore[call-overload]
        insts = [r[0] for r in conn.execute(select(Institution.id).order_by(Institution.id))]  # type: ignore[call-overload]
        products = conn.execute(select(Product.id, Product.winning_price).order_by(Product.id)).all()  # type: ignore[call-overload]
        prices = []
        for i, iid in enumerate(insts[:n_inst]):
            pid, winning = products[i % len(products)]
            sale = Decimal(winning) * (Decimal("1.2") if i % 50 == 0 else 1)
            prices.append({"program_id": program_id, "institution_id": iid, "product_id": pid,
                           "offline_price": sale.quantize(Decimal("0.01")), "online_price": None,
                           "effective_on": date(2025, 12, 1)})
        conn.execute(insert(SalePrice), prices)
        counts["prices"] = len(prices)
    return counts


def _elapsed(kind: str, start: str, end: str) -> str:
    if kind == "sqlite":
        return f"(julianday({end}) - julianday({start})) * 86400"
    return f"extract(epoch from ({end} - {start}))"


# Each plain-SQL count and the rule whose findings it counts: the floor must find what the pass finds.
FLOOR_RULES = {"late_orders": "late_delivery", "enterprise_pattern": "delivery_pattern", "late_payables": "late_payment",
               "prices_in_force": "sale_price", "supply_above_winning_price": "supply_above_winning_price",
               "too_few_drugs": "too_few_drugs", "no_sales": "no_sales"}


def floor_mismatches(floor: dict[str, Any], found: dict[str, int]) -> dict[str, list[int | None]]:
    """Rules whose count in the plain SQL differs from the pass's findings: {rule: [plain SQL, pass]}; empty if none."""
    statements = floor["statements"]
    counts = {rule: statements[name]["rows"] for name, rule in FLOOR_RULES.items()}
    for band, n in statements["median_purchase_price_bands"]["bands"].items():
        counts[f"price_alert_{band}"] = n
    return {rule: [n, found.get(rule)] for rule, n in counts.items() if n != found.get(rule)}


def plain_sql(engine: Any, kind: str, sla_hours: int = 72) -> dict[str, Any]:
    """The same joins and aggregations as the pass, as plain SQL counts (no reconciling, no writing)."""
    from sqlalchemy import text

    month_end = ("date(d.accepted_on, 'start of month', '+2 months', '-1 day')" if kind == "sqlite"
                 else "(date_trunc('month', d.accepted_on) + interval '2 months' - interval '1 day')::date")
    statements = {
        "order_completion": """SELECT count(*) FROM (SELECT o.id, sum(d.quantity) q, max(d.arrived_at) a
            FROM purchaseorder o JOIN delivery d ON d.order_id = o.id GROUP BY o.id, o.quantity
            HAVING sum(d.quantity) >= o.quantity) t""",
        "payables_with_due": f"""SELECT count(*), count(DISTINCT due) FROM (SELECT d.id, o.institution_id,
            d.quantity * o.unit_price amount, {month_end} due FROM delivery d JOIN purchaseorder o ON o.id = d.order_id) t""",
        "payments_covered": """SELECT count(*) FROM (SELECT s.order_id, min(s.paid_on) first_paid, sum(s.amount) paid
            FROM settlement s JOIN purchaseorder o ON o.id = s.order_id GROUP BY s.order_id, o.amount
            HAVING sum(s.amount) >= o.amount) t""",
        "late_orders": f"""SELECT count(*) FROM purchaseorder o JOIN institution i ON i.id = o.institution_id
            LEFT JOIN (SELECT order_id, max(arrived_at) a FROM delivery GROUP BY order_id) d ON d.order_id = o.id
            WHERE (d.a IS NULL AND o.ordered_at < :cutoff)
               OR {_elapsed(kind, "o.ordered_at", "d.a")} > {sla_hours * 3600}""",
        "enterprise_pattern": f"""SELECT count(*) FROM (SELECT o.enterprise_id FROM purchaseorder o
            LEFT JOIN (SELECT order_id, max(arrived_at) a FROM delivery GROUP BY order_id) d ON d.order_id = o.id
            WHERE o.ordered_at > :since AND ((d.a IS NULL AND o.ordered_at < :cutoff)
               OR {_elapsed(kind, "o.ordered_at", "d.a")} > {sla_hours * 3600})
            GROUP BY o.enterprise_id HAVING count(*) >= 3) t""",
        "late_payables": f"""SELECT count(*) FROM delivery d JOIN purchaseorder o ON o.id = d.order_id
            JOIN institution i ON i.id = o.institution_id
            LEFT JOIN (SELECT order_id, max(paid_on) p FROM settlement GROUP BY order_id) s ON s.order_id = o.id
            WHERE {month_end} < :today AND (s.p IS NULL OR s.p > {month_end})""",
        "prices_in_force": """SELECT count(*) FROM saleprice sp
            JOIN (SELECT institution_id, product_id, max(effective_on) e FROM saleprice GROUP BY institution_id, product_id) l
              ON l.institution_id = sp.institution_id AND l.product_id = sp.product_id AND l.e = sp.effective_on
            JOIN product p ON p.id = sp.product_id JOIN institution i ON i.id = sp.institution_id
            WHERE round(sp.offline_price * 100) > round(p.winning_price * 100)""",
        "supply_above_winning_price": """SELECT count(*) FROM purchaseorder o JOIN product p ON p.id = o.product_id
            JOIN institution i ON i.id = o.institution_id
            WHERE round(o.unit_price * 100) > round(p.winning_price * 100)""",
        "too_few_drugs": """SELECT count(*) FROM application a JOIN batch b ON b.id = a.batch_id
            JOIN institution i ON i.id = a.institution_id
            LEFT JOIN (SELECT s.institution_id, count(DISTINCT p.name) n FROM selection s
                       JOIN product p ON p.id = s.product_id WHERE s.ended_on IS NULL OR s.ended_on > :today
                       GROUP BY s.institution_id) c ON c.institution_id = a.institution_id
            WHERE a.state = 'running' AND b.running_at <= :grace AND a.committed_drug_count > 0
              AND coalesce(c.n, 0) < a.committed_drug_count""",
        "no_sales": """SELECT count(*) FROM (SELECT di.product_id, min(d.decided_at) listed FROM declarationitem di
              JOIN enterprisedeclaration d ON d.id = di.declaration_id WHERE d.state = 'accepted'
              GROUP BY di.product_id) l
            LEFT JOIN (SELECT product_id, max(ordered_at) last FROM purchaseorder GROUP BY product_id) o
              ON o.product_id = l.product_id
            WHERE coalesce(o.last, l.listed) < :year_ago""",
        "median_purchase_price_bands": """WITH latest AS (SELECT institution_id, product_id, round(unit_price * 100) c
              FROM purchaseorder WHERE id IN (SELECT max(id) FROM purchaseorder GROUP BY institution_id, product_id)),
            ranked AS (SELECT product_id, c, row_number() OVER (PARTITION BY product_id ORDER BY c) rn,
              count(*) OVER (PARTITION BY product_id) cnt FROM latest),
            med AS (SELECT product_id, sum(c) * CASE WHEN count(*) = 1 THEN 2 ELSE 1 END med2 FROM ranked
              WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2) GROUP BY product_id)
            SELECT count(*), sum(CASE WHEN l.c * 20000 >= m.med2 * 13000 THEN 1 ELSE 0 END),
              sum(CASE WHEN l.c * 20000 >= m.med2 * 12000 AND l.c * 20000 < m.med2 * 13000 THEN 1 ELSE 0 END),
              sum(CASE WHEN l.c * 20000 >= m.med2 * 11000 AND l.c * 20000 < m.med2 * 12000 THEN 1 ELSE 0 END)
            FROM latest l JOIN med m ON m.product_id = l.product_id JOIN institution i ON i.id = l.institution_id
            WHERE m.med2 > 0""",
    }
    from models.clock import SHANGHAI

    now = TODAY.replace(tzinfo=SHANGHAI)
    cutoff, since = now - timedelta(hours=sla_hours), now - timedelta(days=90)
    from datetime import UTC

    if kind == "sqlite":  # stored as naive UTC text
        cutoff, since = (d.astimezone(UTC).replace(tzinfo=None) for d in (cutoff, since))
    grace, year_ago = now - timedelta(days=30), now - timedelta(days=365)  # Shenyang's selection grace, 12 months
    if kind == "sqlite":
        grace, year_ago = (d.astimezone(UTC).replace(tzinfo=None) for d in (grace, year_ago))
    params = {"cutoff": cutoff, "since": since, "today": now.date(), "grace": grace, "year_ago": year_ago}
    out: dict[str, Any] = {}
    start = time.perf_counter()
    with engine.connect() as conn:
        for name, sql in statements.items():
            t0 = time.perf_counter()
            bound = {k: v for k, v in params.items() if f":{k}" in sql}
            row = conn.execute(text(sql), bound).first()
            values = [int(v or 0) for v in row] if row else []
            out[name] = {"seconds": round(time.perf_counter() - t0, 2), "rows": values[0] if values else None}
            if name == "median_purchase_price_bands":  # rows: latest prices compared; then red, yellow, blue
                out[name]["bands"] = dict(zip(("red", "yellow", "blue"), values[1:], strict=True))
    return {"seconds": round(time.perf_counter() - start, 2), "statements": out}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlmodel import col

    from benchmarks.data import make_institutions
    from benchmarks.publication import _insert_running, _seed_drugs
    from core.clock_store import DatabaseClock
    from models.catalog import Product
    from models.clock import SHANGHAI
    from models.enrollment import Institution
    from models.operations import ComplianceMark, Delivery, Payment, PurchaseOrder, Violation
    from tasks.compliance.compliance_pass import run_compliance_pass
    from tasks.intake.operations_import import import_operations

    home = Path(cfg["home"])
    n_orders, n_inst = int(cfg["orders"]), int(cfg["price_institutions"])
    # 1,000,000 lines are more than the upload limit's default 500,000 rows: a bureau importing such exports
    # raises SANJIN_IMPORT_MAX_ROWS, as here (the file and unpacked-size limits hold as they are).
    import os

    from core.settings import get_settings

    os.environ["SANJIN_IMPORT_MAX_ROWS"] = str(max(n_orders + 10, 500_000))
    get_settings.cache_clear()
    n_prod = max(10, min(int(cfg["products"]), 2_000))
    with fresh_database(cfg["db"], home, name="compliance") as db:
        engine = db.engine
        setup_program(engine, home, shanghai(9, 1))
        t0 = time.perf_counter()
        _seed_drugs(engine, n_prod)
        _insert_running(engine, make_institutions(n_inst, seed=14), batch_number=1)
        with engine.connect() as conn:
            codes = [r[0] for r in conn.execute(select(Institution.insurance_code).order_by(Institution.id))]  # type: ignore[call-overload]
            drugs = [(r[0], Decimal(r[1])) for r in conn.execute(
                select(Product.drug_code, Product.winning_price).order_by(Product.id))]  # type: ignore[call-overload]
        path = home / "orders.xlsx"
        _write_orders(path, n_orders, codes, drugs)
        setup = time.perf_counter() - t0
        clock = DatabaseClock(engine)
        clock.set(TODAY.replace(tzinfo=SHANGHAI))

        floor = _calamine_floor(path)
        t0 = time.perf_counter()
        imported = import_operations(engine, SLUG, "orders", path, clock=clock, actor="platform")
        import_seconds = time.perf_counter() - t0
        counts = _operations(engine, n_inst)
        if db.kind == "postgres":
            from sqlalchemy import text

            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))

        t0 = time.perf_counter()
        first = run_compliance_pass(engine, SLUG, clock=clock)
        pass_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = run_compliance_pass(engine, SLUG, clock=clock)
        rerun_seconds = time.perf_counter() - t0
        baseline = plain_sql(engine, db.kind)
        with engine.connect() as conn:
            payables = conn.execute(select(func.count()).select_from(Payment)).scalar_one()
            # Deliveries the pass has seen (at or below its mark): those without a payable were paid on time.
            mark = conn.execute(select(func.max(ComplianceMark.delivery_id))).scalar_one() or 0
            seen = conn.execute(select(func.count()).where(col(Delivery.id) <= mark)).scalar_one()
            violations = conn.execute(select(func.count()).select_from(Violation)).scalar_one()
            orders = conn.execute(select(func.count()).select_from(PurchaseOrder)).scalar_one()
        by_rule = {o.rule.value: o.opened for o in first.outcomes}
        mismatches = floor_mismatches(baseline, {o.rule.value: o.found for o in first.outcomes})
        return {
            "db": cfg["db"], "orders": n_orders, "price_institutions": n_inst, "products": n_prod,
            "setup_seconds_untimed": round(setup, 2), "rows": {"orders": orders, **counts, "payables": payables,
                                                                            "deliveries_seen": seen},
            "import": {"seconds": round(import_seconds, 2), "created": imported.created,
                       "rows_per_second": round(n_orders / import_seconds) if import_seconds else None,
                       "calamine_read_seconds": round(floor, 2),
                       "calamine_rows_per_second": round(n_orders / floor) if floor else None},
            "pass": {"seconds": round(pass_seconds, 2), "opened": first.opened, "by_rule": by_rule,
                     "step_seconds": first.seconds, "rerun_step_seconds": second.seconds,
                     "rerun_seconds": round(rerun_seconds, 2), "rerun_opened": second.opened,
                     "rerun_closed": second.closed, "violations": violations},
            "plain_sql": baseline,
            "ratio": round(pass_seconds / baseline["seconds"], 2) if baseline["seconds"] else None,
            "plain_sql_differs_from_pass": mismatches,
            "checks": {"ok": imported.created == n_orders == orders and second.opened == second.closed == 0
                       and first.opened > 0 and not mismatches},
            "peak_rss_mb_product": round(peak_rss_mb(), 1),
        }
