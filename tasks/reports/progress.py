"""The enrollment funnel counted now, and one snapshot of it per program and day for the overview's trend.

A handful of grouped statements per program, whatever its size (no row per institution leaves the
database). The program flow calls `take_snapshot` on every run; the first run of a day writes the day's
row and later runs that day write nothing (INSERT … ON CONFLICT DO NOTHING on (program, day)).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, and_, case, exists, func, select
from sqlmodel import Session

from core.bulk import insert_ignoring_conflicts, table_of
from core.db import transaction
from models.clock import Clock
from models.enrollment import Application, Batch
from models.operations import Contract, PlatformAccount
from models.progress import PASSED, FunnelStage, ProgramSnapshot
from models.states import AccountState, ApplicationState, ContractState
from tasks.programs import get_program

APP, BATCH, ACCOUNT, CONTRACT, SNAP = (table_of(m) for m in (Application, Batch, PlatformAccount, Contract,
                                                             ProgramSnapshot))
_RUNNING = [s.value for s in PASSED[FunnelStage.RUNNING]]


def _institutions_in(states: frozenset[ApplicationState]) -> Any:
    return func.count(func.distinct(case((APP.c.state.in_([s.value for s in states]), APP.c.institution_id))))


def funnel_counts(session: Session, program_id: int) -> dict[str, int]:
    """Institutions at each funnel stage (cumulative), and the program's non-empty batches by state (batch_<state>)."""
    applied, district, city, running = session.execute(
        select(func.count(func.distinct(APP.c.institution_id)),
               *(_institutions_in(PASSED[s]) for s in (FunnelStage.DISTRICT_REVIEWED, FunnelStage.CITY_REVIEWED,
                                                        FunnelStage.RUNNING)))
        .where(APP.c.program_id == program_id)).one()
    running_apps = and_(APP.c.program_id == program_id, APP.c.state.in_(_RUNNING))
    # IN (uncorrelated subquery): built once; a correlated EXISTS made SQLite walk the program's contracts for
    # every running application (12.9 s at the demo's 1,800 institutions on this loaded machine, now ~10 ms).
    registered = session.execute(
        select(func.count(func.distinct(APP.c.institution_id))).where(running_apps, APP.c.institution_id.in_(
            select(ACCOUNT.c.institution_id).where(ACCOUNT.c.program_id == program_id,
                                                   ACCOUNT.c.state == AccountState.REGISTERED.value)))).scalar_one()
    signed = session.execute(
        select(func.count(func.distinct(APP.c.institution_id))).where(running_apps, APP.c.institution_id.in_(
            select(CONTRACT.c.institution_id).where(CONTRACT.c.program_id == program_id,
                                                    CONTRACT.c.state == ContractState.SIGNED.value)))).scalar_one()
    counts = dict(zip([s.value for s in FunnelStage], map(int, (applied, district, city, running, registered, signed)),
                      strict=True))
    counts.update({f"batch_{k}": v for k, v in batch_counts(session, program_id).items()})
    return counts


def batch_counts(session: Session, program_id: int) -> dict[str, int]:
    """Batches by state, counting only those that hold an application: an empty batch is no batch running."""
    rows = session.execute(
        select(BATCH.c.state, func.count()).where(
            BATCH.c.program_id == program_id, exists().where(APP.c.batch_id == BATCH.c.id))
        .group_by(BATCH.c.state)).all()
    return {str(getattr(k, "value", k)): int(n) for k, n in rows}


def take_snapshot(engine: Engine, slug: str, *, clock: Clock) -> bool:
    """Write today's snapshot of the program unless one exists; True when this call wrote it."""
    today = clock.today()
    with transaction(engine) as session:
        program, _ = get_program(session, slug)
        assert program.id is not None
        if session.execute(select(SNAP.c.id).where(SNAP.c.program_id == program.id, SNAP.c.day == today)).first():
            return False
        row = {"program_id": program.id, "day": today, "counts": funnel_counts(session, program.id),
               "taken_at": clock.now()}
        insert_ignoring_conflicts(session, ProgramSnapshot, [row], ["program_id", "day"])  # a concurrent run: no-op
        return True


def snapshots(session: Session, program_id: int, *, until: date | None = None) -> list[tuple[date, dict[str, int]]]:
    """Every snapshot of the program in day order (up to `until`, the clock's day: a simulated past has no future)."""
    query = select(SNAP.c.day, SNAP.c.counts).where(SNAP.c.program_id == program_id)
    if until is not None:
        query = query.where(SNAP.c.day <= until)
    return [(day, {k: int(v) for k, v in counts.items()}) for day, counts in session.execute(query.order_by(SNAP.c.day))]
