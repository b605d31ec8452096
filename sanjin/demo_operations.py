"""The demo's platform exports of continuous review: orders, deliveries, payments, prices, lowest prices, reports.

Generated in bulk from the running institutions' selections and imported through the product's own
`import_operations`, with a few rows that break each rule the Shenyang program checks (late and missing
deliveries by one enterprise, late and missing payments, prices above the winning price, a public clinic
selling below it, purchase prices in the red/yellow/blue bands, a late and a missing price report).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from core.clock_store import DatabaseClock
from models.catalog import Product
from models.clock import SHANGHAI
from models.enrollment import Application, Institution
from models.operations import Selection
from models.states import ApplicationState, InstitutionCategory, InstitutionKind, category_of
from sanjin import demo_data as data
from tasks.intake.operations_import import COLUMNS, OPERATIONS_KIND_LABELS, OperationsKind, import_operations

ORDERS = 600  # order lines from the selections; a few more carry the price bands


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=SHANGHAI)


def _text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _carried(engine: Engine) -> list[tuple[str, str, Decimal, int, InstitutionKind]]:
    """(institution code, drug code, winning price, enterprise id, kind) of every running selection."""
    with Session(engine) as session:
        return [(r[0], r[1], Decimal(r[2]), int(r[3]), InstitutionKind(r[4])) for r in session.execute(
            select(col(Institution.insurance_code), col(Product.drug_code), col(Product.winning_price),
                   col(Product.enterprise_id), col(Institution.kind))
            .join(Selection, col(Selection.institution_id) == col(Institution.id))
            .join(Product, col(Product.id) == col(Selection.product_id))
            .join(Application, col(Application.institution_id) == col(Institution.id))
            .where(col(Application.state) == ApplicationState.RUNNING)
            .order_by(col(Institution.insurance_code), col(Product.drug_code))).all()]


def import_operations_exports(engine: Engine, slug: str, files: Path, rng: random.Random, clock: DatabaseClock) -> str:
    """Write the six exports as of today and import them; returns what was imported, for the demo's log."""
    today = clock.today()
    carried = _carried(engine)
    if not carried:
        return "无运行中的机构选定药品"
    picks = rng.sample(carried, min(ORDERS, len(carried)))
    orders, deliveries, payments = [], [], []
    slow_enterprise = picks[0][3]
    late_left, missing_left, unpaid_left, paid_late_left = 4, 2, 4, 3
    for k, (code, drug, price, enterprise, _) in enumerate(picks):
        ordered = _at(date(2025, 10, 20) + timedelta(days=rng.randint(0, (today - date(2025, 10, 27)).days)),
                      rng.randint(8, 16))
        number, quantity = f"PO-DEMO-{k:05d}", rng.randint(10, 100)
        orders.append({"订单编号": number, "机构医保编码": code, "药品统一编码": drug, "配送企业": "国药控股沈阳有限公司",
                       "采购数量": str(quantity), "采购单价(元)": str(price), "下单时间": _text(ordered)})
        if enterprise == slow_enterprise and missing_left and ordered.date() >= today - timedelta(days=10):
            missing_left -= 1  # not delivered at all: open until it arrives
            continue
        hours = 80 if enterprise == slow_enterprise and late_left else rng.randint(6, 60)
        late_left -= hours == 80
        arrived = ordered + timedelta(hours=hours)
        if arrived.date() > today:
            continue
        accepted = arrived.date()
        deliveries.append({"订单编号": number, "送达时间": _text(arrived), "验收日期": accepted.isoformat(),
                           "验收数量": str(quantity)})
        due = accepted + relativedelta(months=+1, day=31)  # 次月底
        paid = min(today, due - timedelta(days=rng.randint(0, 20)))
        if due < today and paid_late_left:
            paid_late_left -= 1
            paid = today
        elif due < today and unpaid_left:
            unpaid_left -= 1
            continue
        payments.append({"订单编号": number, "付款日期": paid.isoformat(), "付款金额(元)": str(price * quantity)})
    # One product bought by many: most at the winning price (the median), three in the blue/yellow/red bands.
    _, drug, price, _, _ = picks[1]
    buyers = sorted({c for c, *_ in carried})[:10]
    for n, (buyer, markup) in enumerate(zip(buyers, ["1"] * 7 + ["1.12", "1.25", "1.35"], strict=True)):
        orders.append({"订单编号": f"PO-DEMO-BAND-{n}", "机构医保编码": buyer, "药品统一编码": drug,
                       "配送企业": "国药控股沈阳有限公司", "采购数量": "20",
                       "采购单价(元)": str((price * Decimal(markup)).quantize(Decimal("0.01"))),
                       "下单时间": _text(_at(today - timedelta(days=3), 10))})
    prices = []
    for n, (code, drug, price, _, kind) in enumerate(picks[:80]):
        sale = price
        if category_of(kind) is InstitutionCategory.RETAIL_PHARMACY and n % 20 == 3:
            sale = (price * Decimal("1.2")).quantize(Decimal("0.01"))  # Shenyang: pharmacies at ≤ 中选价
        elif category_of(kind) is InstitutionCategory.PUBLIC_GRASSROOTS and n % 20 == 5:
            sale = (price * Decimal("0.95")).quantize(Decimal("0.01"))  # 零差率 is an equality
        prices.append({"机构医保编码": code, "药品统一编码": drug, "线下销售价(元)": str(sale), "线上销售价(元)": str(sale),
                       "执行日期": date(2025, 12, 1).isoformat()})
    drugs = sorted({d for _, d, *_ in carried})[:3]
    lowest = [{"药品统一编码": d, "全国最低价(元)": "1.00", "执行日期": "2025-10-09"} for d in drugs]
    reports = [{"药品统一编码": drugs[0], "申报日期": "2025-10-20"}]  # in time
    if len(drugs) > 1:
        reports.append({"药品统一编码": drugs[1], "申报日期": "2025-11-28"})  # after 20 working days; drugs[2]: never
    done = []
    for what, rows in ((OperationsKind.ORDERS, orders), (OperationsKind.DELIVERIES, deliveries),
                       (OperationsKind.PAYMENTS, payments), (OperationsKind.PRICES, prices),
                       (OperationsKind.LOWEST_PRICES, lowest), (OperationsKind.PRICE_REPORTS, reports)):
        path = data.write_csv(files / f"平台导出-{what.value}-{today}.csv", COLUMNS[what], rows)
        result = import_operations(engine, slug, what, path, clock=clock, actor="platform")
        done.append(f"{OPERATIONS_KIND_LABELS[what]} {result.created} 行")
    return "；".join(done)
