"""Writing notices into the outbox, inside the caller's transaction, at most once per key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.outbox import Notice
from models.states import NoticeStatus
from tasks.store import insert_ignoring_conflicts


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
