"""The official holiday schedules the bureau entered, and how a stored deadline remembers it was provisional.

A schedule entered from the State Council's notice lives in the database (not a file on one machine), so every
worker and the web app count working days alike; `ProvisionalDue` keeps, beside a date computed while its year
had no official schedule, what it was computed from, so it can be recomputed the moment the schedule arrives.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, SmallInteger, false
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime
from models.workdays import Deadline


class CalendarYear(SQLModel, table=True):
    """A year whose official schedule was entered: from which notice, when and by whom."""

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    title: str = Field(max_length=200)
    text_sha256: str = Field(max_length=64)
    entered_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    entered_by: str = Field(max_length=64)


class CalendarDay(SQLModel, table=True):
    """A day the notice names: a rest day of a festival period, or a 调休 make-up working day."""

    day: date = Field(primary_key=True)
    year: int = Field(index=True)  # the schedule it belongs to (a 元旦 bridge may lie in December before)
    working: bool
    festival: str = Field(max_length=32)


class ProvisionalDue(SQLModel):
    """Columns beside a `due_on`: whether it is provisional (暂定), and its basis while it is."""

    # A server default, so rows written before this column (and bulk writers that omit it) are not provisional.
    due_on_provisional: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    due_from: date | None = None  # the event the working days count from; only while provisional
    due_working_days: int | None = Field(default=None, sa_type=SmallInteger)


NO_DUE: dict[str, Any] = {"due_on": None, "due_on_provisional": False, "due_from": None, "due_working_days": None}


def due_columns(deadline: Deadline) -> dict[str, Any]:
    """The stored form of a computed deadline: the basis is kept only while the date is provisional."""
    return {"due_on": deadline.day, "due_on_provisional": deadline.provisional,
            "due_from": deadline.start if deadline.provisional else None,
            "due_working_days": deadline.working_days if deadline.provisional else None}


__all__ = ["NO_DUE", "CalendarDay", "CalendarYear", "ProvisionalDue", "due_columns"]
