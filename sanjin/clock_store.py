"""The clock every process of one installation agrees on: simulated when the database says so."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from models.clock import SHANGHAI, SystemClock, to_shanghai
from models.program import ClockSetting


class DatabaseClock:
    """System time, unless a simulated 'now' is stored (demo, rehearsal); then that, for everyone.

    Kept in the database rather than in memory so the CLI, the flows and the dashboard of a demo
    all see the same simulated day.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._system = SystemClock()

    def simulated(self) -> datetime | None:
        with Session(self.engine) as session:
            row = session.get(ClockSetting, 1)
            return None if row is None else row.now.astimezone(SHANGHAI)

    def now(self) -> datetime:
        return self.simulated() or self._system.now()

    def today(self) -> date:
        return self.now().date()

    def set(self, when: datetime) -> datetime:
        when = to_shanghai(when)
        with Session(self.engine) as session:
            row = session.get(ClockSetting, 1)
            if row is None:
                session.add(ClockSetting(id=1, now=when))
            else:
                row.now = when
            session.commit()
        return when

    def advance(self, delta: timedelta) -> datetime:
        return self.set(self.now() + delta)

    def clear(self) -> None:
        with Session(self.engine) as session:
            row = session.get(ClockSetting, 1)
            if row is not None:
                session.delete(row)
                session.commit()
