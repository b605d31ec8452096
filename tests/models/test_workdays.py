import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from models.workdays import (
    DEFAULT_OVERRIDES_PATH,
    CalendarOverridesError,
    CalendarYearUnknown,
    WorkingDays,
    load_overrides,
    load_working_days,
    parse_overrides,
    quarter_of,
)


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(first: str, last: str) -> list[date]:
    start, end = d(first), d(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# Hand-made from the State Council notices, independently of `chinesecalendar` (and cross-checked against
# chinese_calendar.get_holiday_detail / is_workday before being written down):
# - 《国务院办公厅关于2025年部分节假日安排的通知》(国办发明电〔2024〕12号, 2024-11-12)
# - 《国务院办公厅关于2026年部分节假日安排的通知》(2025-11-04, published by Xinhua the same day)
OFFICIAL_REST = {
    2025: [
        *days("2025-01-01", "2025-01-01"),  # 元旦, 1 day, no 调休
        *days("2025-01-28", "2025-02-04"),  # 春节 (from 除夕), 8 days
        *days("2025-04-04", "2025-04-06"),  # 清明节
        *days("2025-05-01", "2025-05-05"),  # 劳动节
        *days("2025-05-31", "2025-06-02"),  # 端午节
        *days("2025-10-01", "2025-10-08"),  # 国庆节 + 中秋节 merged, 8 days
    ],
    2026: [
        *days("2026-01-01", "2026-01-03"),  # 元旦
        *days("2026-02-15", "2026-02-23"),  # 春节, 9 days
        *days("2026-04-04", "2026-04-06"),  # 清明节
        *days("2026-05-01", "2026-05-05"),  # 劳动节
        *days("2026-06-19", "2026-06-21"),  # 端午节
        *days("2026-09-25", "2026-09-27"),  # 中秋节
        *days("2026-10-01", "2026-10-07"),  # 国庆节
    ],
}
OFFICIAL_MAKEUP = {  # 调休 weekend days on which offices work ("上班")
    2025: [d("2025-01-26"), d("2025-02-08"), d("2025-04-27"), d("2025-09-28"), d("2025-10-11")],
    2026: [
        d("2026-01-04"),
        d("2026-02-14"),
        d("2026-02-28"),
        d("2026-05-09"),
        d("2026-09-20"),
        d("2026-10-10"),
    ],
}


def official_is_working_day(day: date) -> bool:
    if day in OFFICIAL_MAKEUP[day.year]:
        return True
    return day.weekday() < 5 and day not in OFFICIAL_REST[day.year]


@pytest.fixture
def cal() -> WorkingDays:
    return WorkingDays()


@pytest.fixture
def write_yaml(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "overrides.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


# --- the facts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2025-09-26", True),  # Friday before 国庆
        ("2025-09-27", False),  # ordinary Saturday
        ("2025-09-28", True),  # Sunday, 调休 make-up working day
        *[(str(x), False) for x in days("2025-10-01", "2025-10-08")],  # 国庆 + 中秋
        ("2025-10-09", True),
        ("2025-10-11", True),  # Saturday, 调休 make-up working day
        ("2025-01-26", True),  # Sunday before 春节, make-up
        ("2025-02-08", True),  # Saturday after 春节, make-up
        ("2025-01-28", False),  # 除夕
        ("2026-02-14", True),  # Saturday, make-up before 2026 春节
        ("2026-02-15", False),
        ("2026-02-23", False),  # Monday, last day of 2026 春节
        ("2026-02-24", True),
        ("2026-02-28", True),  # Saturday, make-up after 2026 春节
        ("2026-01-04", True),  # Sunday, make-up after 2026 元旦
    ],
)
def test_official_2025_2026_facts(cal, day, working):
    assert cal.is_working_day(d(day)) is working
    assert cal.is_holiday(d(day)) is not working


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_day_of_the_year_matches_the_official_notice(cal, year):
    year_days = days(f"{year}-01-01", f"{year}-12-31")
    assert [x for x in year_days if cal.is_working_day(x) != official_is_working_day(x)] == []


def test_year_totals_match_the_notices(cal):
    # 2025: 261 weekdays - 18 weekdays off (1+6+1+3+1+6) + 5 make-up weekend days = 248
    assert sum(map(cal.is_working_day, days("2025-01-01", "2025-12-31"))) == 248
    # 2026: 261 weekdays - 19 weekdays off (2+6+1+3+1+1+5) + 6 make-up weekend days = 248
    assert sum(map(cal.is_working_day, days("2026-01-01", "2026-12-31"))) == 248


# --- within N working days ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        ("2025-09-26", 0, "2025-09-26"),  # n=0 from a working day is the day itself
        ("2025-09-26", 1, "2025-09-28"),  # Friday + 1 → the make-up Sunday
        ("2025-09-30", 1, "2025-10-09"),  # the whole 国庆 break is skipped
        ("2025-09-30", 3, "2025-10-11"),  # ... and the make-up Saturday counts
        ("2025-10-03", 0, "2025-10-09"),  # start on a holiday: the event counts as on the next working day
        ("2025-10-03", 1, "2025-10-10"),
        ("2025-09-27", 1, "2025-09-29"),  # Saturday start → deemed Sunday 09-28 (make-up day) → Monday
        ("2026-02-13", 1, "2026-02-14"),  # Friday + 1 → make-up Saturday before 春节
        ("2026-02-14", 1, "2026-02-24"),
        ("2025-12-31", 2, "2026-01-05"),  # across the year boundary and 2026 元旦 (01-04 is a Sunday make-up)
    ],
)
def test_add_working_days_table(cal, start, n, due):
    assert cal.add_working_days(d(start), n) == d(due)


def test_seed_004_price_report_within_20_working_days_across_national_day(cal):
    # 004: 生产企业应在新的全国各省最低价执行20个工作日内向省平台申报价格信息.
    # A new national lowest price executed on Monday 2025-09-15:
    counted = [
        *days("2025-09-16", "2025-09-19"),  # 4
        *days("2025-09-22", "2025-09-26"),  # 9
        d("2025-09-28"),  # 10, Sunday make-up day
        d("2025-09-29"),
        d("2025-09-30"),  # 12; 10-01..10-08 off
        d("2025-10-09"),
        d("2025-10-10"),
        d("2025-10-11"),  # 15, Saturday make-up day
        *days("2025-10-13", "2025-10-17"),  # 20
    ]
    assert len(counted) == 20
    assert cal.add_working_days(d("2025-09-15"), 20) == d("2025-10-17")
    # A naive Monday–Friday count would have said 2025-10-13 — four days too early.
    assert cal.working_days_between(d("2025-09-15"), d("2025-10-17")) == 20


def test_negative_n_is_rejected(cal):
    with pytest.raises(ValueError, match="n must be"):
        cal.add_working_days(d("2025-09-26"), -1)


def test_working_days_between_is_half_open_and_antisymmetric(cal):
    assert cal.working_days_between(d("2025-09-30"), d("2025-10-10")) == 2
    assert cal.working_days_between(d("2025-10-10"), d("2025-09-30")) == -2
    assert cal.working_days_between(d("2025-10-09"), d("2025-10-09")) == 0
    assert cal.working_days_between(d("2025-10-01"), d("2025-10-08")) == 0


def test_next_working_day(cal):
    assert cal.next_working_day(d("2025-09-30")) == d("2025-10-09")
    assert cal.next_working_day(d("2025-10-09"), include_self=True) == d("2025-10-09")
    assert cal.next_working_day(d("2025-09-26")) == d("2025-09-28")


def test_datetimes_are_refused_because_their_day_depends_on_the_zone(cal):
    with pytest.raises(TypeError, match="local_date"):
        cal.is_working_day(datetime(2025, 10, 1, 12, 0))


# --- 次月底 and quarterly deadlines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "month_end"),
    [
        ("2025-01-31", "2025-02-28"),
        ("2024-01-31", "2024-02-29"),  # leap year
        ("2025-01-01", "2025-02-28"),
        ("2025-03-31", "2025-04-30"),
        ("2025-12-10", "2026-01-31"),  # December → January of the next year
        ("2025-08-15", "2025-09-30"),
    ],
)
def test_next_month_end_without_rolling(cal, day, month_end):
    assert cal.next_month_end(d(day), roll_forward=False) == d(month_end)


@pytest.mark.parametrize(
    ("day", "rolled"),
    [
        ("2025-12-10", "2026-02-02"),  # 2026-01-31 is a Saturday
        ("2025-04-10", "2025-06-03"),  # 2025-05-31 is a Saturday and 端午 runs to Monday 06-02
        ("2026-01-15", "2026-02-28"),  # 2026-02-28 is a Saturday but a make-up working day: no roll
        ("2025-08-15", "2025-09-30"),  # a working day stays
    ],
)
def test_next_month_end_rolls_forward_only_off_working_days(cal, day, rolled):
    assert cal.next_month_end(d(day), roll_forward=True) == d(rolled)


def test_roll_forward_must_be_chosen_explicitly(cal):
    with pytest.raises(TypeError):
        cal.next_month_end(d("2025-01-31"))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("day", "quarter", "deadline", "rolled"),
    [
        ("2025-11-20", 4, "2025-10-31", "2025-10-31"),
        ("2025-02-15", 1, "2025-01-31", "2025-02-05"),  # 01-31 falls in the 2025 春节 break
        ("2026-03-31", 1, "2026-01-31", "2026-02-02"),  # Saturday
        ("2026-05-20", 2, "2026-04-30", "2026-04-30"),
        ("2026-07-01", 3, "2026-07-31", "2026-07-31"),
    ],
)
def test_first_month_of_quarter_deadline(cal, day, quarter, deadline, rolled):
    assert quarter_of(d(day)) == cal.quarter_of(d(day)) == quarter
    assert cal.first_month_of_quarter_deadline(d(day)) == d(deadline)
    assert cal.first_month_of_quarter_deadline(d(day), roll_forward=True) == d(rolled)


# --- years the package does not know -----------------------------------------------------------------------


def test_2027_under_the_strict_policy_fails_loudly_in_both_languages():
    cal = WorkingDays(unknown_year="strict")
    with pytest.raises(CalendarYearUnknown) as info:
        cal.is_working_day(d("2027-01-04"))
    message = str(info.value)
    assert info.value.year == 2027
    assert "2027年" in message and "sanjin calendar import" in message and "not been entered" in message
    assert cal.provisional_years_used == frozenset()


def test_a_strict_deadline_running_into_2027_fails_instead_of_guessing():
    cal = WorkingDays(unknown_year="strict")
    with pytest.raises(CalendarYearUnknown):
        cal.add_working_days(d("2026-12-28"), 5)
    assert cal.next_month_end(d("2026-12-15"), roll_forward=False) == d("2027-01-31")
    with pytest.raises(CalendarYearUnknown):
        cal.next_month_end(d("2026-12-15"), roll_forward=True)


def test_the_default_is_provisional_and_records_the_year():
    cal = WorkingDays()
    assert cal.is_working_day(d("2027-01-01")) is False  # 元旦, by the regulation
    assert cal.is_working_day(d("2027-01-02")) is False
    assert cal.add_working_days(d("2026-12-31"), 1) == d("2027-01-04")
    assert cal.provisional_years_used == frozenset({2027})
    assert 2027 not in cal.known_years()


def test_unknown_policy_value_is_rejected():
    with pytest.raises(ValueError, match="unknown_year"):
        WorkingDays(unknown_year="guess")  # type: ignore[arg-type]


def test_a_2027_override_makes_the_year_known(write_yaml):
    # Fictional test data, not the official 2027 schedule (which was unknown when this was written).
    path = write_yaml(
        """
        2027:
          holidays:
            - 2027-01-01
            - 2027-02-05..2027-02-12
          workdays:
            - 2027-02-20
        """
    )
    cal = load_working_days(path, unknown_year="strict")
    assert 2027 in cal.known_years()
    assert cal.is_working_day(d("2027-01-01")) is False
    assert cal.is_working_day(d("2027-02-08")) is False  # inside the range
    assert cal.is_working_day(d("2027-02-20")) is True  # Saturday make-up day
    assert cal.is_working_day(d("2027-03-01")) is True  # unlisted Monday
    assert cal.is_working_day(d("2027-03-06")) is False  # unlisted Saturday
    assert cal.add_working_days(d("2027-02-04"), 1) == d("2027-02-15")
    with pytest.raises(CalendarYearUnknown):
        cal.is_working_day(d("2028-01-03"))


def test_override_wins_over_the_package_for_a_listed_date(write_yaml):
    cal = load_working_days(write_yaml("2025:\n  holidays: [2025-10-09]\n  workdays: [2025-10-08]\n"))
    assert cal.is_working_day(d("2025-10-09")) is False
    assert cal.is_working_day(d("2025-10-08")) is True
    assert cal.is_working_day(d("2025-10-10")) is True  # unlisted dates still come from the package


def test_shipped_override_file_is_valid_and_invents_no_2027_schedule():
    assert DEFAULT_OVERRIDES_PATH.is_file()
    overrides = load_overrides(DEFAULT_OVERRIDES_PATH)
    assert 2027 not in overrides.years
    assert not any(x.year >= 2027 for x in overrides.holidays | overrides.workdays)
    with pytest.raises(CalendarYearUnknown):
        load_working_days(unknown_year="strict").is_working_day(d("2027-06-01"))


def test_shipped_example_block_is_the_real_2026_schedule():
    lines = DEFAULT_OVERRIDES_PATH.read_text(encoding="utf-8").splitlines()
    start = lines.index("# 2026:")
    block = "\n".join(line[2:] for line in lines[start : lines.index("#", start)])
    example = parse_overrides(yaml.safe_load(block))
    assert example.holidays == frozenset(OFFICIAL_REST[2026])
    assert example.workdays == frozenset(OFFICIAL_MAKEUP[2026])


def test_missing_explicit_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_working_days(tmp_path / "nope.yaml")


def test_bad_entries_are_all_reported_with_their_location(write_yaml):
    path = write_yaml(
        """
        2027:
          holidays:
            - 2027-02-30
            - 2026-05-01
            - 2027-10-01 09:00
            - 2027-10-07..2027-10-01
          workdays: [2027-02-20]
          holiday: [2027-01-01]
        2028:
          holidays: [2028-01-01]
          workdays: [2028-01-01]
        twenty:
          holidays: []
        """
    )
    with pytest.raises(CalendarOverridesError) as info:
        load_working_days(path)
    problems = "\n".join(info.value.problems)
    assert "2027.holidays[0]: '2027-02-30' is not a date" in problems  # PyYAML alone would crash here
    assert "2027.holidays[1]: 2026-05-01 is not in 2027" in problems
    assert "2027.holidays[2]: '2027-10-01 09:00' is not a date" in problems
    assert "2027.holidays[3]" in problems and "forwards" in problems
    assert "2027.holiday: unknown key" in problems
    assert "2028-01-01 is listed both" in problems
    assert "'twenty'" in problems
    assert str(path) in str(info.value)


def test_an_empty_unknown_year_is_rejected_rather_than_meaning_monday_to_friday(write_yaml):
    with pytest.raises(CalendarOverridesError, match="no valid holidays"):
        load_working_days(write_yaml("2027:\n  holidays: []\n  workdays: []\n"))


def test_late_december_of_the_previous_year_is_allowed_for_new_year_bridges():
    overrides = parse_overrides({2027: {"holidays": ["2026-12-31", "2027-01-01"]}})
    assert d("2026-12-31") in overrides.holidays


def test_yaml_syntax_errors_are_reported_as_override_errors(write_yaml):
    with pytest.raises(CalendarOverridesError, match="not valid YAML"):
        load_working_days(write_yaml("2027:\n  holidays: [2027-01-01\n"))


def test_a_year_entered_twice_is_refused_not_half_dropped(write_yaml):
    text = "2027:\n  holidays: [2027-01-01]\n2027:\n  workdays: [2027-02-20]\n"
    with pytest.raises(CalendarOverridesError, match="duplicate key 2027"):
        load_working_days(write_yaml(text))


def test_an_empty_file_means_no_overrides(write_yaml):
    cal = load_working_days(write_yaml("# nothing yet\n"))
    assert cal.known_years() == frozenset(range(2004, 2027))


# --- properties --------------------------------------------------------------------------------------------

dates_2025_2026 = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 10, 31))
CAL = WorkingDays()


@given(dates_2025_2026, st.integers(min_value=0, max_value=40))
def test_counting_back_gives_n_and_deadlines_land_on_working_days(start, n):
    due = CAL.add_working_days(start, n)
    if CAL.is_working_day(start):
        assert CAL.working_days_between(start, due) == n
    else:
        # the deemed start (next working day) is itself counted by (start, due]
        assert CAL.working_days_between(start, due) == n + 1
    if n >= 1:
        assert CAL.is_working_day(due)
        assert due > start


@given(dates_2025_2026, st.integers(min_value=0, max_value=40))
def test_add_working_days_is_monotonic_in_n(start, n):
    assert CAL.add_working_days(start, n) < CAL.add_working_days(start, n + 1)
