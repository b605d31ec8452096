"""The program (one region's 三进 campaign), its windows, alliance, users, clock and import log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime, EnumString, JSONType, utcnow
from models.states import InvitationState, Role


class Program(SQLModel, table=True):
    """A loaded program file; `definition` is the validated file, the source of every rule value."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    region: str = Field(max_length=64)
    region_code: str = Field(max_length=6)
    definition: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    content_hash: str = Field(max_length=64)
    source_path: str | None = Field(default=None, max_length=500)
    loaded_at: datetime = Field(default_factory=utcnow, sa_column=Column(AwareDateTime, nullable=False))


class PhaseWindow(SQLModel, table=True):
    """A phase's date window, copied out of the definition so queries and pages can join on it."""

    __table_args__ = (UniqueConstraint("program_id", "phase"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    phase: str = Field(max_length=32)
    label: str = Field(max_length=64)
    opens_on: date
    closes_on: date | None = None


class AllianceInvitation(SQLModel, table=True):
    """The invitation letter (函) to one city and its answer (seed 000 §五 step 1)."""

    __table_args__ = (UniqueConstraint("program_id", "city"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    city: str = Field(max_length=32)
    bureau: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=200)
    state: InvitationState = Field(
        default=InvitationState.INVITED, sa_column=Column(EnumString(InvitationState), nullable=False)
    )
    invited_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    responded_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))


class User(SQLModel, table=True):
    """A person who decides gates; district reviewers are bound to their districts."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    display_name: str | None = Field(default=None, max_length=64)  # what people read: 王科长, never the login name
    unit: str | None = Field(default=None, max_length=100)  # 和平区医疗保障局: letters and pages name the office
    email: str | None = Field(default=None, max_length=200)  # where escalations and statistics requests go
    role: Role = Field(sa_column=Column(EnumString(Role), nullable=False))
    districts: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    program_slugs: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    password_hash: str | None = Field(default=None, max_length=200)
    active: bool = True


class ClockSetting(SQLModel, table=True):
    """A simulated 'now' shared by every process of a demo or test (a single row, id 1)."""

    id: int | None = Field(default=None, primary_key=True)
    now: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


class ImportRecord(SQLModel, table=True):
    """A file imported once: the same bytes imported again are recognised and create nothing."""

    __table_args__ = (UniqueConstraint("kind", "program_id", "sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    program_id: int | None = Field(default=None, foreign_key="program.id")
    sha256: str = Field(max_length=64)
    filename: str = Field(max_length=300)
    rows: int = 0
    created: int = 0
    imported_by: str = Field(default="system", max_length=64)
    imported_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
