"""Finding queries for supply and settlement: supply price, late deliveries, an enterprise's pattern, payments.

The rules themselves are `models.compliance.delivery` and `models.compliance.payment`; these are their
set-based forms over a whole program (one SELECT each), tested against the same boundaries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import String, and_, case, false, func, literal, or_, select, true
from sqlalchemy.sql.selectable import Select

from models.catalog import Product
from models.compliance.codes import SubjectType, ViolationRule
from models.compliance.payment import INTERVIEW_CATEGORIES, interview_threshold
from models.enrollment import Institution
from models.operations import Payment, PurchaseOrder
from tasks.compliance.context import PassContext
from tasks.compliance.derive import COMPLETION
from tasks.compliance.sql import ElapsedOver, MoneyAbove, evidence, kinds_of, text_of

ORDER = PurchaseOrder.__table__  # type: ignore[attr-defined]
PAYMENT = Payment.__table__  # type: ignore[attr-defined]
INST = Institution.__table__  # type: ignore[attr-defined]
PROD = Product.__table__  # type: ignore[attr-defined]


def supply_above_winning_price(ctx: PassContext) -> Select[Any]:
    """Orders supplied above the product's winning price, against its enterprise (its commitment, 001/002).

    Only where the program asks for the commitment (`rules.commit_at_or_below_winning_price`); otherwise the
    query finds nothing, so violations from an earlier setting close.
    """
    return (
        select(literal(SubjectType.ENTERPRISE.value), ORDER.c.enterprise_id, ORDER.c.order_no, INST.c.district,
               evidence({"订单编号": ORDER.c.order_no, "机构": INST.c.name, "药品统一编码": PROD.c.drug_code,
                         "采购单价": text_of(ORDER.c.unit_price), "中选价": text_of(PROD.c.winning_price)}),
               literal(None))
        .join(INST, INST.c.id == ORDER.c.institution_id)
        .join(PROD, PROD.c.id == ORDER.c.product_id)
        .where(ORDER.c.program_id == ctx.program_id, MoneyAbove(ORDER.c.unit_price, PROD.c.winning_price),
               true() if ctx.rules.commit_at_or_below_winning_price else false())
    )


def _late_orders(ctx: PassContext) -> Any:
    """Orders completed after the SLA, or still short once it has passed (as of now): a filter on this pass's
    COMPLETION alone, which holds every order of the program with its order time."""
    sla = ctx.rules.delivery_sla_hours * 3600
    latest_order_time = ctx.now - timedelta(hours=ctx.rules.delivery_sla_hours)
    return or_(
        and_(COMPLETION.c.delivered_at.is_(None), COMPLETION.c.ordered_at < latest_order_time),
        ElapsedOver(COMPLETION.c.ordered_at, COMPLETION.c.delivered_at, literal(sla)),
    )


def late_deliveries(ctx: PassContext) -> Select[Any]:
    """Each late order, against its enterprise; cured (history) once the order is complete."""
    return (
        select(literal(SubjectType.ENTERPRISE.value), ORDER.c.enterprise_id, ORDER.c.order_no, INST.c.district,
               evidence({"订单编号": ORDER.c.order_no, "机构": INST.c.name, "下单时间": text_of(ORDER.c.ordered_at),
                         "送达时间": text_of(COMPLETION.c.delivered_at), "时限小时": ctx.rules.delivery_sla_hours}),
               case((COMPLETION.c.delivered_at.is_not(None), COMPLETION.c.accepted_on), else_=literal(None)))
        .select_from(COMPLETION.join(ORDER, ORDER.c.id == COMPLETION.c.order_id)
                     .join(INST, INST.c.id == ORDER.c.institution_id))
        .where(_late_orders(ctx))
    )


def delivery_patterns(ctx: PassContext) -> Select[Any]:
    """Enterprises with at least N late or refused orders placed in the period (the orders' enterprise and time as
    COMPLETION holds them: no join)."""
    since = ctx.now - timedelta(days=ctx.rules.delivery_pattern_days)
    n = func.count()
    return (
        select(literal(SubjectType.ENTERPRISE.value), COMPLETION.c.enterprise_id, literal(""), literal(None, String),
               evidence({"超时订单数": n, "统计起点": since.isoformat(), "阈值": ctx.rules.delivery_pattern_count}),
               literal(None))
        .where(_late_orders(ctx), COMPLETION.c.ordered_at > since, COMPLETION.c.ordered_at <= ctx.now)
        .group_by(COMPLETION.c.enterprise_id)
        .having(n >= ctx.rules.delivery_pattern_count)
    )


def _payable_late() -> Any:
    return or_(PAYMENT.c.paid_on.is_(None), PAYMENT.c.paid_on > PAYMENT.c.due_on)


def late_payments(ctx: PassContext) -> Select[Any]:
    """Payables past 次月底: open while unpaid, history once paid late."""
    key = ORDER.c.order_no + literal("#") + text_of(PAYMENT.c.id)
    return (
        select(literal(SubjectType.INSTITUTION.value), PAYMENT.c.institution_id, key, INST.c.district,
               evidence({"订单编号": ORDER.c.order_no, "应付金额": text_of(PAYMENT.c.amount),
                         "应付日期": text_of(PAYMENT.c.due_on), "付清日期": text_of(PAYMENT.c.paid_on)}),
               case((PAYMENT.c.paid_on <= ctx.today, PAYMENT.c.paid_on), else_=literal(None)))
        .join(ORDER, ORDER.c.id == PAYMENT.c.order_id)
        .join(INST, INST.c.id == PAYMENT.c.institution_id)
        .where(ORDER.c.program_id == ctx.program_id, PAYMENT.c.due_on < ctx.today, _payable_late())
    )


def interview_candidates(ctx: PassContext, distinct_dues: list[Any]) -> Select[Any]:
    """Private institutions and pharmacies with a payable unpaid more than N months after its due date."""
    months = ctx.rules.overdue_interview_after_months
    overdue = [d for d in distinct_dues if ctx.today > interview_threshold(d, months)]
    kinds = [k for c in INTERVIEW_CATEGORIES for k in kinds_of(c)]
    n, amount, oldest = func.count(), func.sum(PAYMENT.c.amount), func.min(PAYMENT.c.due_on)
    return (
        select(literal(SubjectType.INSTITUTION.value), PAYMENT.c.institution_id, literal(""), INST.c.district,
               evidence({"逾期笔数": n, "逾期金额": text_of(amount), "最早应付日期": text_of(oldest),
                         "超过月数": months}),
               literal(None))
        .join(ORDER, ORDER.c.id == PAYMENT.c.order_id)
        .join(INST, INST.c.id == PAYMENT.c.institution_id)
        .where(ORDER.c.program_id == ctx.program_id, INST.c.kind.in_(kinds), PAYMENT.c.due_on.in_(overdue),
               or_(PAYMENT.c.paid_on.is_(None), PAYMENT.c.paid_on > ctx.today))
        .group_by(PAYMENT.c.institution_id, INST.c.district)
    )


# The rules whose finding query joins by order id inputs that come in that order by their keys: the late orders of
# COMPLETION to the orders, or the payables (by their order_id index) to the orders. The late payments merged read the orders'
# key up to the last payable's order; hashed, they built a table of every order (~1,000,000 rows): their SELECT
# alone, psql, serial as in the INSERT, 0.62 s of CPU merged against 1.0 s hashed at 1,000,000 lines.
ORDER_KEYED = frozenset({ViolationRule.LATE_DELIVERY, ViolationRule.LATE_PAYMENT})

__all__ = ["ORDER_KEYED", "delivery_patterns", "interview_candidates", "late_deliveries", "late_payments"]
