"""Domain time: every deadline is a date on the bureau's wall calendar in Shanghai, whatever the host's zone.

Code that decides "is it due?" asks a `Clock` instead of calling `datetime.now()`, so tests and the demo
can move time. Naive datetimes are read as Shanghai local time throughout: that is how people (and seed
files) write times here, and a single convention beats guessing per call site.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def to_shanghai(dt: datetime) -> datetime:
    """Aware Shanghai time; a naive value is taken to be Shanghai local time already (not UTC)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=SHANGHAI)
    return dt.astimezone(SHANGHAI)


def local_date(dt: datetime) -> date:
    """The Shanghai calendar day of an instant; `dt.date()` on a UTC value is off by one before 08:00."""
    return to_shanghai(dt).date()


@runtime_checkable
class Clock(Protocol):
    """Source of "now" for domain logic (system, fixed for tests, or shared through the database)."""

    def now(self) -> datetime:
        """Aware datetime in Asia/Shanghai."""
        ...

    def today(self) -> date:
        """Shanghai local date of `now()`."""
        ...


class SystemClock:
    """Production clock: the host's real time, expressed in Shanghai regardless of the host's zone."""

    def now(self) -> datetime:
        return datetime.now(SHANGHAI)

    def today(self) -> date:
        return self.now().date()

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that only moves when told, so tests and the single-process demo are reproducible.

    Guarded by a lock because a demo may advance time while worker threads read it.
    """

    def __init__(self, now: datetime) -> None:
        self._lock = threading.Lock()
        self._now = to_shanghai(now)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def today(self) -> date:
        return self.now().date()

    def set(self, dt: datetime) -> None:
        """Jump to `dt` (naive = Shanghai local); moving backwards is allowed, tests need it."""
        value = to_shanghai(dt)
        with self._lock:
            self._now = value

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` of elapsed time and return the new now (DST-free zone, so exact)."""
        with self._lock:
            self._now = (self._now + delta).astimezone(SHANGHAI)
            return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self.now().isoformat()!r})"


__all__ = ["SHANGHAI", "Clock", "FixedClock", "SystemClock", "local_date", "to_shanghai"]
