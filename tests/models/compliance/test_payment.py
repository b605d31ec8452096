from datetime import date
from decimal import Decimal

import pytest

from models.compliance.payment import (
    interview_threshold,
    is_interview_candidate,
    is_payment_late,
    is_unpaid_past_due,
    paid_on_dates,
    payment_due_on,
)
from models.states import InstitutionCategory
from models.workdays import WorkingDays

CAL = WorkingDays()


def test_payment_is_due_at_the_end_of_the_month_after_acceptance() -> None:
    assert payment_due_on(date(2025, 12, 3), CAL, roll_forward=False) == date(2026, 1, 31)
    assert payment_due_on(date(2026, 1, 31), CAL, roll_forward=False) == date(2026, 2, 28)


def test_paid_on_the_last_day_of_the_next_month_is_on_time_and_the_day_after_is_late() -> None:
    due = payment_due_on(date(2025, 10, 15), CAL, roll_forward=False)
    assert due == date(2025, 11, 30)
    assert not is_payment_late(due, date(2025, 11, 30), date(2026, 1, 1))
    assert is_payment_late(due, date(2025, 12, 1), date(2026, 1, 1))


def test_a_month_end_on_a_holiday_stays_without_roll_forward() -> None:
    # 2025-05-31 is a Saturday and the first day of the 端午 holiday (05-31..06-02).
    due = payment_due_on(date(2025, 4, 20), CAL, roll_forward=False)
    assert due == date(2025, 5, 31)
    assert is_payment_late(due, date(2025, 6, 3), date(2025, 7, 1))


def test_a_month_end_on_a_holiday_rolls_to_the_next_working_day_with_roll_forward() -> None:
    due = payment_due_on(date(2025, 4, 20), CAL, roll_forward=True)
    assert due == date(2025, 6, 3)
    assert not is_payment_late(due, date(2025, 6, 3), date(2025, 7, 1))
    assert is_payment_late(due, date(2025, 6, 4), date(2025, 7, 1))


def test_partial_payments_add_up_and_settle_the_oldest_payable_first() -> None:
    owed = [Decimal("100.00"), Decimal("50.00")]
    payments = [(date(2026, 2, 10), Decimal("60.00")), (date(2026, 1, 5), Decimal("40.00")),
                (date(2026, 3, 1), Decimal("49.99"))]
    assert paid_on_dates(owed, payments) == [date(2026, 2, 10), None]
    assert paid_on_dates(owed, [*payments, (date(2026, 3, 2), Decimal("0.01"))]) == [date(2026, 2, 10),
                                                                                     date(2026, 3, 2)]


def test_an_unpaid_payable_is_open_only_after_its_due_date_and_closes_when_paid() -> None:
    due = date(2026, 1, 31)
    assert not is_unpaid_past_due(due, None, due)
    assert is_unpaid_past_due(due, None, date(2026, 2, 1))
    assert not is_unpaid_past_due(due, date(2026, 2, 5), date(2026, 2, 5))


@pytest.mark.parametrize("category", [InstitutionCategory.PRIVATE_MEDICAL, InstitutionCategory.RETAIL_PHARMACY])
def test_private_and_pharmacy_payers_overdue_more_than_two_months_are_interview_candidates(
    category: InstitutionCategory,
) -> None:
    due = date(2026, 1, 31)
    assert interview_threshold(due, 2) == date(2026, 3, 31)
    assert not is_interview_candidate(category, due, None, date(2026, 3, 31), 2)
    assert is_interview_candidate(category, due, None, date(2026, 4, 1), 2)
    assert not is_interview_candidate(category, due, date(2026, 3, 30), date(2026, 4, 1), 2)


def test_public_institutions_are_never_interview_candidates_for_overdue_payment() -> None:
    assert not is_interview_candidate(InstitutionCategory.PUBLIC_GRASSROOTS, date(2026, 1, 31), None,
                                      date(2026, 12, 1), 2)
