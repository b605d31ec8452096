"""The enrollment funnel and its daily snapshots: how far the program's institutions got, and since when.

Each stage counts institutions (an institution that applied twice is one), cumulatively: an institution
the city approved also passed its district, so a later stage never exceeds an earlier one. Batches are
counted apart (a batch is not an institution) and only when they hold applications: an empty batch is
no progress.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime, JSONType
from models.states import ApplicationState


class FunnelStage(StrEnum):
    """申报 → 区县审核 → 市级审核 → 运行 → 注册 → 签约 (seed 000 §五's steps, in order)."""

    APPLIED = "applied"  # applied at least once
    DISTRICT_REVIEWED = "district_reviewed"  # passed the district's review (or the only level of a one-level chain)
    CITY_REVIEWED = "city_reviewed"  # approved at every level
    RUNNING = "running"  # its batch ran and it still takes part (a suspension included)
    REGISTERED = "registered"  # of those running: its account on the provincial platform is registered
    SIGNED = "signed"  # of those running: at least one purchase agreement signed


FUNNEL: tuple[FunnelStage, ...] = tuple(FunnelStage)

# The application states that have passed each review stage (an exited institution had passed them too).
_AFTER_CITY = frozenset({ApplicationState.APPROVED, ApplicationState.RUNNING, ApplicationState.SUSPENDED,
                         ApplicationState.DISQUALIFIED, ApplicationState.EXITED})
PASSED: dict[FunnelStage, frozenset[ApplicationState]] = {
    FunnelStage.DISTRICT_REVIEWED: _AFTER_CITY | {ApplicationState.DISTRICT_APPROVED},
    FunnelStage.CITY_REVIEWED: _AFTER_CITY,
    FunnelStage.RUNNING: frozenset({ApplicationState.RUNNING, ApplicationState.SUSPENDED}),
}


class ProgramSnapshot(SQLModel, table=True):
    """One program's funnel and batch counts on one day, written once that day by the program flow."""

    __table_args__ = (UniqueConstraint("program_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")  # indexed by the unique (program_id, day)
    day: date
    # {"applied": 120, …, "batch_running": 3}: the funnel's stages and the non-empty batches by state
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    taken_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
