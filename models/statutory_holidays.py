"""The rest days the law itself fixes, for a year whose official schedule is not published yet.

《全国年节及纪念日放假办法》 (2024 revision, in force from 2025-01-01), 第二条: "全体公民放假的节日：（一）新年，放假1天
（1月1日）；（二）春节，放假4天（农历除夕、正月初一至初三）；（三）清明节，放假1天（农历清明当日）；（四）劳动节，放假2天
（5月1日、2日）；（五）端午节，放假1天（农历端午当日）；（六）中秋节，放假1天（农历中秋当日）；（七）国庆节，放假3天
（10月1日至3日）。" Lunar dates come from `lunardate`, the 清明 solar term from `chinese_calendar`'s astronomical
formula: nothing is typed in by hand. The 调休 weekends a State Council notice adds are never guessed.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import chinese_calendar
from lunardate import LunarDate

# lunardate's tables run 1900–2099; a schedule outside that range is far from anything a program dates.
FIRST_YEAR, LAST_YEAR = 1901, 2099


def _lunar(year: int, month: int, day: int) -> date:
    solar: date = LunarDate(year, month, day).to_solar_date()
    return solar


@cache
def statutory_holidays(year: int) -> dict[date, str]:
    """Every day of `year` on which the regulation itself gives all citizens a day off, with the festival's name."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"statutory holidays are computed for {FIRST_YEAR}–{LAST_YEAR}, not {year}")
    days: dict[date, str] = {date(year, 1, 1): "元旦"}
    new_year = _lunar(year, 1, 1)
    for offset in range(-1, 3):  # 除夕 and 正月初一–初三
        days[new_year + timedelta(days=offset)] = "春节"
    qingming = [d for d, name in chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 30))
                if name == "清明"]
    days[qingming[0]] = "清明节"
    days[date(year, 5, 1)] = days[date(year, 5, 2)] = "劳动节"
    days[_lunar(year, 5, 5)] = "端午节"
    days[_lunar(year, 8, 15)] = "中秋节"
    for day in (1, 2, 3):
        days[date(year, 10, day)] = "国庆节"
    # 除夕 of next year's 春节 may fall on 12-31 of this year only in theory (it never does: 春节 is 1-21..2-20).
    return {d: name for d, name in days.items() if d.year == year}


__all__ = ["FIRST_YEAR", "LAST_YEAR", "statutory_holidays"]
