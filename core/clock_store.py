"""The clock every process of one installation agrees on: simulated when the database says so."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel

from models.clock import SHANGHAI, SystemClock, to_shanghai
from models.program import ClockSetting
from models.states import Role
from models.transitions import AuditRecord

_CLOCK = SQLModel.metadata.tables["clocksetting"]
_SIMULATED_NOW = select(_CLOCK.c.now).where(_CLOCK.c.id == 1)


class SimulatedClockRefused(PermissionError):
    """This installation runs on real time; only demo, test and rehearsal databases may simulate it."""

    def __init__(self) -> None:
        super().__init__("本系统按真实时间运行，不能设定模拟时钟（仅演示、测试或演练数据库可设 SANJIN_CLOCK=database） / "
                         "this installation runs on real time: the simulated clock is only for demo, test or "
                         "rehearsal databases (SANJIN_CLOCK=database)")


def simulation_allowed() -> bool:
    """Whether this installation may run on a simulated clock: only where settings say so (demo, tests, rehearsal)."""
    from core.settings import get_settings

    return get_settings().clock == "database"


class DatabaseClock:
    """System time, unless this installation simulates time (`SANJIN_CLOCK=database`: demo, tests, rehearsal)
    and a simulated 'now' is stored; then that, for everyone.

    Kept in the database rather than in memory so the CLI, the flows and the dashboard of a demo
    all see the same simulated day. Elsewhere a stored simulated time is ignored — a row left behind
    by a rehearsal, or written straight into the database, cannot backdate anything — and setting one is refused.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._system = SystemClock()

    def simulated(self) -> datetime | None:
        if not simulation_allowed():
            return None
        # One Core statement, not an ORM session: every reconciler and the sender read the clock several
        # times per chunk; `Session.get` cost 0.83 ms a reading on PostgreSQL (0.17 on SQLite), this 0.51 (0.06):
        # the rest is the pool's pre-ping and reset on PostgreSQL.
        with self.engine.connect() as conn:
            now: datetime | None = conn.execute(_SIMULATED_NOW).scalar()
        return None if now is None else now.astimezone(SHANGHAI)

    def _stored(self) -> datetime | None:
        """The stored simulated time whether or not it counts here (what a clearing removes)."""
        with self.engine.connect() as conn:
            now: datetime | None = conn.execute(_SIMULATED_NOW).scalar()
        return None if now is None else now.astimezone(SHANGHAI)

    def now(self) -> datetime:
        return self.simulated() or self._system.now()

    def today(self) -> date:
        return self.now().date()

    def set(self, when: datetime) -> datetime:
        if not simulation_allowed():
            raise SimulatedClockRefused()
        when = to_shanghai(when)
        with Session(self.engine) as session:
            row = session.get(ClockSetting, 1)
            if row is None:
                session.add(ClockSetting(id=1, now=when))
            else:
                row.now = when
            session.commit()
        return when

    def change_audited(self, when: datetime | None, *, actor: str) -> datetime | None:
        """A person moves (or clears) the simulated clock: refused unless this installation simulates time.

        Backdating is how a refused late submission would pass as on time, so outside a demo, test or rehearsal
        database (`SANJIN_CLOCK=database`) it is refused; where allowed, the move is in the audit trail, stamped
        with the real time.
        """
        from core.bulk import write_audit

        if when is not None and not simulation_allowed():
            raise SimulatedClockRefused()  # clearing a leftover simulated time is always allowed (and audited)
        before = self._stored()
        when = None if when is None else to_shanghai(when)
        with Session(self.engine) as session:
            row = session.get(ClockSetting, 1)
            if when is None and row is not None:
                session.delete(row)
            elif when is not None and row is None:
                session.add(ClockSetting(id=1, now=when))
            elif when is not None and row is not None:
                row.now = when
            session.flush()
            write_audit(session, [AuditRecord(
                entity="clock", entity_id=1, action="set" if when else "clear", from_state=None, to_state=None,
                actor=actor, role=Role.SYSTEM, at=self._system.now(), reason=None, program_id=None,
                data={"from": before.isoformat() if before else None, "to": when.isoformat() if when else None})])
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
