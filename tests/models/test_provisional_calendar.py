"""A year without an official schedule: statutory holidays computed, dates provisional, strict refuses alone."""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from models.statutory_holidays import statutory_holidays
from models.workdays import CalendarYearUnknown, WorkingDays


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_2027_statutory_holidays_come_from_the_lunar_calendar_and_the_solar_term() -> None:
    days = statutory_holidays(2027)
    assert days[d("2027-01-01")] == "元旦"
    assert [x for x, n in days.items() if n == "春节"] == [d("2027-02-05"), d("2027-02-06"), d("2027-02-07"),
                                                          d("2027-02-08")]  # 除夕 and 正月初一–初三
    assert days[d("2027-04-05")] == "清明节"
    assert days[d("2027-06-09")] == "端午节" and days[d("2027-09-15")] == "中秋节"
    assert [x for x, n in days.items() if n in ("劳动节", "国庆节")] == [
        d("2027-05-01"), d("2027-05-02"), d("2027-10-01"), d("2027-10-02"), d("2027-10-03")]
    assert len(days) == 13  # the regulation's 13 days


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_computed_statutory_day_was_a_rest_day_in_the_official_schedule(year: int) -> None:
    assert all(not chinese_calendar.is_workday(day) for day in statutory_holidays(year))


def test_new_years_day_2027_is_not_counted_as_a_working_day() -> None:
    cal = WorkingDays()
    assert not cal.is_working_day(d("2027-01-01"))  # a Friday, and 元旦
    assert cal.is_working_day(d("2027-01-04"))


def test_a_deadline_reaching_into_2027_is_provisional_and_skips_the_statutory_holidays() -> None:
    cal = WorkingDays()
    due = cal.deadline(d("2026-12-04"), 20)
    # 20 working days after Friday 2026-12-04: December has 19 after it (weekdays 7th–31st), 1 Jan is 元旦.
    assert due.day == d("2027-01-04") and due.provisional
    assert (due.start, due.working_days) == (d("2026-12-04"), 20)
    assert cal.provisional_years_used == frozenset({2027})


def test_a_deadline_inside_an_official_year_is_not_provisional() -> None:
    due = WorkingDays().deadline(d("2026-09-01"), 10)
    assert not due.provisional and due.day == d("2026-09-15")


def test_a_plain_month_end_is_a_calendar_fact_but_a_rolled_one_in_2027_is_provisional() -> None:
    cal = WorkingDays()
    plain = cal.month_end_deadline(d("2027-01-15"), roll_forward=False)
    assert plain.day == d("2027-02-28") and not plain.provisional
    rolled = cal.month_end_deadline(d("2027-01-15"), roll_forward=True)
    assert rolled.day == d("2027-03-01") and rolled.provisional  # 2-28 is a Sunday


def test_strict_refuses_only_the_computation_that_needs_2027_and_says_how_to_enter_it() -> None:
    cal = WorkingDays(unknown_year="strict")
    assert cal.add_working_days(d("2026-12-01"), 5) == d("2026-12-08")  # 2026 still works
    with pytest.raises(CalendarYearUnknown) as info:
        cal.deadline(d("2026-12-04"), 20)
    message = str(info.value)
    assert "2027年" in message and "sanjin calendar import" in message and "2027" in message


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="provisional"):
        WorkingDays(unknown_year="warn")  # type: ignore[arg-type]
