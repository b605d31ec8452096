"""The working-day calendar a program uses: the package, the shipped table and the schedules in the database.

The schedules the bureau entered live in the database so every worker and the web app count alike; the merged
table is cached per process by the entered years' fingerprints, so a new entry is seen at the next call.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Connection, select
from sqlmodel import Session

from core.settings import get_settings
from models.calendar import CalendarDay, CalendarYear
from models.program_definition import ProgramDefinition
from models.workdays import CalendarOverrides, WorkingDays, load_working_days, overrides_from_days

Fingerprint = tuple[tuple[int, str], ...]


def _fingerprint(db: Session | Connection) -> Fingerprint:
    rows = db.execute(select(CalendarYear.year, CalendarYear.text_sha256).order_by(CalendarYear.year)).all()  # type: ignore[call-overload]
    return tuple((int(y), str(h)) for y, h in rows)


@lru_cache(maxsize=1)
def _shipped() -> CalendarOverrides:
    return load_working_days(get_settings().calendar_overrides).overrides


_merged_cache: dict[Fingerprint, CalendarOverrides] = {}


def entered_overrides(db: Session | Connection) -> CalendarOverrides:
    """The shipped table with every schedule entered in the database laid over it."""
    key = _fingerprint(db)
    merged = _merged_cache.get(key)
    if merged is None:
        days = db.execute(select(CalendarDay.day, CalendarDay.working)).all()  # type: ignore[call-overload]
        entered = overrides_from_days(((d, bool(w)) for d, w in days), (y for y, _ in key), "database")
        merged = _shipped().merged(entered)
        _merged_cache.clear()  # one generation is enough: schedules change once a year
        _merged_cache[key] = merged
    return merged


def display_days(db: Session | Connection) -> WorkingDays:
    """For showing how late or how near something is, and reminder horizons: never refuses an unknown year.

    A strict program refuses to *set* a deadline in such a year; showing one already set, or looking a few days
    ahead for reminders, must keep working (pages, laggards, the calendar letter itself).
    """
    return WorkingDays(entered_overrides(db), unknown_year="provisional")


def working_days_for(db: Session | Connection, defn: ProgramDefinition) -> WorkingDays:
    """A fresh calendar for one pass (it records which provisional years the pass used)."""
    return WorkingDays(entered_overrides(db), unknown_year=defn.calendar_unknown_year)
