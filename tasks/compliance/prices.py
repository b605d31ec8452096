"""Finding queries for prices: sale price by kind, online = offline, red/yellow/blue alerts, price reports, no sales.

The rules themselves are `models.compliance.pricing`, `.price_alerts` and `.listing`; money is compared in
integer cents and shares in basis points, so 15.00 % and 15.01 % fall on the right sides on SQLite too.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from models.catalog import DeclarationItem, EnterpriseDeclaration, Product
from models.clock import SHANGHAI
from models.compliance.codes import SubjectType
from models.compliance.listing import price_report_due
from models.compliance.price_alerts import AlertBand
from models.enrollment import Institution
from models.operations import LowestPrice, PriceReport, PurchaseOrder, SalePrice
from models.states import DeclarationState, InstitutionCategory
from tasks.compliance.context import PassContext
from tasks.compliance.sql import basis_points, by_date, cents, evidence, kinds_of, text_of

SP = SalePrice.__table__  # type: ignore[attr-defined]
PROD = Product.__table__  # type: ignore[attr-defined]
INST = Institution.__table__  # type: ignore[attr-defined]
ORDER = PurchaseOrder.__table__  # type: ignore[attr-defined]
LP = LowestPrice.__table__  # type: ignore[attr-defined]
PR = PriceReport.__table__  # type: ignore[attr-defined]
DI = DeclarationItem.__table__  # type: ignore[attr-defined]
DECL = EnterpriseDeclaration.__table__  # type: ignore[attr-defined]

PUBLIC = kinds_of(InstitutionCategory.PUBLIC_GRASSROOTS)
PRIVATE = kinds_of(InstitutionCategory.PRIVATE_MEDICAL)


def _prices_in_force(ctx: PassContext) -> Any:
    """Each institution's latest sale price of each product by execution date (up to today)."""
    latest = (select(SP.c.institution_id, SP.c.product_id, func.max(SP.c.effective_on).label("eff"))
              .where(SP.c.program_id == ctx.program_id, SP.c.effective_on <= ctx.today)
              .group_by(SP.c.institution_id, SP.c.product_id).subquery("latest"))
    return SP.join(latest, and_(latest.c.institution_id == SP.c.institution_id,
                                latest.c.product_id == SP.c.product_id, latest.c.eff == SP.c.effective_on)) \
        .join(PROD, PROD.c.id == SP.c.product_id).join(INST, INST.c.id == SP.c.institution_id)


def _cap_bp(ctx: PassContext) -> ColumnElement[int]:
    markup = ctx.rules.markup
    index_cap = markup.pharmacy_max_with_index
    whens: list[Any] = [(INST.c.kind.in_(PUBLIC), basis_points(markup.public_max)),
                        (INST.c.kind.in_(PRIVATE), basis_points(markup.private_max))]
    if index_cap is not None:
        whens.append((INST.c.price_index_ok.is_(True), basis_points(index_cap)))
    return case(*whens, else_=basis_points(markup.pharmacy_max))


def sale_prices(ctx: PassContext) -> Select[Any]:
    """Prices in force above the cap of the institution's kind, or a public price other than the winning one."""
    sale, win = cents(SP.c.offline_price), cents(PROD.c.winning_price)
    cap = _cap_bp(ctx)
    broken = sale * 10000 > win * (10000 + cap)
    if ctx.rules.markup.public_max == 0:
        broken = or_(broken, and_(INST.c.kind.in_(PUBLIC), sale < win))
    return (
        select(literal(SubjectType.INSTITUTION.value), SP.c.institution_id, PROD.c.drug_code, INST.c.district,
               evidence({"药品统一编码": PROD.c.drug_code, "产品名称": PROD.c.name,
                         "中选价": text_of(PROD.c.winning_price), "销售价": text_of(SP.c.offline_price),
                         "执行日期": text_of(SP.c.effective_on), "加价上限(万分比)": cap}),
               literal(None))
        .select_from(_prices_in_force(ctx))
        .where(broken)
    )


def online_prices(ctx: PassContext) -> Select[Any]:
    """Prices in force whose online price is not the offline one (where the program requires them equal)."""
    applies = literal(bool(ctx.rules.online_price_equals_offline))
    return (
        select(literal(SubjectType.INSTITUTION.value), SP.c.institution_id, PROD.c.drug_code, INST.c.district,
               evidence({"药品统一编码": PROD.c.drug_code, "产品名称": PROD.c.name,
                         "线下销售价": text_of(SP.c.offline_price), "线上销售价": text_of(SP.c.online_price),
                         "执行日期": text_of(SP.c.effective_on)}),
               literal(None))
        .select_from(_prices_in_force(ctx))
        .where(applies, SP.c.online_price.is_not(None), cents(SP.c.online_price) != cents(SP.c.offline_price))
    )


# The reference every price alert compares with: each institution's latest purchase price of each product (in
# cents) and the median of those per product (doubled, so an even count's mean of the two middle prices stays an
# integer). Computed once per pass into two temporary tables: the three bands used to recompute it each, and the
# nested window subqueries ran for seconds per band on SQLite (10 s each at 100,000 order lines under load).
_REFERENCE = MetaData()
LATEST = Table("compliance_latest_price", _REFERENCE, Column("institution_id", Integer, nullable=False),
               Column("product_id", Integer, nullable=False), Column("c", BigInteger, nullable=False),
               prefixes=["TEMPORARY"])
MEDIAN = Table("compliance_median_price", _REFERENCE, Column("product_id", Integer, primary_key=True),
               Column("med2", BigInteger, nullable=False), prefixes=["TEMPORARY"])


def create_price_reference(conn: Connection, ctx: PassContext) -> None:
    """Fill the latest purchase prices and their median per product (the region's reference, seed 004)."""
    _REFERENCE.create_all(conn, checkfirst=True)
    conn.execute(delete(LATEST))
    conn.execute(delete(MEDIAN))
    latest_ids = (select(func.max(ORDER.c.id)).where(ORDER.c.program_id == ctx.program_id)
                  .group_by(ORDER.c.institution_id, ORDER.c.product_id))
    conn.execute(insert(LATEST).from_select(
        ["institution_id", "product_id", "c"],
        select(ORDER.c.institution_id, ORDER.c.product_id, cents(ORDER.c.unit_price)).where(ORDER.c.id.in_(latest_ids))))
    ranked = (select(LATEST.c.product_id, LATEST.c.c,
                     func.row_number().over(partition_by=LATEST.c.product_id, order_by=LATEST.c.c).label("rn"),
                     func.count().over(partition_by=LATEST.c.product_id).label("cnt"))
              .subquery("ranked"))
    middle = ranked.c.rn.in_([(ranked.c.cnt + 1) / 2, (ranked.c.cnt + 2) / 2])
    conn.execute(insert(MEDIAN).from_select(
        ["product_id", "med2"],
        select(ranked.c.product_id, func.sum(ranked.c.c) * case((func.count() == 1, 2), else_=1))
        .where(middle).group_by(ranked.c.product_id)))


def drop_price_reference(conn: Connection) -> None:
    _REFERENCE.drop_all(conn, checkfirst=True)


def price_alerts(ctx: PassContext, band: AlertBand) -> Select[Any]:
    """Institutions whose latest purchase price of a product is in `band` above the program's median of it.

    Reads the reference `create_price_reference` filled for this pass.
    """
    bands = ctx.rules.price_alerts
    blue, yellow, red = (basis_points(b) for b in (bands.blue, bands.yellow, bands.red))
    scaled = LATEST.c.c * 2 * 10000

    def at_least(bp: int) -> ColumnElement[bool]:
        return scaled >= MEDIAN.c.med2 * (10000 + bp)

    condition = {AlertBand.RED: at_least(red),
                 AlertBand.YELLOW: and_(at_least(yellow), ~at_least(red)),
                 AlertBand.BLUE: and_(at_least(blue), ~at_least(yellow))}[band]
    return (
        select(literal(SubjectType.INSTITUTION.value), LATEST.c.institution_id, PROD.c.drug_code, INST.c.district,
               evidence({"药品统一编码": PROD.c.drug_code, "采购价(分)": LATEST.c.c,
                         "参考价(分)": MEDIAN.c.med2 / 2.0, "参考": "中位数"}),
               literal(None))
        .select_from(LATEST.join(MEDIAN, MEDIAN.c.product_id == LATEST.c.product_id)
                     .join(PROD, PROD.c.id == LATEST.c.product_id).join(INST, INST.c.id == LATEST.c.institution_id))
        .where(MEDIAN.c.med2 > 0, condition)
    )


def late_price_reports(ctx: PassContext, effective_dates: list[Any]) -> Select[Any]:
    """New national lowest prices not reported within N working days: open until reported, then history."""
    n = ctx.rules.price_report_working_days
    dues = {d: price_report_due(d, n, ctx.calendar) for d in effective_dates}
    overdue = [d for d, due in dues.items() if due < ctx.today]
    due = by_date(LP.c.effective_on, dues)
    answer = (select(func.min(PR.c.reported_on)).where(PR.c.program_id == ctx.program_id,
                                                       PR.c.drug_code == LP.c.drug_code,
                                                       PR.c.reported_on >= LP.c.effective_on).scalar_subquery())
    key = LP.c.drug_code + literal("@") + text_of(LP.c.effective_on)
    makers = select(PROD.c.drug_code, PROD.c.enterprise_id).distinct().subquery("makers")
    return (
        select(literal(SubjectType.ENTERPRISE.value), makers.c.enterprise_id, key, literal(None, String),
               evidence({"药品统一编码": LP.c.drug_code, "全国最低价": text_of(LP.c.price),
                         "执行日期": text_of(LP.c.effective_on), "申报期限": text_of(due),
                         "申报日期": text_of(answer), "工作日": n}),
               answer)
        .join(makers, makers.c.drug_code == LP.c.drug_code)
        .where(LP.c.program_id == ctx.program_id, LP.c.effective_on.in_(overdue),
               or_(answer.is_(None), answer > due))
    )


def no_sales(ctx: PassContext) -> Select[Any]:
    """Listed products with no order for N months (from the last order, or the listing if none)."""
    cutoff = datetime.combine(ctx.today - relativedelta(months=ctx.rules.no_sales_close_months), time(0), SHANGHAI)
    listed = (select(DI.c.product_id, func.min(DECL.c.decided_at).label("listed"))
              .join(DECL, DECL.c.id == DI.c.declaration_id)
              .where(DECL.c.program_id == ctx.program_id, DECL.c.state == DeclarationState.ACCEPTED.value,
                     DECL.c.decided_at.is_not(None))
              .group_by(DI.c.product_id).subquery("listed"))
    last = (select(ORDER.c.product_id, func.max(ORDER.c.ordered_at).label("last"))
            .where(ORDER.c.program_id == ctx.program_id).group_by(ORDER.c.product_id).subquery("last"))
    since = case((last.c.last > listed.c.listed, last.c.last), else_=listed.c.listed)
    return (
        select(literal(SubjectType.PRODUCT.value), listed.c.product_id, literal(""), literal(None, String),
               evidence({"药品统一编码": PROD.c.drug_code, "产品名称": PROD.c.name,
                         "最近采购": text_of(last.c.last), "挂网时间": text_of(listed.c.listed),
                         "月数": ctx.rules.no_sales_close_months}),
               literal(None))
        .select_from(listed.outerjoin(last, last.c.product_id == listed.c.product_id)
                     .join(PROD, PROD.c.id == listed.c.product_id))
        .where(since < literal(cutoff, ORDER.c.ordered_at.type))
    )
