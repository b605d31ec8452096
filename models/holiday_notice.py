"""Reading the State Council's yearly holiday notice as published, so the bureau enters a year by pasting it.

The notice (国务院办公厅关于YYYY年部分节假日安排的通知) has one numbered paragraph per festival, e.g.
"一、元旦：1月1日（周五）至3日（周日）放假调休，共3天。1月4日（周日）上班。" Everything in a numbered paragraph must be
understood — a rest period, make-up working days, or the notice's advice about 除夕 — or the whole text is
refused, naming the sentence: a schedule half-read is worse than none. Weekdays written in the text are checked
against the dates, and "共N天" against the period, so a typo in the pasted text is caught rather than entered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

_NUMERALS = "一二三四五六七八九十"
_FESTIVALS = ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

_TITLE = re.compile(r"国务院办公厅关于\s*(\d{4})\s*年部分节假日安排的通知")
_SECTION = re.compile(rf"^\s*[{_NUMERALS}]+、\s*([^：:]+?)\s*[：:]\s*(.*)$")
# A day: "1月1日", "2022年12月31日", or "3日" continuing a month already named; an optional note "（周五）",
# "（农历除夕、周二）".
_DAY = r"(?:(\d{4})年)?(?:(\d{1,2})月)?(\d{1,2})日(?:[（(]([^）)]*)[）)])?"
_PERIOD = re.compile(
    rf"^{_DAY}(?:至{_DAY})?放假(调休)?(?:[，,]?\s*共(\d+)天|(\d+)天)?(?:[，,]\s*(与周末连休|不调休))?$")
_WORKDAYS = re.compile(rf"^((?:{_DAY}[、，,]?)+)上班$")
_ONE_DAY = re.compile(_DAY)
_ADVICE = ("鼓励", "请", "安排职工")


class HolidayNoticeError(ValueError):
    """Every sentence the parser could not understand, so the person sees all of them at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"无法完整读懂节假日安排通知，未录入 / the holiday notice was not fully understood, "
                         f"nothing entered:\n{lines}")

    def __reduce__(self) -> tuple[type[HolidayNoticeError], tuple[list[str]]]:
        return (type(self), (self.problems,))


@dataclass(frozen=True)
class FestivalArrangement:
    """One numbered paragraph: the festival(s), its rest days and its make-up working days (调休上班)."""

    name: str
    rest_days: tuple[date, ...]
    workdays: tuple[date, ...]


@dataclass(frozen=True)
class HolidayNotice:
    year: int
    festivals: tuple[FestivalArrangement, ...] = field(default_factory=tuple)

    @property
    def rest_days(self) -> dict[date, str]:
        return {d: f.name for f in self.festivals for d in f.rest_days}

    @property
    def workdays(self) -> dict[date, str]:
        return {d: f.name for f in self.festivals for d in f.workdays}


def _sentences(body: str) -> list[str]:
    return [s.strip() for s in re.split(r"[。；;]", body) if s.strip()]


def _weekday_problem(day: date, note: str | None, sentence: str) -> str | None:
    if not note:
        return None
    match = re.search(r"(?:周|星期)([一二三四五六日天])", note)
    if match and _WEEKDAYS[match.group(1)] != day.weekday():
        return (f"“{sentence}”: {day.month}月{day.day}日 is not a {note} (it is weekday {day.isoweekday()}) / "
                f"星期与日期不符")
    return None


def _day(year: int, written_year: str | None, month: str | None, day: str, default_month: int | None,
         sentence: str, problems: list[str]) -> date | None:
    m = int(month) if month else default_month
    if m is None:
        problems.append(f"“{sentence}”: a day without a month / 日期缺少月份")
        return None
    # A notice for year Y writes the year out for a day in December of Y-1 ("2022年12月31日至2023年1月2日").
    y = int(written_year) if written_year else year
    try:
        return date(y, m, int(day))
    except ValueError:
        problems.append(f"“{sentence}”: {m}月{day}日 is not a date in {y} / 日期不存在")
        return None


def _period(year: int, match: re.Match[str], sentence: str, problems: list[str]) -> list[date]:
    y1, m1, d1, note1, y2, m2, d2, note2, _adjusted, total, single, _clause = match.groups()
    first = _day(year, y1, m1, d1, None, sentence, problems)
    if first is None:
        return []
    last = first
    if d2 is not None:
        end = _day(first.year, y2, m2, d2, first.month, sentence, problems)
        if end is None:
            return []
        last = end if end >= first else end.replace(year=end.year + 1)
    for day, note in ((first, note1), (last, note2)):
        problem = _weekday_problem(day, note, sentence)
        if problem:
            problems.append(problem)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    declared = total or single
    if declared is not None and int(declared) != len(days):
        problems.append(f"“{sentence}”: says {declared} days but the period has {len(days)} / 天数与日期不符")
    if len(days) > 31:
        problems.append(f"“{sentence}”: a rest period of {len(days)} days / 放假期间过长")
    return days


def _workdays(year: int, text: str, sentence: str, problems: list[str]) -> list[date]:
    days: list[date] = []
    for y, m, d, note in _ONE_DAY.findall(text):
        # "2月4日（星期日）、18日（星期日）上班": a day without its month continues the previous one's.
        day = _day(year, y or None, m or None, d, days[-1].month if days else None, sentence, problems)
        if day is not None:
            problem = _weekday_problem(day, note, sentence)
            if problem:
                problems.append(problem)
            days.append(day)
    return days


def _festival_name(raw: str, problems: list[str]) -> str | None:
    parts = [p.strip() for p in re.split(r"[、和与]", raw) if p.strip()]
    unknown = [p for p in parts if p not in _FESTIVALS]
    if not parts or unknown:
        problems.append(f"“{raw}”: not a statutory festival / 不是法定节日（{'、'.join(_FESTIVALS)}）")
        return None
    return "、".join(parts)


def parse_holiday_notice(text: str, year: int | None = None) -> HolidayNotice:
    """The schedule a notice announces; raises `HolidayNoticeError` naming every sentence not understood."""
    problems: list[str] = []
    title = _TITLE.search(text)
    if title:
        if year is not None and int(title.group(1)) != year:
            problems.append(f"the title names {title.group(1)}, not {year} / 通知标题年份与指定年份不符")
        year = int(title.group(1))
    if year is None:
        raise HolidayNoticeError(["no title “国务院办公厅关于YYYY年部分节假日安排的通知” and no year given / "
                                  "缺少通知标题，请给出年份"])
    festivals: list[FestivalArrangement] = []
    in_sections = False
    for raw_line in text.splitlines():
        line = raw_line.strip().replace(" ", "").replace("\u3000", "")
        if not line:
            continue
        section = _SECTION.match(line)
        if section is None:
            # Before the first numbered paragraph: title, addressees, preamble; after: the closing paragraph,
            # the issuing office and date. Inside the numbered list anything else is a sentence not understood.
            if in_sections and not _closing_line(line):
                problems.append(f"“{line}”: not understood / 无法识别")
            continue
        in_sections = True
        name = _festival_name(section.group(1), problems)
        rest: list[date] = []
        work: list[date] = []
        for sentence in _sentences(section.group(2)):
            if (period := _PERIOD.match(sentence)) is not None:
                rest += _period(year, period, sentence, problems)
            elif (working := _WORKDAYS.match(sentence)) is not None:
                work += _workdays(year, working.group(1), sentence, problems)
            elif sentence.startswith(_ADVICE):
                continue  # the notice's advice (e.g. 鼓励…安排职工在除夕休息) changes no date
            else:
                problems.append(f"“{sentence}”: not understood / 无法识别")
        if name is not None:
            if not rest:
                problems.append(f"“{line}”: no rest days found / 未找到放假日期")
            festivals.append(FestivalArrangement(name, tuple(rest), tuple(work)))
    if not festivals and not problems:
        problems.append("no numbered paragraph such as “一、元旦：…” / 未找到“一、元旦：……”这样的条目")
    problems += _consistency(year, festivals)
    if problems:
        raise HolidayNoticeError(problems)
    return HolidayNotice(year, tuple(festivals))


def _closing_line(line: str) -> bool:
    return (line.startswith(("节假日期间", "国务院办公厅", "（此件公开发布）", "(此件公开发布)"))
            or re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", line) is not None)


def _consistency(year: int, festivals: list[FestivalArrangement]) -> list[str]:
    problems = []
    rest = [d for f in festivals for d in f.rest_days]
    work = [d for f in festivals for d in f.workdays]
    for d in sorted({d for d in rest if rest.count(d) > 1}):
        problems.append(f"{d} is given as a rest day twice / 同一天重复放假")
    for d in sorted(set(rest) & set(work)):
        problems.append(f"{d} is both a rest day and a working day / 同一天既放假又上班")
    for d in sorted(set(rest) | set(work)):
        if d.year != year and not (d.year == year - 1 and d.month == 12):
            problems.append(f"{d} is not in {year} / 日期不在{year}年")
    for d in sorted(set(work)):
        if d.weekday() < 5:
            problems.append(f"{d} is a make-up working day on a weekday / 调休上班日应为周末")
    return problems


__all__ = ["FestivalArrangement", "HolidayNotice", "HolidayNoticeError", "parse_holiday_notice"]
