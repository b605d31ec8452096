"""The compliance rules as codes, the violation states and subjects; the Chinese words are `models/labels.py`'s."""

from __future__ import annotations

from enum import StrEnum

from models import labels


class ViolationRule(StrEnum):
    """One code per rule of SPEC's rules table that continuous review checks."""

    SUPPLY_ABOVE_WINNING_PRICE = "supply_above_winning_price"
    LATE_DELIVERY = "late_delivery"
    DELIVERY_PATTERN = "delivery_pattern"
    LATE_PAYMENT = "late_payment"
    OVERDUE_INTERVIEW = "overdue_interview"
    SALE_PRICE = "sale_price"
    ONLINE_OFFLINE_PRICE = "online_offline_price"
    TOO_FEW_DRUGS = "too_few_drugs"
    RECOMMENDED_SHARE = "recommended_share"
    SPECIAL_DRUG = "special_drug"
    EARLY_EXIT = "early_exit"
    LATE_PRICE_REPORT = "late_price_report"
    NO_SALES = "no_sales"
    PRICE_ALERT_RED = "price_alert_red"
    PRICE_ALERT_YELLOW = "price_alert_yellow"
    PRICE_ALERT_BLUE = "price_alert_blue"
    LATE_QUARTERLY_REPORT = "late_quarterly_report"


RULE_LABELS: dict[ViolationRule, str] = {r: labels.VIOLATION_LABELS[r.value] for r in ViolationRule}

# The seed (SPEC's seed table) each rule cites; shown beside the rule in lists and exports.
RULE_SEEDS: dict[ViolationRule, tuple[str, ...]] = {
    ViolationRule.SUPPLY_ABOVE_WINNING_PRICE: ("001", "002"),
    ViolationRule.LATE_DELIVERY: ("000",),
    ViolationRule.DELIVERY_PATTERN: ("000", "001", "002"),
    ViolationRule.LATE_PAYMENT: ("000", "001", "002"),
    ViolationRule.OVERDUE_INTERVIEW: ("000",),
    ViolationRule.SALE_PRICE: ("000", "001", "002"),
    ViolationRule.ONLINE_OFFLINE_PRICE: ("002",),
    ViolationRule.TOO_FEW_DRUGS: ("001", "002"),
    ViolationRule.RECOMMENDED_SHARE: ("002",),
    ViolationRule.SPECIAL_DRUG: ("000",),
    ViolationRule.EARLY_EXIT: ("001", "002"),
    ViolationRule.LATE_PRICE_REPORT: ("004",),
    ViolationRule.NO_SALES: ("004",),
    ViolationRule.PRICE_ALERT_RED: ("004",),
    ViolationRule.PRICE_ALERT_YELLOW: ("004",),
    ViolationRule.PRICE_ALERT_BLUE: ("004",),
    ViolationRule.LATE_QUARTERLY_REPORT: ("001",),
}


class ViolationState(StrEnum):
    """Open while its cause lasts; the compliance pass closes it, with the date and reason, once it is gone."""

    OPEN = "open"
    CLOSED = "closed"


VIOLATION_STATE_LABELS: dict[ViolationState, str] = {v: labels.VIOLATION_STATE_LABELS[v.value] for v in ViolationState}


class SubjectType(StrEnum):
    """Who broke the rule: an institution, an enterprise, or (for closing a listing) a product."""

    INSTITUTION = "institution"
    ENTERPRISE = "enterprise"
    PRODUCT = "product"


SUBJECT_LABELS: dict[SubjectType, str] = {t: labels.VIOLATION_SUBJECT_LABELS[t.value] for t in SubjectType}


def rule_label(rule: ViolationRule | str) -> str:
    """The Chinese name of a rule, for every place a person reads it."""
    return RULE_LABELS[ViolationRule(rule)]


# Why a violation closed by itself: shown with its closing date (obligation rules close when it is met, late).
CLOSE_REASONS: dict[ViolationRule, str] = {
    ViolationRule.SUPPLY_ABOVE_WINNING_PRICE: "订单价格已更正 / the order's price was corrected",
    ViolationRule.LATE_DELIVERY: "订单已足量送达（超时） / the order was delivered in full, late",
    ViolationRule.DELIVERY_PATTERN: "统计期内超时配送次数已低于阈值 / fewer late deliveries in the period than the threshold",
    ViolationRule.LATE_PAYMENT: "货款已结清（逾期） / paid in full, late",
    ViolationRule.OVERDUE_INTERVIEW: "超期货款已结清 / the long-overdue payments were made",
    ViolationRule.SALE_PRICE: "销售价格已纠正 / the sale price was corrected",
    ViolationRule.ONLINE_OFFLINE_PRICE: "线上线下价格已一致 / online and offline prices agree",
    ViolationRule.TOO_FEW_DRUGS: "配备品种数量已达标 / enough drugs are carried",
    ViolationRule.RECOMMENDED_SHARE: "推荐品种占比已达标 / the recommended share is met",
    ViolationRule.SPECIAL_DRUG: "已取得特药定点或不再配备该特药 / designated, or the special drug is no longer carried",
    ViolationRule.EARLY_EXIT: "退出记录已更正 / the exit record was corrected",
    ViolationRule.LATE_PRICE_REPORT: "企业已申报（逾期） / the enterprise reported, late",
    ViolationRule.NO_SALES: "产品已有采购 / the product was ordered again",
    ViolationRule.PRICE_ALERT_RED: "采购价已回落 / the purchase price came down",
    ViolationRule.PRICE_ALERT_YELLOW: "采购价已变动 / the purchase price moved out of the band",
    ViolationRule.PRICE_ALERT_BLUE: "采购价已变动 / the purchase price moved out of the band",
    ViolationRule.LATE_QUARTERLY_REPORT: "季度统计已上报 / the quarterly statistics were submitted",
}
