"""Sending the outbox: claim due notices in chunks, render, deliver, record each outcome.

Delivery guarantee. A notice is claimed (`pending` → `sending`, with a lease) and committed *before*
it goes to SMTP, and marked `sent` in a second transaction *after* the server accepted it. A crash
between the two leaves it in `sending`; once its lease expires the next run puts it back to `pending`
and sends it again with the **same Message-ID** (derived from the notice's id and idempotency key).
So delivery is at-least-once at the SMTP level — at most the chunk in flight can arrive twice, and a
duplicate carries the same Message-ID, so it is recognisably the same letter (many mail systems fold it
into one) — while the outbox records every notice exactly once (`idempotency_key` is unique; the
`sent` mark is guarded by the lease, so a sender that lost its lease cannot overwrite the outcome of
the one that took over).

While a notice is `sending`, `next_attempt_at` holds its lease expiry: the table needs no extra
column, and the lease value doubles as the token that proves a sender still owns the row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Engine, Table, and_, bindparam, or_, select, update
from sqlmodel import Session, SQLModel, col

from models.clock import Clock, SystemClock, local_date
from models.outbox import Notice
from models.states import NoticeStatus, Role
from models.transitions import NOTICE, AuditRecord
from notifications.render import build_message, message_id_for, render_notice, sender_domain
from notifications.smtp import Delivery, Mailer, OutgoingMessage, SendOutcome
from tasks.store import write_audit

log = logging.getLogger(__name__)

# Far above a chunk's send time (500 messages at the slowest rate seen here: ~1 s). With a provider rate
# limit, keep batch_size / rate well under it, or a slow chunk is reclaimed and sent twice.
LEASE = timedelta(minutes=10)
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)

N = NoticeStatus
# The SQL below moves rows in bulk; these names tie each move to the NOTICE transition table.
CLAIMED = NOTICE.next_state("notice", N.PENDING, "claim")
SENT = NOTICE.next_state("notice", N.SENDING, "sent")
RETRY = NOTICE.next_state("notice", N.SENDING, "retry")
DEAD = NOTICE.next_state("notice", N.SENDING, "dead")


@dataclass
class SendReport:
    """What one run did; `skipped` = claimed rows whose lease another sender took over meanwhile."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    reclaimed: int = 0  # rows found in `sending` past their lease (a crashed run) and put back

    @property
    def attempted(self) -> int:
        """Claimed rows this run settled or lost; 0 means nothing was due (a chunk loop can stop)."""
        return self.sent + self.retried + self.dead + self.skipped


@dataclass(frozen=True)
class ClaimedNotice:
    """A row this sender holds; `lease` is both its expiry and the proof of ownership when marking."""

    id: int
    key: str
    kind: str
    email: str | None
    recipient_name: str
    context: dict[str, Any]
    program_id: int | None
    created_at: datetime
    attempts: int
    lease: datetime


def _notice_table() -> Table:
    return SQLModel.metadata.tables["notice"]


def backoff(attempts: int, *, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP) -> timedelta:
    """Wait after the `attempts`-th failure: 1, 2, 4, 8 … minutes, capped, so an outage is not hammered."""
    wait: timedelta = base * 2 ** min(max(0, attempts - 1), 30)  # bounded: timedelta overflows past ~2**40 s
    return min(cap, wait)


def reclaim_expired(engine: Engine, *, clock: Clock, max_attempts: int) -> tuple[int, int]:
    """Put rows whose sender died back to `pending` (or `dead` when out of attempts); returns (back, dead).

    A lease expiry counts as an attempt, so a notice that crashes its sender every time ends dead
    instead of looping forever.
    """
    t = _notice_table()
    now = clock.now()
    expired = and_(t.c.status == N.SENDING, t.c.next_attempt_at <= now)
    with engine.begin() as conn:
        dead = conn.execute(
            update(t)
            .where(expired, t.c.attempts + 1 >= max_attempts)
            .values(status=DEAD, attempts=t.c.attempts + 1, next_attempt_at=None,
                    last_error="sender lost while sending (lease expired); out of attempts")
        ).rowcount
        back = conn.execute(
            update(t)
            .where(expired)
            .values(status=RETRY, attempts=t.c.attempts + 1, next_attempt_at=now,
                    last_error="sender lost while sending (lease expired); resending")
        ).rowcount
    if back or dead:
        log.warning("outbox: %d notices reclaimed after a lost sender, %d of them dead", back + dead, dead)
    return back, dead


def claim(engine: Engine, *, clock: Clock, batch_size: int, lease: timedelta = LEASE) -> list[ClaimedNotice]:
    """Take up to `batch_size` due notices for this sender and commit, before any of them is sent.

    PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`, then UPDATE those ids, so concurrent senders take
    disjoint chunks without waiting. (Not one `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
    LOCKED)`: PostgreSQL re-runs such a subquery as rows change and claims far more than n — seen in
    the tests here.) SQLite: that single statement is right, as SQLite evaluates the subquery once under
    its one write lock; `status = 'pending'` is re-checked by the UPDATE either way, so a row is never
    claimed twice.
    """
    t = _notice_table()
    now = clock.now()
    lease_until = now + lease
    due = (
        select(t.c.id)
        .where(t.c.status == N.PENDING, or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now))
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(batch_size)
    )
    with engine.begin() as conn:
        chosen: Any = due
        if conn.dialect.name == "postgresql":
            chosen = list(conn.execute(due.with_for_update(skip_locked=True)).scalars())
            if not chosen:
                return []
        rows = conn.execute(
            update(t)
            .where(t.c.id.in_(chosen), t.c.status == N.PENDING)
            .values(status=CLAIMED, next_attempt_at=lease_until)
            .returning(t.c.id, t.c.idempotency_key, t.c.kind, t.c.email, t.c.recipient_name, t.c.context,
                       t.c.program_id, t.c.created_at, t.c.attempts, t.c.next_attempt_at)
        ).all()
    claimed = [
        ClaimedNotice(r.id, r.idempotency_key, r.kind, r.email, r.recipient_name, dict(r.context or {}),
                 r.program_id, r.created_at, r.attempts, r.next_attempt_at)
        for r in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


def _program_names(engine: Engine, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    program = SQLModel.metadata.tables["program"]
    with engine.connect() as conn:
        return {r.id: r.name for r in conn.execute(select(program.c.id, program.c.name)
                                                   .where(program.c.id.in_(wanted)))}


def render_context(row: ClaimedNotice | Notice, program_names: Mapping[int, str]) -> dict[str, Any]:
    """The stored context plus what every template gets; stored values win.

    `today` is the day the notice was written, not the day it is sent, so a letter resent after an
    outage carries its original date (as a re-sent paper letter would).
    """
    ctx = dict(row.context or {})
    ctx.setdefault("recipient_name", row.recipient_name)
    ctx.setdefault("today", local_date(row.created_at).isoformat())
    if "program_name" not in ctx:
        ctx["program_name"] = program_names.get(row.program_id, "") if row.program_id is not None else ""
    return ctx


def _prepare(
    rows: Sequence[ClaimedNotice], sender: str, program_names: Mapping[int, str], when: datetime
) -> tuple[list[OutgoingMessage], dict[int, SendOutcome], dict[int, str], dict[int, str]]:
    """Messages to send, failures found before sending, and each notice's subject and Message-ID."""
    envelope_from = parseaddr(sender)[1] or sender
    domain = sender_domain(sender)
    messages: list[OutgoingMessage] = []
    failed: dict[int, SendOutcome] = {}
    subjects: dict[int, str] = {}
    message_ids: dict[int, str] = {}
    for row in rows:
        mid = message_id_for(row.id, row.key, domain)
        message_ids[row.id] = mid
        if not row.email:
            failed[row.id] = SendOutcome(row.id, Delivery.PERMANENT, "no e-mail address")
            continue
        try:
            rendered = render_notice(row.kind, render_context(row, program_names))
            data = build_message({"email": row.email, "recipient_name": row.recipient_name}, rendered,
                                 sender, mid, when=when)
        except (TemplateError, ValueError, TypeError, LookupError) as exc:
            failed[row.id] = SendOutcome(row.id, Delivery.PERMANENT, f"render: {type(exc).__name__}: {exc}")
            continue
        subjects[row.id] = rendered.subject[:300]
        messages.append(OutgoingMessage(row.id, envelope_from, row.email.strip(), data, mid))
    return messages, failed, subjects, message_ids


def _record(
    engine: Engine,
    rows: Sequence[ClaimedNotice],
    outcomes: Mapping[int, SendOutcome],
    subjects: Mapping[int, str],
    message_ids: Mapping[int, str],
    *,
    clock: Clock,
    max_attempts: int,
    retry_base: timedelta,
    retry_cap: timedelta,
) -> SendReport:
    """Every outcome of a chunk in one transaction, each guarded by the lease this sender holds."""
    t = _notice_table()
    now = clock.now()
    owned = and_(t.c.id == bindparam("b_id"), t.c.status == N.SENDING, t.c.next_attempt_at == bindparam("b_lease"))
    mark_sent = update(t).where(owned).values(
        status=SENT, sent_at=now, attempts=bindparam("b_attempts"), message_id=bindparam("b_mid"),
        subject=bindparam("b_subject"), last_error=None, next_attempt_at=None,
    )
    mark_retry = update(t).where(owned).values(
        status=RETRY, attempts=bindparam("b_attempts"), message_id=bindparam("b_mid"),
        next_attempt_at=bindparam("b_next"), last_error=bindparam("b_error"),
    )
    mark_dead = update(t).where(owned).values(
        status=DEAD, attempts=bindparam("b_attempts"), message_id=bindparam("b_mid"),
        next_attempt_at=None, last_error=bindparam("b_error"),
    )
    sent: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for row in rows:
        outcome = outcomes[row.id]
        attempts = row.attempts + 1
        base = {"b_id": row.id, "b_lease": row.lease, "b_attempts": attempts, "b_mid": message_ids[row.id]}
        error = (outcome.detail or outcome.delivery.value)[:1000]
        if outcome.delivery is Delivery.SENT:
            sent.append({**base, "b_subject": subjects.get(row.id)})
        elif outcome.delivery is Delivery.TEMPORARY and attempts < max_attempts:
            wait = backoff(attempts, base=retry_base, cap=retry_cap)
            retry.append({**base, "b_next": now + wait, "b_error": error})
        else:
            if outcome.delivery is Delivery.TEMPORARY:
                error = f"gave up after {attempts} attempts: {error}"[:1000]
            dead.append({**base, "b_error": error})
    report = SendReport()
    with engine.begin() as conn:
        if sent:
            report.sent = conn.execute(mark_sent, sent).rowcount
        if retry:
            report.retried = conn.execute(mark_retry, retry).rowcount
        if dead:
            report.dead = conn.execute(mark_dead, dead).rowcount
    report.skipped = len(rows) - report.sent - report.retried - report.dead
    if report.skipped:
        log.warning("outbox: %d notices were taken over by another sender before they were marked", report.skipped)
    return report


@dataclass(frozen=True)
class _Policy:
    batch_size: int
    max_attempts: int
    lease: timedelta
    retry_base: timedelta
    retry_cap: timedelta


async def _send_chunk(engine: Engine, mailer: Mailer, clock: Clock, policy: _Policy) -> tuple[SendReport, int]:
    """Reclaim lost leases, then claim, render, send and record one chunk; returns the report and rows claimed."""
    report = SendReport()
    report.reclaimed, report.dead = reclaim_expired(engine, clock=clock, max_attempts=policy.max_attempts)
    rows = claim(engine, clock=clock, batch_size=policy.batch_size, lease=policy.lease)
    if not rows:
        return report, 0
    names = _program_names(engine, (r.program_id for r in rows if "program_name" not in r.context))
    messages, outcomes, subjects, message_ids = _prepare(rows, mailer.sender, names, clock.now())
    # An exception here is treated like a crash: the chunk stays `sending` until its lease expires.
    for outcome in await mailer.send_many(messages):
        outcomes[outcome.ref] = outcome
    chunk = _record(engine, rows, outcomes, subjects, message_ids, clock=clock, max_attempts=policy.max_attempts,
                    retry_base=policy.retry_base, retry_cap=policy.retry_cap)
    chunk.reclaimed, chunk.dead = report.reclaimed, chunk.dead + report.dead
    return chunk, len(rows)


async def send_pending_async(
    engine: Engine,
    mailer: Mailer,
    *,
    clock: Clock,
    batch_size: int = 500,
    max_attempts: int = 6,
    lease: timedelta = LEASE,
    retry_base: timedelta = RETRY_BASE,
    retry_cap: timedelta = RETRY_CAP,
) -> SendReport:
    """`send_pending` for callers already inside an event loop; leaves the mailer's connections open."""
    policy = _Policy(batch_size, max_attempts, lease, retry_base, retry_cap)
    total = SendReport()
    while True:
        chunk, claimed = await _send_chunk(engine, mailer, clock, policy)
        total.sent += chunk.sent
        total.retried += chunk.retried
        total.dead += chunk.dead
        total.skipped += chunk.skipped
        total.reclaimed += chunk.reclaimed
        if not claimed:
            return total


def _run(coro_factory: Callable[[], Coroutine[Any, Any, SendReport]], mailer: Mailer) -> SendReport:
    """Run on a fresh event loop and close the mailer's connections with it.

    Runs in a thread of its own when called from inside a running loop (an async Prefect task), since
    a loop cannot be nested.
    """

    async def run() -> SendReport:
        try:
            return await coro_factory()
        finally:
            await mailer.aclose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-notices") as pool:
        return pool.submit(asyncio.run, run()).result()


def send_pending(
    engine: Engine,
    mailer: Mailer,
    *,
    clock: Clock,
    batch_size: int = 500,
    max_attempts: int = 6,
    lease: timedelta = LEASE,
    retry_base: timedelta = RETRY_BASE,
    retry_cap: timedelta = RETRY_CAP,
) -> SendReport:
    """Send every due notice, chunk by chunk, over one event loop so pooled connections are reused."""
    return _run(lambda: send_pending_async(engine, mailer, clock=clock, batch_size=batch_size,
                                           max_attempts=max_attempts, lease=lease, retry_base=retry_base,
                                           retry_cap=retry_cap), mailer)


def send_chunk(
    engine: Engine,
    mailer: Mailer,
    *,
    clock: Clock,
    batch_size: int = 500,
    max_attempts: int = 6,
    lease: timedelta = LEASE,
    retry_base: timedelta = RETRY_BASE,
    retry_cap: timedelta = RETRY_CAP,
) -> SendReport:
    """At most one chunk, for a flow that makes each chunk its own task run (and its own retry unit).

    Call it until it reports nothing attempted; each call opens and closes its own connections
    (a handful per 500 messages, negligible next to sending them).
    """
    policy = _Policy(batch_size, max_attempts, lease, retry_base, retry_cap)

    async def one() -> SendReport:
        return (await _send_chunk(engine, mailer, clock, policy))[0]

    return _run(one, mailer)


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
    t = _notice_table()
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
    "LEASE",
    "RETRY_BASE",
    "RETRY_CAP",
    "ClaimedNotice",
    "SendReport",
    "backoff",
    "claim",
    "list_no_address",
    "reclaim_expired",
    "render_context",
    "resend",
    "send_chunk",
    "send_pending",
    "send_pending_async",
]
