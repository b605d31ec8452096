"""Payment by the end of the month after acceptance (次月底), and overdue payers who are interview candidates.

Seed 000 §四(三): "结清时间原则上不应超过交货验收合格后次月月底。" and "民营医疗机构和零售药店不按时履约结算款超过
2个月的，医保经办机构根据集采药品采购管理相关要求和医保协议相关规定进行约谈，视情节轻重将采取限期整改、暂停医保结算等措施。"
Seed 001 att.2 六 / 002 §九: "承诺药品验收入库后次月底前结清货款" / "结清时间原则上不应超过交货验收合格后次月底".

Parameters: `rules.payment_due` (next_month_end), `rules.payment_due_roll_forward_to_working_day` (whether a month
end that is a rest day moves to the next working day; Shenyang: no, "不应超过"), and
`rules.overdue_interview_after_months` (2, for private medical institutions and pharmacies only).

Each accepted delivery is a payable: its value (accepted quantity × the order's unit price) is due at 次月底 of its
acceptance date. Payments of an order ("partial payments add up") settle its payables oldest due first: a payable
is paid on the first payment date at which the order's cumulative payments reach its cumulative amount owed.
Paid on the due date is on time; the day after is late. The violation is open while the payable is unpaid past its
due date and closes when the payment arrives.

Set-based pass: due dates need the working-day calendar, so Python maps each *distinct* acceptance date of the
program (a few hundred at most) to its due date; one bulk statement writes them. The payable rows (`payment`) are
then refreshed with window sums: cumulative owed per order by due date, cumulative paid per order by payment date,
`paid_on` = MIN(payment date WHERE cumulative paid ≥ cumulative owed). Late = `due_on < today AND (paid_on IS NULL
OR paid_on > today)`; interview = the same with `due_on + N months < today`, grouped by institution.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from models.states import InstitutionCategory
from models.workdays import WorkingDays

# Seed 000 names 民营医疗机构和零售药店 only; public grassroots institutions are settled under 现行结算方式.
INTERVIEW_CATEGORIES = frozenset({InstitutionCategory.PRIVATE_MEDICAL, InstitutionCategory.RETAIL_PHARMACY})


def payment_due_on(accepted_on: date, calendar: WorkingDays, *, roll_forward: bool,
                   due: str = "next_month_end") -> date:
    """次月底 of the acceptance date (`rules.payment_due`), moved to the next working day only if the program says so."""
    if due != "next_month_end":  # the schema admits no other basis today; a new one needs its rule here
        raise ValueError(f"未知的付款期限规则 / unknown payment due rule: {due}")
    return calendar.next_month_end(accepted_on, roll_forward=roll_forward)


def paid_on_dates(owed: Sequence[Decimal], payments: Iterable[tuple[date, Decimal]]) -> list[date | None]:
    """For payables in due order, the date each is settled by the order's payments (oldest first), or None."""
    ordered = sorted(payments, key=lambda p: p[0])
    result: list[date | None] = []
    owed_so_far = Decimal(0)
    for amount in owed:
        owed_so_far += amount
        paid = Decimal(0)
        settled: date | None = None
        for paid_on, value in ordered:
            paid += value
            if paid >= owed_so_far:
                settled = paid_on
                break
        result.append(settled)
    return result


def is_payment_late(due_on: date, paid_on: date | None, today: date) -> bool:
    """Paid after the due date, or still unpaid once the due date has passed."""
    return (paid_on if paid_on is not None else today) > due_on


def is_unpaid_past_due(due_on: date, paid_on: date | None, today: date) -> bool:
    """The open condition of a late payment: the due date has passed and the money has not arrived by today."""
    return due_on < today and (paid_on is None or paid_on > today)


def interview_threshold(due_on: date, months: int) -> date:
    """The last day an overdue payment is not yet an interview matter ("超过N个月" starts the day after)."""
    return due_on + relativedelta(months=months)


def is_interview_candidate(
    category: InstitutionCategory, due_on: date, paid_on: date | None, today: date, months: int
) -> bool:
    """A private institution or pharmacy still not paid more than `months` months after the due date."""
    if category not in INTERVIEW_CATEGORIES:
        return False
    return is_unpaid_past_due(due_on, paid_on, today) and today > interview_threshold(due_on, months)
