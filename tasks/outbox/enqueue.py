"""Writing notices into the outbox, inside the caller's transaction, at most once per key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, and_, case, literal, true
from sqlalchemy.sql.selectable import Select
from sqlmodel import Session

from core.bulk import insert_from_select, insert_ignoring_conflicts, table_of
from models.base import AwareDateTime
from models.outbox import Notice
from models.states import NoticeStatus

NOTICE_SOURCE_COLUMNS = ("idempotency_key", "program_id", "kind", "recipient_type", "recipient_id", "recipient_name",
                         "email", "context")


@dataclass(frozen=True)
class NoticeDraft:
    """A notice to send; `key` is its idempotency key (same cause → same key → one notice)."""

    key: str
    kind: str
    recipient_type: str
    recipient_name: str
    email: str | None
    context: dict[str, Any] = field(default_factory=dict)
    recipient_id: int | None = None
    program_id: int | None = None


def enqueue_notices(session: Session, drafts: Sequence[NoticeDraft], now: datetime) -> int:
    """Add the drafts not already in the outbox; returns how many are new.

    Called in the same transaction as the state change that causes the notices, so a crash
    leaves either both or neither. Recipients without e-mail are kept as `no_address` for
    print or phone follow-up rather than dropped.
    """
    rows = [
        {
            "idempotency_key": d.key,
            "program_id": d.program_id,
            "kind": d.kind,
            "recipient_type": d.recipient_type,
            "recipient_id": d.recipient_id,
            "recipient_name": d.recipient_name,
            "email": d.email,
            "context": d.context,
            "status": NoticeStatus.PENDING if d.email else NoticeStatus.NO_ADDRESS,
            "attempts": 0,
            "next_attempt_at": now if d.email else None,
            "created_at": now,
        }
        for d in drafts
    ]
    return insert_ignoring_conflicts(session, Notice, rows, ["idempotency_key"])


def enqueue_notices_from(session: Session, source: Select[Any], now: datetime) -> int:
    """Add one notice per row of `source` whose key is not in the outbox yet; returns how many are new.

    `source` selects NOTICE_SOURCE_COLUMNS, in that order and so labelled (the context as a JSON object
    built by the database, see core.bulk.json_object). The database writes the
    notices itself: at 100,000 institutions, building and binding the rows in Python cost seconds.
    Same rules as `enqueue_notices`.
    """
    names = [c.name for c in source.selected_columns]
    if names != list(NOTICE_SOURCE_COLUMNS):
        raise ValueError(f"a notice source selects {NOTICE_SOURCE_COLUMNS}, not {names}")
    email = source.selected_columns.email
    has_email = and_(email.is_not(None), email != "")
    at = literal(now, AwareDateTime())
    query = source.add_columns(
        case((has_email, literal(NoticeStatus.PENDING.value, String)),
             else_=literal(NoticeStatus.NO_ADDRESS.value, String)),
        literal(0, Integer),
        case((has_email, at), else_=None),
        at,
    ).where(true())  # SQLite needs a WHERE before ON CONFLICT
    return insert_from_select(session, table_of(Notice),
                              [*NOTICE_SOURCE_COLUMNS, "status", "attempts", "next_attempt_at", "created_at"],
                              query, conflict_key=["idempotency_key"])
