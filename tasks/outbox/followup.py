"""What a person does with notices the sender could not deliver: find them, then put them back in the queue.

Kept apart from sending: these run on a person's decision (the CLI, the records page), never in a
sending run, and each requeue is audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session, col

from core.bulk import table_of, write_audit
from models.clock import Clock, SystemClock
from models.outbox import Notice
from models.states import NoticeStatus, Role
from models.transitions import NOTICE, AuditRecord

N = NoticeStatus


def resend(
    engine: Engine,
    notice_ids: Iterable[int],
    *,
    clock: Clock | None = None,
    emails: Mapping[int, str] | None = None,
    actor: str = "system",
    role: Role = Role.SYSTEM,
) -> int:
    """Put dead or no-address notices back in the queue (after a fix, or an address found by phone).

    `emails` supplies addresses for no-address notices; one still without an address stays where it
    is, listed for follow-up. A person decides a resend, so each one gets an audit row. Returns how
    many were requeued.
    """
    ids = sorted(set(notice_ids))
    if not ids:
        return 0
    now = (clock or SystemClock()).now()
    t = table_of(Notice)
    found = emails or {}
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(t.c.id, t.c.status, t.c.email, t.c.program_id).where(t.c.id.in_(ids)).with_for_update()
        ).all()
        updates: list[dict[str, Any]] = []
        records: list[AuditRecord] = []
        for r in rows:
            if not NOTICE.can_apply(r.status, "resend"):
                continue
            email = (found.get(r.id) or r.email or "").strip()
            if not email:
                continue
            new, record = NOTICE.apply(
                r.id, r.status, "resend", actor=actor, role=role, at=now, program_id=r.program_id,
                data={"email": email} if email != r.email else None,
            )
            updates.append({"b_id": r.id, "b_from": r.status, "b_to": new, "b_email": email, "b_now": now})
            records.append(record)
        if updates:
            session.execute(
                update(t)
                .where(t.c.id == bindparam("b_id"), t.c.status == bindparam("b_from"))
                .values(status=bindparam("b_to"), email=bindparam("b_email"), attempts=0,
                        next_attempt_at=bindparam("b_now"), last_error=None),
                updates,
            )
            write_audit(session, records)
    return len(updates)


def list_no_address(engine: Engine, *, program_id: int | None = None) -> list[Notice]:
    """Notices nobody can e-mail, oldest first, for print or phone follow-up (then `resend` with an address)."""
    stmt = select(Notice).where(col(Notice.status) == N.NO_ADDRESS).order_by(col(Notice.id))
    if program_id is not None:
        stmt = stmt.where(col(Notice.program_id) == program_id)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(stmt).all())


__all__ = [
    "list_no_address",
    "resend",
]
