"""The audit trail: who moved what from which state to which, when and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime, EnumString, JSONType
from models.states import Role
from models.transitions import AuditRecord


class AuditEvent(SQLModel, table=True):
    """Append-only; written in the same transaction as the change it records."""

    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)
    id: int | None = Field(default=None, primary_key=True)
    # Neither a foreign key nor indexed (migration 0005). An audit trail must not depend on the rows it
    # describes, and it is written 100,000 rows at a time (PostgreSQL's per-row foreign-key check cost
    # 0.3-0.5 s per 100,000). The audit page walks the time index and compares the program as it goes
    # (web/pages_records.audit); a selective filter (one entity, a rare user) has its own index.
    program_id: int | None = None
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    action: str = Field(max_length=48)
    from_state: str | None = Field(default=None, max_length=40)
    to_state: str | None = Field(default=None, max_length=40)
    actor: str = Field(max_length=64, index=True)
    role: Role = Field(sa_column=Column(EnumString(Role), nullable=False))
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False, index=True))


def audit_row(record: AuditRecord) -> dict[str, Any]:
    """The insert values of an audit record, for bulk `insert(AuditEvent)` executemany."""
    return {
        "program_id": record.program_id,
        "entity": record.entity,
        "entity_id": str(record.entity_id),
        "action": record.action,
        "from_state": record.from_state,
        "to_state": record.to_state,
        "actor": record.actor,
        "role": record.role,
        "reason": record.reason,
        "data": dict(record.data),
        "at": record.at,
    }
