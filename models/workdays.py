"""The Chinese working-day calendar (调休 included) behind one interface, failing loudly on unknown years.

The State Council publishes next year's schedule each November; `chinesecalendar` only knows the years of its
release and raises afterwards, while a weekday rule would silently miss 调休 weekends and holiday weeks. So
data comes from the package, corrected/extended by a YAML table the bureau maintains
(`deploy/calendar/overrides.yaml`), and a year known to neither is either an error or an explicit, recorded
guess — never a silent one.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

import chinese_calendar
import yaml
from dateutil.relativedelta import relativedelta

UnknownYearPolicy = Literal["fail", "warn"]

DEFAULT_OVERRIDES_PATH = Path(__file__).resolve().parents[1] / "deploy" / "calendar" / "overrides.yaml"

# The longest official run of rest days is about ten days (Spring Festival); a far longer gap means a broken
# override table, which must not turn into an endless loop.
_MAX_REST_RUN = 60


class CalendarYearUnknown(LookupError):
    """Raised rather than guessing when the official schedule of a year is not available."""

    def __init__(self, year: int, overrides_path: str) -> None:
        self.year = year
        super().__init__(
            f"{year}年的法定节假日安排（含调休上班日）未知：请将国务院办公厅公布的{year}年节假日安排录入 "
            f"{overrides_path}。 / The official holiday schedule for {year} (holidays and 调休 make-up "
            f"working days) is unknown: add it to {overrides_path}."
        )


class CalendarGuessWarning(UserWarning):
    """Emitted when a year's working days are guessed as Monday–Friday, so deadlines there may be wrong."""

    def __init__(self, year: int, overrides_path: str) -> None:
        self.year = year
        super().__init__(
            f"{year}年节假日安排未知，暂按周一至周五计算工作日，期限可能有误；请录入 {overrides_path}。 / "
            f"Holiday schedule for {year} unknown: GUESSING Monday–Friday working days, deadlines may be "
            f"wrong; add the official schedule to {overrides_path}."
        )


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


def quarter_of(d: date) -> int:
    """Quarter 1–4 of a date; reporting cycles in the seeds are quarterly."""
    return (d.month - 1) // 3 + 1


def _as_date(d: date) -> date:
    # datetime is a subclass of date: accepting one would silently use its own zone's day, not Shanghai's.
    if isinstance(d, datetime):
        raise TypeError(f"expected a date, got datetime {d!r}; convert with models.clock.local_date()")
    return d


class WorkingDays:
    """Working-day arithmetic for deadlines, over the package data plus the bureau's overrides.

    `unknown_year` is the program's choice for a year known to neither source: "fail" raises
    `CalendarYearUnknown`; "warn" treats Monday–Friday as working days, emits `CalendarGuessWarning` the first
    time each year is guessed and records it in `guessed_years` so the UI can flag affected deadlines.
    """

    def __init__(
        self, overrides: CalendarOverrides | None = None, *, unknown_year: UnknownYearPolicy = "fail"
    ) -> None:
        if unknown_year not in get_args(UnknownYearPolicy):
            raise ValueError(f"unknown_year must be 'fail' or 'warn', not {unknown_year!r}")
        self.overrides = overrides if overrides is not None else CalendarOverrides()
        self.unknown_year: UnknownYearPolicy = unknown_year
        self._guessed: set[int] = set()

    @property
    def guessed_years(self) -> frozenset[int]:
        """Years answered by the Monday–Friday guess so far (only ever non-empty under "warn")."""
        return frozenset(self._guessed)

    def known_years(self) -> frozenset[int]:
        """Years answered from official data: the package's range plus every year in the override table."""
        return frozenset(package_years()) | self.overrides.years

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

    def first_month_of_quarter_deadline(self, d: date, *, roll_forward: bool = False) -> date:
        """Last day of the first month of `d`'s quarter: when the previous quarter's statistics are due."""
        d = _as_date(d)
        end = date(d.year, 3 * (quarter_of(d) - 1) + 1, 1) + relativedelta(day=31)
        return self.next_working_day(end, include_self=True) if roll_forward else end

    quarter_of = staticmethod(quarter_of)

    def _unknown(self, year: int) -> None:
        if self.unknown_year == "fail":
            raise CalendarYearUnknown(year, self.overrides.source)
        if year not in self._guessed:
            self._guessed.add(year)
            warnings.warn(CalendarGuessWarning(year, self.overrides.source), stacklevel=3)

    def __repr__(self) -> str:
        years = sorted(self.known_years())
        return f"WorkingDays(known={years[0]}–{years[-1]}, unknown_year={self.unknown_year!r})"


def load_working_days(
    overrides_path: Path | None = None, unknown_year: UnknownYearPolicy = "fail"
) -> WorkingDays:
    """Build the calendar from the override file (default: the shipped deploy/calendar/overrides.yaml).

    An explicitly given path must exist; a missing default file just means "no overrides", which is safe
    because unknown years then fail or are visibly guessed.
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
    "CalendarGuessWarning",
    "CalendarOverrides",
    "CalendarOverridesError",
    "CalendarYearUnknown",
    "UnknownYearPolicy",
    "WorkingDays",
    "load_overrides",
    "load_working_days",
    "package_years",
    "parse_overrides",
    "quarter_of",
]
