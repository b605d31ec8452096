"""The State Council's notice read as published: the real 2024–2026 notices reproduce the package day by day."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from models.holiday_notice import HolidayNoticeError, parse_holiday_notice
from models.workdays import WorkingDays, overrides_from_days

NOTICES = Path(__file__).parent / "notices"


def _calendar_from(text: str) -> WorkingDays:
    notice = parse_holiday_notice(text)
    days = [(x, False) for x in notice.rest_days] + [(x, True) for x in notice.workdays]
    return WorkingDays(overrides_from_days(days, [notice.year], "test"))


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_the_published_notice_gives_the_official_working_days_day_by_day(year: int) -> None:
    text = (NOTICES / f"{year}.txt").read_text(encoding="utf-8")
    notice = parse_holiday_notice(text)
    assert notice.year == year
    # The notice alone, laid over plain weeks (the package is not consulted for these days):
    rest, work = set(notice.rest_days), set(notice.workdays)
    day = date(year, 1, 1)
    while day.year == year:
        from_notice = day in work or (day.weekday() < 5 and day not in rest)
        assert from_notice == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)
    assert _calendar_from(text).is_working_day(date(year, 10, 1)) is False


def test_2025_notice_is_read_with_its_combined_national_day_and_mid_autumn_paragraph() -> None:
    notice = parse_holiday_notice((NOTICES / "2025.txt").read_text(encoding="utf-8"))
    names = [f.name for f in notice.festivals]
    assert names == ["元旦", "春节", "清明节", "劳动节", "端午节", "国庆节、中秋节"]
    assert notice.workdays == {date(2025, 1, 26): "春节", date(2025, 2, 8): "春节", date(2025, 4, 27): "劳动节",
                               date(2025, 9, 28): "国庆节、中秋节", date(2025, 10, 11): "国庆节、中秋节"}


def test_a_garbled_sentence_is_refused_and_named() -> None:
    text = (NOTICES / "2026.txt").read_text(encoding="utf-8").replace("5月9日（周六）上班", "5月9日（周六）照常营业")
    with pytest.raises(HolidayNoticeError) as info:
        parse_holiday_notice(text)
    assert any("照常营业" in p for p in info.value.problems)
    assert "未录入" in str(info.value)


def test_a_weekday_that_does_not_match_its_date_is_refused() -> None:
    text = (NOTICES / "2026.txt").read_text(encoding="utf-8").replace("1月4日（周日）上班", "1月4日（周六）上班")
    with pytest.raises(HolidayNoticeError, match="星期与日期不符"):
        parse_holiday_notice(text)


def test_a_day_count_that_does_not_match_the_period_is_refused() -> None:
    text = (NOTICES / "2026.txt").read_text(encoding="utf-8").replace("放假调休，共9天", "放假调休，共8天")
    with pytest.raises(HolidayNoticeError, match="天数与日期不符"):
        parse_holiday_notice(text)


def test_text_without_a_title_needs_the_year_and_an_unknown_festival_is_refused() -> None:
    with pytest.raises(HolidayNoticeError, match="年份"):
        parse_holiday_notice("一、元旦：1月1日（周五）放假1天，不调休。")
    assert parse_holiday_notice("一、元旦：1月1日（周五）放假1天，不调休。", 2027).rest_days == {
        date(2027, 1, 1): "元旦"}
    with pytest.raises(HolidayNoticeError, match="不是法定节日"):
        parse_holiday_notice("一、植树节：3月12日（周五）放假1天。", 2027)


def test_a_make_up_day_without_its_month_continues_the_previous_one() -> None:
    notice = parse_holiday_notice("二、春节：2月10日至17日放假调休，共8天。2月4日（星期日）、18日（星期日）上班。", 2024)
    assert notice.workdays == {date(2024, 2, 4): "春节", date(2024, 2, 18): "春节"}


def test_a_new_years_bridge_written_with_its_years_reaches_back_into_december() -> None:
    notice = parse_holiday_notice("一、元旦：2022年12月31日至2023年1月2日放假调休，共3天。", 2023)
    assert sorted(notice.rest_days) == [date(2022, 12, 31), date(2023, 1, 1), date(2023, 1, 2)]
