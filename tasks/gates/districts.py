"""Per district, how its gates stand: what the overview shows so a stalled district is impossible to miss.

Two grouped statements for the whole program (gates by district and state; carried-over applications by
district), whatever its size; the expired gates' item lists are read once (a program has a few dozen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Integer, case, func, select
from sqlmodel import Session

from core.bulk import json_rows, table_of
from models.clock import to_shanghai
from models.enrollment import Application, Gate
from models.gate_deadlines import district_stalled
from models.program_definition import ProgramDefinition
from models.states import ApplicationState, GateState

GATE, APP = table_of(Gate), table_of(Application)
_WAITING = (ApplicationState.SUBMITTED.value, ApplicationState.DISTRICT_APPROVED.value)


@dataclass(frozen=True)
class DistrictGates:
    """One district's gates: open ones (and how many are past due), the oldest waiting since, expired ones,
    and the applications those carried over that still wait (with the oldest one's submission date)."""

    district: str
    open_gates: int
    overdue_gates: int
    waiting_since: date | None  # the day the oldest open gate opened
    expired_gates: int
    carried_over: int
    carried_since: date | None  # submission day of the oldest carried-over application still waiting
    today: date

    @property
    def stalled(self) -> bool:
        return district_stalled(self.overdue_gates, self.carried_over)

    @property
    def waiting_days(self) -> int | None:
        return None if self.waiting_since is None else (self.today - self.waiting_since).days

    @property
    def carried_days(self) -> int | None:
        return None if self.carried_since is None else (self.today - self.carried_since).days


@dataclass
class _Tally:
    open: int = 0
    overdue: int = 0
    since: date | None = None
    expired: int = 0
    carried: int = 0
    carried_since: date | None = None


def district_gates(session: Session, program_id: int, defn: ProgramDefinition, today: date) -> list[DistrictGates]:
    """Every district of the program (those with nothing open too), stalled ones first, then by name."""
    g = GATE.c
    stats: dict[str, _Tally] = {d.name: _Tally() for d in defn.districts}
    for district, state, n, oldest, overdue in session.execute(
            select(g.district, g.state, func.count(), func.min(g.opened_at),
                   func.sum(case((g.due_on < today, 1), else_=0)))
            .where(g.program_id == program_id, g.district.is_not(None)).group_by(g.district, g.state)).tuples():
        tally = stats.setdefault(str(district), _Tally())
        state = str(getattr(state, "value", state))
        if state == GateState.OPEN.value:
            tally.open, tally.overdue = int(n), int(overdue or 0)
            tally.since = to_shanghai(oldest).date() if oldest else None
        elif state == GateState.EXPIRED.value:
            tally.expired = int(n)
    carried: set[int] = set()
    for items in session.execute(select(g["items"]).where(g.program_id == program_id,
                                                          g.state == GateState.EXPIRED.value)).scalars():
        carried.update(int(i) for i in items)
    if carried:
        ids = json_rows(session, "carried", [("id", Integer())], [(i,) for i in sorted(carried)])
        for district, n, oldest in session.execute(
                select(APP.c.district, func.count(), func.min(APP.c.submitted_at))
                .join_from(ids, APP, APP.c.id == ids.c.id)
                .where(APP.c.state.in_(_WAITING)).group_by(APP.c.district)).tuples():
            tally = stats.setdefault(str(district), _Tally())
            tally.carried, tally.carried_since = int(n), to_shanghai(oldest).date()
    rows = [DistrictGates(name, t.open, t.overdue, t.since, t.expired, t.carried, t.carried_since, today)
            for name, t in stats.items()]
    return sorted(rows, key=lambda r: (not r.stalled, r.district))


@dataclass(frozen=True)
class ProgramGates:
    """A program on the manager's home page: open gates, how many are past due, stalled districts."""

    open_gates: int
    overdue_gates: int
    stalled_districts: list[str]


def program_gates(session: Session, program_id: int, defn: ProgramDefinition, today: date) -> ProgramGates:
    g = GATE.c
    open_gates, overdue = session.execute(
        select(func.count(), func.sum(case((g.due_on < today, 1), else_=0)))
        .where(g.program_id == program_id, g.state == GateState.OPEN.value)).one()
    stalled = [d.district for d in district_gates(session, program_id, defn, today) if d.stalled]
    return ProgramGates(int(open_gates), int(overdue or 0), stalled)
