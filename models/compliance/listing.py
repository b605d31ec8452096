"""The listing duties of seed 004: report a new national lowest price in time; a year without sales closes a listing.

Seed 004 §二(三): "生产企业应在新的全国各省最低价执行20个工作日内向省平台申报价格信息" and
"挂网产品一年无销售的，视情况予以关闭采购状态并择期做失效处理。"

Parameters: `rules.price_report_working_days` (20) and `rules.no_sales_close_months` (12, "一年").

"Within 20 working days" counts working days after the day the new lowest price took effect, on the Chinese
calendar with 调休 (`models.workdays.WorkingDays.add_working_days`): effective Monday 2025-09-22, the 20th working
day is 2025-10-24 across the National Day holiday and its two make-up Saturdays; a report that day is in time, on
the 21st (2025-10-27) it is late. Only a report on or after the effective date answers it. The violation is open
while no report has come and the due date has passed, and closes when the report arrives.

A product on the list with no order anywhere for 12 months (counted from its last order, or from when it was
listed if it never sold) is proposed for closing; an order closes the proposal.

Set-based pass: due dates need the calendar, so Python maps each distinct effective date (few) to its due date and
one statement joins lowest-price events with the earliest report on or after the effective date; the no-sales rule
is one statement: listed products LEFT JOIN MAX(ordered_at) per product.
"""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta

from models.workdays import WorkingDays


def price_report_due(effective_on: date, working_days: int, calendar: WorkingDays) -> date:
    """The last day a new national lowest price may be reported (the n-th working day after it took effect)."""
    return calendar.add_working_days(effective_on, working_days)


def is_price_report_late(
    effective_on: date, reported_on: date | None, today: date, working_days: int, calendar: WorkingDays
) -> bool:
    """Reported after the due date, or not reported once it has passed (reports before the event do not count)."""
    due = price_report_due(effective_on, working_days, calendar)
    answer = reported_on if reported_on is not None and reported_on >= effective_on else None
    return (answer if answer is not None else today) > due


def no_sales_since(last_sale_on: date | None, listed_on: date, today: date, months: int) -> bool:
    """No order for more than `months` months, counted from the last sale or, if none, from the listing."""
    since = last_sale_on if last_sale_on is not None and last_sale_on > listed_on else listed_on
    return today > since + relativedelta(months=months)
