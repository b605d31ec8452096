"""The Chinese working-day calendar (调休 included) behind one interface; an unpublished year is provisional.

The State Council publishes next year's schedule each November; `chinesecalendar` only knows the years of its
release, and the bureau enters a newer year from the notice's text (`sanjin calendar import`, stored in the
database) or the shipped YAML table. For a year known to none of them the program chooses: "provisional" (the
default) counts weekends and the statutory holidays the law fixes (`models.statutory_holidays`) and marks every
date so computed as provisional (暂定), to be recomputed when the schedule arrives; "strict" refuses the one
computation that needs the unknown year. Never a silent Monday–Friday guess.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import chinese_calendar
import yaml
from dateutil.relativedelta import relativedelta

from models.statutory_holidays import statutory_holidays

UnknownYearPolicy = Literal["provisional", "strict"]

DEFAULT_OVERRIDES_PATH = Path(__file__).resolve().parents[1] / "deploy" / "calendar" / "overrides.yaml"

# The longest official run of rest days is about ten days (Spring Festival); a far longer gap means a broken
# override table, which must not turn into an endless loop.
_MAX_REST_RUN = 60


class CalendarYearUnknown(LookupError):
    """Raised under the strict policy by the one computation that needs a year without an official schedule."""

    def __init__(self, year: int, overrides_path: str = "") -> None:
        self.year = year
        super().__init__(
            f"{year}年的法定节假日安排（含调休上班日）尚未录入，本项期限无法计算：请在国务院办公厅公布后用 "
            f"`sanjin calendar import 通知.txt` 录入{year}年安排（或在项目文件中改用 calendar_unknown_year: "
            f"provisional 先按暂定日期计算）。 / The official holiday schedule for {year} has not been entered, so "
            f"this deadline cannot be computed: enter it with `sanjin calendar import NOTICE.txt` once the State "
            f"Council publishes it (or set calendar_unknown_year: provisional to compute provisional dates)."
        )

    def __reduce__(self) -> tuple[type[CalendarYearUnknown], tuple[int]]:
        return (type(self), (self.year,))


class Deadline(NamedTuple):
    """A computed date, whether it rests on a year with no official schedule yet (暂定), and its basis:
    `working_days` working days after `start` (a rolled month end is 0 working days after the month end)."""

    day: date
    provisional: bool
    start: date
    working_days: int


class CalendarOverridesError(ValueError):
    """Every problem in the override table at once, so the editor can fix the file in one pass."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"节假日覆盖表有误 / invalid calendar overrides in {source}:\n{lines}")

    def __reduce__(self) -> tuple[type[CalendarOverridesError], tuple[str, list[str]]]:
        return (type(self), (self.source, self.problems))


@dataclass(frozen=True)
class CalendarOverrides:
    """Validated override data; `years` are the years whose whole schedule the table vouches for."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    source: str = "deploy/calendar/overrides.yaml"

    def merged(self, other: CalendarOverrides) -> CalendarOverrides:
        """This table with `other`'s years laid over it (a year entered in `other` replaces this one's days)."""
        keep_h = {d for d in self.holidays if _schedule_year(d) not in other.years}
        keep_w = {d for d in self.workdays if _schedule_year(d) not in other.years}
        return CalendarOverrides(frozenset(keep_h | other.holidays), frozenset(keep_w | other.workdays),
                                 self.years | other.years, self.source)


def _schedule_year(d: date) -> int:
    # A notice for year Y may reach back into late December of Y-1 (元旦 bridges); such days belong to Y.
    return d.year + 1 if d.month == 12 and d.day >= 25 else d.year


def overrides_from_days(days: Iterable[tuple[date, bool]], years: Iterable[int], source: str) -> CalendarOverrides:
    """Override data from (day, is_working_day) pairs, as the database's calendar table keeps them."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    for day, working in days:
        (workdays if working else holidays).add(day)
    return CalendarOverrides(frozenset(holidays), frozenset(workdays), frozenset(years), source)


@cache
def package_years() -> range:
    """Years the installed `chinesecalendar` covers, read from its data so an upgrade is picked up as is."""
    years = [d.year for d in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


def _parse_day(value: object, where: str, problems: list[str]) -> list[date]:
    # The file loader hands dates over as text; date objects come from callers passing Python data. Ranges
    # "a..b" exist because notices say "2月6日至12日放假", and a range is harder to mistype than seven dates.
    if isinstance(value, datetime):
        problems.append(f"{where}: {value!r} has a time of day; write a plain date YYYY-MM-DD")
        return []
    if isinstance(value, date):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        first, sep, last = text.partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if sep else start
        except ValueError:
            problems.append(f"{where}: {value!r} is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD")
            return []
        if end < start or (end - start).days > 31:
            problems.append(f"{where}: range {value!r} must run forwards and span at most 31 days")
            return []
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    problems.append(f"{where}: {value!r} is not a date YYYY-MM-DD")
    return []


def parse_overrides(data: object, source: str = "deploy/calendar/overrides.yaml") -> CalendarOverrides:
    """Validate `{year: {holidays: [...], workdays: [...]}}`, reporting every problem, not just the first."""
    if data is None:
        return CalendarOverrides(source=source)
    if not isinstance(data, dict):
        raise CalendarOverridesError(source, ["top level must be a mapping of year -> {holidays, workdays}"])
    problems: list[str] = []
    holidays: set[date] = set()
    workdays: set[date] = set()
    years: set[int] = set()
    for key, entry in data.items():
        if isinstance(key, bool) or not isinstance(key, int | str) or not str(key).strip().isdigit():
            problems.append(f"{key!r}: a year key must be a four-digit year such as 2027")
            continue
        year = int(key)
        if not 2000 <= year <= 2200:
            problems.append(f"{key!r}: a year key must be a four-digit year such as 2027")
            continue
        entry = {} if entry is None else entry
        if not isinstance(entry, dict):
            problems.append(f"{year}: must be a mapping with 'holidays' and 'workdays' lists")
            continue
        for extra in sorted(set(map(str, entry)) - {"holidays", "workdays"}):
            problems.append(f"{year}.{extra}: unknown key; only 'holidays' and 'workdays' are allowed")
        parsed: dict[str, set[date]] = {}
        for kind in ("holidays", "workdays"):
            items = entry.get(kind)
            if items is None:
                items = []
            elif not isinstance(items, list):
                problems.append(f"{year}.{kind}: must be a list of dates")
                items = []
            parsed[kind] = set()
            for i, item in enumerate(items):
                for day in _parse_day(item, f"{year}.{kind}[{i}]", problems):
                    # A year's notice may reach back into late December (元旦 bridges), never further.
                    if day.year != year and not (day.year == year - 1 and day.month == 12):
                        problems.append(f"{year}.{kind}[{i}]: {day} is not in {year} (typo in the year?)")
                    parsed[kind].add(day)
        if not parsed["holidays"] and year not in package_years():
            # Every year has 元旦 and 春节; an empty entry would silently mean "Monday–Friday", the very
            # guess this table exists to prevent.
            problems.append(f"{year}: no valid holidays; enter the official schedule or comment the year out")
        holidays |= parsed["holidays"]
        workdays |= parsed["workdays"]
        years.add(year)
    for day in sorted(holidays & workdays):
        problems.append(f"{day} is listed both as a holiday and as a make-up working day")
    if problems:
        raise CalendarOverridesError(source, problems)
    return CalendarOverrides(frozenset(holidays), frozenset(workdays), frozenset(years), source)


class _DatesAsTextLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text and refuses duplicate keys.

    PyYAML itself crashes on an impossible date like 2027-02-30 (which must be reported with its location like
    any other bad entry) and silently keeps only the last of two `2027:` blocks (half a schedule lost).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_overrides(path: Path) -> CalendarOverrides:
    """Read and validate the bureau's override file (YAML syntax errors are reported like bad entries)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_DatesAsTextLoader)
    except yaml.YAMLError as exc:
        raise CalendarOverridesError(str(path), [f"not valid YAML: {exc}"]) from exc
    return parse_overrides(data, str(path))


def fixed_deadline(day: date) -> Deadline:
    """A date set by the program file (a window's close): a calendar fact, never provisional."""
    return Deadline(day, False, day, 0)


def quarter_of(d: date) -> int:
    """Quarter 1–4 of a date; reporting cycles in the seeds are quarterly."""
    return (d.month - 1) // 3 + 1


def _as_date(d: date) -> date:
    # datetime is a subclass of date: accepting one would silently use its own zone's day, not Shanghai's.
    if isinstance(d, datetime):
        raise TypeError(f"expected a date, got datetime {d!r}; convert with models.clock.local_date()")
    return d


class WorkingDays:
    """Working-day arithmetic for deadlines, over the package data plus the bureau's entered schedules.

    `unknown_year` is the program's choice for a year known to no source: "provisional" counts weekends and the
    statutory holidays as rest days and reports such dates as provisional (`deadline`, `provisional_years_used`);
    "strict" raises `CalendarYearUnknown` from the computation that needs the year.
    """

    def __init__(
        self, overrides: CalendarOverrides | None = None, *, unknown_year: UnknownYearPolicy = "provisional"
    ) -> None:
        if unknown_year not in get_args(UnknownYearPolicy):
            raise ValueError(f"unknown_year must be 'provisional' or 'strict', not {unknown_year!r}")
        self.overrides = overrides if overrides is not None else CalendarOverrides()
        self.unknown_year: UnknownYearPolicy = unknown_year
        self._provisional_used: set[int] = set()

    @property
    def provisional_years_used(self) -> frozenset[int]:
        """Years answered provisionally so far by this calendar (never under "strict")."""
        return frozenset(self._provisional_used)

    def known_years(self) -> frozenset[int]:
        """Years answered from official data: the package's range plus every year entered by the bureau."""
        return frozenset(package_years()) | self.overrides.years

    def is_official(self, year: int) -> bool:
        return year in package_years() or year in self.overrides.years

    def is_working_day(self, d: date) -> bool:
        """Whether offices work on `d` (调休 weekends included); an explicitly listed override always wins."""
        d = _as_date(d)
        if d in self.overrides.workdays:
            return True
        if d in self.overrides.holidays:
            return False
        if d.year in package_years():
            return bool(chinese_calendar.is_workday(d))
        if d.year not in self.overrides.years:
            self._unknown(d.year)
            return d.weekday() < 5 and d not in statutory_holidays(d.year)
        return d.weekday() < 5

    def is_holiday(self, d: date) -> bool:
        """Any rest day, ordinary weekends included (the package's meaning), i.e. not a working day."""
        return not self.is_working_day(d)

    def next_working_day(self, d: date, include_self: bool = False) -> date:
        """First working day after `d` (or `d` itself with include_self), for rolling deadlines forward."""
        day = _as_date(d) if include_self else _as_date(d) + timedelta(days=1)
        for _ in range(_MAX_REST_RUN):
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ValueError(f"no working day within {_MAX_REST_RUN} days of {d}; check {self.overrides.source}")

    def add_working_days(self, start: date, n: int) -> date:
        """Due date of "within n working days (n个工作日内)" of an event on `start`.

        Convention (SPEC "Working days and deadlines"; cf. 民法典 第二百零一条, the start day is not counted):
        the start day itself never counts; a start on a rest day is treated as happening on the next working
        day, and counting begins after that day. So the result is the n-th working day after
        `next_working_day(start, include_self=True)`; n=0 gives that day itself. Examples: Friday 2025-09-26
        + 1 → Sunday 2025-09-28 (调休 working day); National Day 2025-10-03 + 1 → 2025-10-10, because the
        event counts as on 2025-10-09.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        day = self.next_working_day(start, include_self=True)
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def deadline(self, start: date, n: int) -> Deadline:
        """`add_working_days` with its standing: provisional when any year it counted through is not official."""
        day = self.add_working_days(start, n)
        return Deadline(day, self._spans_unofficial(start, day), start, n)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b] — elapsed working days for "how late/how long"; negative when b < a."""
        a, b = _as_date(a), _as_date(b)
        if b < a:
            return -self.working_days_between(b, a)
        return sum(self.is_working_day(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))

    def next_month_end(self, d: date, *, roll_forward: bool) -> date:
        """次月底: last day of the month after `d`.

        `roll_forward` is required because SPEC makes it a program parameter, not a library default; when
        true, a month end that is a rest day moves to the next working day (possibly into the next month).
        """
        end = _as_date(d) + relativedelta(months=+1, day=31)
        return self.next_working_day(end, include_self=True) if roll_forward else end

    def month_end_deadline(self, d: date, *, roll_forward: bool) -> Deadline:
        """`next_month_end` with its standing; a plain month end is a calendar fact, never provisional."""
        month_end = _as_date(d) + relativedelta(months=+1, day=31)
        if not roll_forward:
            return Deadline(month_end, False, month_end, 0)
        return self.deadline(month_end, 0)

    def first_month_of_quarter_deadline(self, d: date, *, roll_forward: bool = False) -> date:
        """Last day of the first month of `d`'s quarter: when the previous quarter's statistics are due."""
        d = _as_date(d)
        end = date(d.year, 3 * (quarter_of(d) - 1) + 1, 1) + relativedelta(day=31)
        return self.next_working_day(end, include_self=True) if roll_forward else end

    quarter_of = staticmethod(quarter_of)

    def _spans_unofficial(self, a: date, b: date) -> bool:
        return any(not self.is_official(y) for y in range(min(a, b).year, max(a, b).year + 1))

    def _unknown(self, year: int) -> None:
        if self.unknown_year == "strict":
            raise CalendarYearUnknown(year, self.overrides.source)
        self._provisional_used.add(year)

    def __repr__(self) -> str:
        years = sorted(self.known_years())
        return f"WorkingDays(known={years[0]}–{years[-1]}, unknown_year={self.unknown_year!r})"


def load_working_days(
    overrides_path: Path | None = None, unknown_year: UnknownYearPolicy = "provisional"
) -> WorkingDays:
    """Build the calendar from the override file (default: the shipped deploy/calendar/overrides.yaml).

    An explicitly given path must exist; a missing default file just means "no overrides", which is safe
    because unknown years are then provisional (visibly) or refused.
    """
    if overrides_path is not None:
        overrides = load_overrides(overrides_path)
    elif DEFAULT_OVERRIDES_PATH.is_file():
        overrides = load_overrides(DEFAULT_OVERRIDES_PATH)
    else:
        overrides = CalendarOverrides(source=str(DEFAULT_OVERRIDES_PATH))
    return WorkingDays(overrides, unknown_year=unknown_year)


__all__ = [
    "DEFAULT_OVERRIDES_PATH",
    "CalendarOverrides",
    "CalendarOverridesError",
    "CalendarYearUnknown",
    "Deadline",
    "UnknownYearPolicy",
    "WorkingDays",
    "fixed_deadline",
    "load_overrides",
    "load_working_days",
    "overrides_from_days",
    "package_years",
    "parse_overrides",
    "quarter_of",
]
