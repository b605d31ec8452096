from datetime import date

from models.compliance.listing import is_price_report_late, no_sales_since, price_report_due
from models.workdays import WorkingDays

CAL = WorkingDays()
EFFECTIVE = date(2025, 9, 22)  # a Monday, 20 working days before the end of the National Day holiday's wake
# Working days after 2025-09-22, by hand from 国办发明电〔2024〕12号: 09-23..26 (4), 09-28 Sunday 调休 (5),
# 09-29, 09-30 (7), 10-01..10-08 holiday, 10-09, 10-10 (9), 10-11 Saturday 调休 (10), 10-13..17 (15),
# 10-20..24 (20), then 10-27 (21).
DAY_20, DAY_21 = date(2025, 10, 24), date(2025, 10, 27)


def test_the_report_deadline_is_the_20th_working_day_across_national_day() -> None:
    assert price_report_due(EFFECTIVE, 20, CAL) == DAY_20


def test_report_on_working_day_20_across_national_day_is_in_time() -> None:
    assert not is_price_report_late(EFFECTIVE, DAY_20, date(2025, 12, 1), 20, CAL)


def test_report_on_working_day_21_across_national_day_is_late() -> None:
    assert is_price_report_late(EFFECTIVE, DAY_21, date(2025, 12, 1), 20, CAL)


def test_no_report_is_late_only_once_the_due_date_has_passed() -> None:
    assert not is_price_report_late(EFFECTIVE, None, DAY_20, 20, CAL)
    assert is_price_report_late(EFFECTIVE, None, DAY_21, 20, CAL)


def test_a_report_before_the_new_lowest_price_does_not_answer_it() -> None:
    assert is_price_report_late(EFFECTIVE, date(2025, 9, 1), DAY_21, 20, CAL)


def test_a_listed_product_without_sales_for_a_year_is_proposed_for_closing() -> None:
    listed = date(2025, 1, 15)
    assert not no_sales_since(None, listed, date(2026, 1, 15), 12)
    assert no_sales_since(None, listed, date(2026, 1, 16), 12)
    assert not no_sales_since(date(2025, 6, 1), listed, date(2026, 1, 16), 12)
    assert no_sales_since(date(2025, 6, 1), listed, date(2026, 6, 2), 12)
