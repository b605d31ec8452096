"""An index hint is SQLite's alone: PostgreSQL plans from statistics, and an expression has none (issue #19)."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from core.sql_hints import unindexed
from models.audit import AuditEvent


def _sql(clause: object, dialect: object) -> str:
    return str(clause.compile(dialect=dialect))  # type: ignore[attr-defined]


def test_sqlite_sees_a_hidden_integer_column_as_arithmetic_and_a_text_column_as_a_concatenation() -> None:
    assert _sql(unindexed(col(AuditEvent.program_id)) == 1, sqlite.dialect()) == "(auditevent.program_id + 0) = ?"
    assert _sql(unindexed(col(AuditEvent.entity)) == "gate", sqlite.dialect()) == "(auditevent.entity || '') = ?"


def test_postgresql_sees_the_plain_column() -> None:
    assert _sql(unindexed(col(AuditEvent.program_id)) == 1, postgresql.dialect()).startswith("auditevent.program_id = ")
    assert _sql(unindexed(col(AuditEvent.actor)) == "manager", postgresql.dialect()).startswith("auditevent.actor = ")
