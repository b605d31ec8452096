"""Bulk writes shared by every task: insert-or-skip on a natural key, and audit rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel

from models.audit import AuditEvent, audit_row
from models.transitions import AuditRecord


def insert_ignoring_conflicts(
    session: Session, table: type[SQLModel], rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> int:
    """Insert rows, skipping those whose `key` already exists; returns how many were new.

    This is how a re-run writes nothing twice: the natural key is a unique constraint and a
    conflicting row is a no-op on both SQLite and PostgreSQL.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    t = SQLModel.metadata.tables[str(table.__tablename__)]
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(t).on_conflict_do_nothing(index_elements=list(key))
    elif dialect == "sqlite":
        stmt = sqlite_insert(t).on_conflict_do_nothing(index_elements=list(key))
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    # RETURNING yields only the rows really inserted, on both databases (executemany rowcount does not).
    result = session.execute(stmt.returning(t.c.id), list(rows))
    return len(result.all())


def write_audit(session: Session, records: Iterable[AuditRecord]) -> int:
    rows = [audit_row(r) for r in records]
    if rows:
        session.execute(insert(AuditEvent), rows)
    return len(rows)


# Below PostgreSQL's 65,535 bind parameters per statement (and SQLite's limit): long id lists go in slices.
ID_CHUNK = 5000


def chunked(ids: Sequence[int], size: int = ID_CHUNK) -> list[Sequence[int]]:
    """Slices of `ids` small enough for one `IN (...)` each."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]
