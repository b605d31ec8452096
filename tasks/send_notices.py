"""Sending the outbox: claim due notices in chunks, render, deliver, record each outcome.

Delivery guarantee. A notice is claimed (`pending` → `sending`, with a lease) and committed *before*
it goes to SMTP, and marked `sent` in a second transaction *after* the server accepted it. A crash
between the two leaves it in `sending`; once its lease expires the next run puts it back to `pending`
and sends it again with the **same Message-ID** (derived from the notice's id and idempotency key).
So delivery is at-least-once at the SMTP level — at most the two chunks last handed to SMTP can arrive
twice (the one in flight and the one delivered just before it, whose record was under way; 1,000
messages at the default chunk size), and a duplicate carries the same Message-ID, so it is recognisably the same letter (many mail systems fold it
into one) — while the outbox records every notice exactly once (`idempotency_key` is unique; the
`sent` mark is guarded by the lease, so a sender that lost its lease cannot overwrite the outcome of
the one that took over).

While a notice is `sending`, `next_attempt_at` holds its lease expiry: the table needs no extra
column, and the lease value doubles as the token that proves a sender still owns the row.

Throughput (issue #6: 100,000 reminders at ≥ 2,000 messages/s). Chunks are pipelined — the next is
claimed and rendered while the current one is on the wire, and a chunk's outcomes are recorded while
the next one is — and they are marked with one UPDATE per outcome and up to a thousand rows, not one
statement per notice. At most two chunks are claimed and unrecorded at any moment: the one in flight
and either the one being prepared, which has not been sent and goes back to the queue if sending fails
(or if its lease cannot be restarted), or the one just delivered, being recorded. The price of
recording off the critical path is the second chunk in the at-least-once bound above.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any, TypeVar

from jinja2 import TemplateError
from sqlalchemy import Engine, Integer, String, Table, and_, bindparam, or_, select, update
from sqlmodel import Session, SQLModel, col

from models.clock import Clock, FixedClock, SystemClock, local_date
from models.outbox import Notice
from models.states import NoticeStatus, Role
from models.transitions import NOTICE, AuditRecord
from notifications.render import build_message, message_id_for, render_notice, sender_domain
from notifications.smtp import Delivery, Mailer, OutgoingMessage, SendOutcome
from notifications.smtp import run as run_loop
from tasks.store import chunked, json_rows, write_audit

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        .limit(batch_size)
    )
    with engine.begin() as conn:
        chosen: Any = due.order_by(t.c.next_attempt_at, t.c.id)
        if conn.dialect.name == "postgresql":
            # Ordered by next_attempt_at alone, which ix_notice_status_next holds in order: the scan stops
            # after `batch_size` rows. With the id as tie-breaker PostgreSQL read and sorted every pending
            # row for each chunk (10 ms a chunk with 20,000 due, quadratic in the queue's length).
            # (SQLite keeps the id: its index carries the rowid after next_attempt_at.)
            chosen = list(conn.execute(due.order_by(t.c.next_attempt_at).with_for_update(skip_locked=True)).scalars())
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


@dataclass
class _Chunk:
    """One claimed chunk on its way: its rows, their messages, and the outcomes known so far."""

    rows: list[ClaimedNotice]
    lease: datetime | None  # the claim's lease, shared by every row: the proof of ownership when marking
    messages: list[OutgoingMessage] = field(default_factory=list)
    outcomes: dict[int, SendOutcome] = field(default_factory=dict)  # render failures, then the mailer's
    subjects: dict[int, str] = field(default_factory=dict)
    message_ids: dict[int, str] = field(default_factory=dict)
    reclaimed: int = 0
    dead: int = 0  # reclaimed rows out of attempts


async def _prepare(chunk: _Chunk, sender: str, program_names: Mapping[int, str], when: datetime) -> None:
    """Render and build the chunk's messages; a notice that cannot be rendered is a permanent failure.

    Yields to the event loop before every row: while this chunk is prepared, the previous one is being
    sent from the same loop (see send_pending_async), and each yield lets its connections send their
    next command. A reminder takes ~85 µs to render and build. Yielding every 32 rows instead (~3 ms)
    left the 16 connections, and the receiving server, waiting: 1,650-1,850 messages/s end to end at
    30,000 (SQLite) against ~2,320 yielding every row (every 2: 2,210-2,370; every 8: 1,830-2,140; the
    same run's SMTP leg alone, with no rendering: 2,400-2,700).
    """
    envelope_from = parseaddr(sender)[1] or sender
    domain = sender_domain(sender)
    for row in chunk.rows:
        await asyncio.sleep(0)
        mid = message_id_for(row.id, row.key, domain)
        chunk.message_ids[row.id] = mid
        if not row.email:
            chunk.outcomes[row.id] = SendOutcome(row.id, Delivery.PERMANENT, "no e-mail address")
            continue
        try:
            rendered = render_notice(row.kind, render_context(row, program_names))
            data = build_message({"email": row.email, "recipient_name": row.recipient_name}, rendered,
                                 sender, mid, when=when)
        except (TemplateError, ValueError, TypeError, LookupError) as exc:
            chunk.outcomes[row.id] = SendOutcome(row.id, Delivery.PERMANENT, f"render: {type(exc).__name__}: {exc}")
            continue
        chunk.subjects[row.id] = rendered.subject[:300]
        chunk.messages.append(OutgoingMessage(row.id, envelope_from, row.email.strip(), data, mid))


def _owned(t: Table, ids: Sequence[int], lease: datetime | None) -> Any:
    return and_(t.c.id.in_(ids), t.c.status == N.SENDING, t.c.next_attempt_at == lease)


def _renew_lease(engine: Engine, chunk: _Chunk, *, clock: Clock, lease: timedelta) -> None:
    """Restart the chunk's lease as it goes to the mailer if half of it is gone; drop rows it lost meanwhile.

    A chunk is claimed while the previous one is still being sent, so without this its lease would
    run down for two chunks' sending time instead of one (with a provider's rate limit, long enough
    for another sender to take the rows over and send them twice). At full speed a chunk waits a
    fraction of a second, and the UPDATE of every row is skipped.
    """
    now = clock.now()
    if chunk.lease is not None and now + lease / 2 < chunk.lease:
        return
    t = _notice_table()
    renewed = now + lease
    kept: set[int] = set()
    with engine.begin() as conn:
        for ids in chunked([r.id for r in chunk.rows]):
            kept.update(conn.execute(update(t).where(_owned(t, ids, chunk.lease)).values(next_attempt_at=renewed)
                                     .returning(t.c.id)).scalars())
    if len(kept) < len(chunk.rows):
        log.warning("outbox: %d claimed notices were taken over before sending", len(chunk.rows) - len(kept))
        chunk.messages = [m for m in chunk.messages if m.ref in kept]
    chunk.lease = renewed


def _release(engine: Engine, chunk: _Chunk, *, clock: Clock) -> None:
    """Hand a claimed chunk that never reached the mailer back to the queue, its attempt not counted."""
    t = _notice_table()
    with engine.begin() as conn:
        for ids in chunked([r.id for r in chunk.rows]):
            conn.execute(update(t).where(_owned(t, ids, chunk.lease)).values(status=RETRY, next_attempt_at=clock.now()))


def _record(
    engine: Engine,
    chunk: _Chunk,
    *,
    clock: Clock,
    max_attempts: int,
    retry_base: timedelta,
    retry_cap: timedelta,
) -> SendReport:
    """Every outcome of a chunk in one transaction, guarded by the lease this sender holds.

    One UPDATE per outcome and up to a thousand rows, not one per notice: the per-row values
    (Message-ID, subject, error) come as one JSON parameter read as a table (tasks.store.json_rows).
    On PostgreSQL an executemany of per-row UPDATEs cost ~160 µs a notice here, more than rendering
    one. The table is a MATERIALIZED CTE because SQLite otherwise drives the join from the notice
    index and re-reads the JSON once per row (12 s for 10,000 notices); a VALUES list instead cost
    SQLAlchemy ~140 µs a row to compile.
    """
    t = _notice_table()
    now = clock.now()
    sent: list[tuple[int, str, str | None]] = []
    retry: dict[int, list[tuple[int, str, str | None]]] = defaultdict(list)  # by attempts: one backoff each
    dead: list[tuple[int, str, str | None]] = []
    for row in chunk.rows:
        outcome = chunk.outcomes.get(row.id)
        if outcome is None:  # dropped before sending: its lease was lost (see _renew_lease)
            continue
        attempts = row.attempts + 1
        mid = chunk.message_ids[row.id]
        error = (outcome.detail or outcome.delivery.value)[:1000]
        if outcome.delivery is Delivery.SENT:
            sent.append((row.id, mid, chunk.subjects.get(row.id)))
        elif outcome.delivery is Delivery.TEMPORARY and attempts < max_attempts:
            retry[attempts].append((row.id, mid, error))
        else:
            if outcome.delivery is Delivery.TEMPORARY:
                error = f"gave up after {attempts} attempts: {error}"[:1000]
            dead.append((row.id, mid, error))
    report = SendReport()
    owned = and_(t.c.status == N.SENDING, t.c.next_attempt_at == chunk.lease)
    after = t.c.attempts + 1  # = the claimed row's attempts + 1: the lease guard proves nobody changed it
    with Session(engine) as session, session.begin():
        report.sent = _update_each(session, sent, owned, "subject", status=SENT, sent_at=now, attempts=after,
                                   last_error=None, next_attempt_at=None)
        for attempts, failed in retry.items():
            at = now + backoff(attempts, base=retry_base, cap=retry_cap)
            report.retried += _update_each(session, failed, owned, "last_error", status=RETRY, attempts=after,
                                           next_attempt_at=at)
        report.dead = _update_each(session, dead, owned, "last_error", status=DEAD, attempts=after,
                                   next_attempt_at=None)
    report.skipped = len(chunk.rows) - report.sent - report.retried - report.dead
    if report.skipped:
        log.warning("outbox: %d notices were taken over by another sender before they were marked", report.skipped)
    return report


_RECORD_SLICE = 1000
_OUTCOME_COLUMNS = (("id", Integer()), ("mid", String()), ("text", String()))


def _update_each(session: Session, rows: Sequence[tuple[int, str, str | None]], guard: Any, text_column: str,
                 **values: Any) -> int:
    """Set `values` on the rows (id, Message-ID, text) still guarded, with each row's Message-ID and text
    (its subject or its error) in `text_column`; returns how many rows it changed."""
    t = _notice_table()
    count = 0
    for start in range(0, len(rows), _RECORD_SLICE):
        part = json_rows(session, "outcome_rows", _OUTCOME_COLUMNS, rows[start : start + _RECORD_SLICE])
        v = select(part).cte("outcomes").prefix_with("MATERIALIZED")
        stmt = (update(t).where(t.c.id == v.c.id, guard)
                .values(**values, message_id=v.c.mid, **{text_column: v.c.text}).add_cte(v).returning(t.c.id))
        # Counted from RETURNING: Python's sqlite3 reports no rowcount for a statement opening with WITH.
        count += len(session.connection().execute(stmt).all())
    return count


@dataclass(frozen=True)
class _Policy:
    batch_size: int
    max_attempts: int
    lease: timedelta
    retry_base: timedelta
    retry_cap: timedelta


def _claim_rows(engine: Engine, clock: Clock, policy: _Policy) -> tuple[_Chunk, dict[int, str], datetime]:
    # One reading of the clock for the whole step (the installation's clock is a database read).
    now = clock.now()
    at = FixedClock(now)
    reclaimed, dead = reclaim_expired(engine, clock=at, max_attempts=policy.max_attempts)
    rows = claim(engine, clock=at, batch_size=policy.batch_size, lease=policy.lease)
    chunk = _Chunk(rows, rows[0].lease if rows else None, reclaimed=reclaimed, dead=dead)
    names = _program_names(engine, (r.program_id for r in rows if "program_name" not in r.context)) if rows else {}
    return chunk, names, now


async def _claim_chunk(engine: Engine, sender: str, clock: Clock, policy: _Policy) -> _Chunk:
    """Reclaim lost leases, claim a chunk and prepare its messages (an empty chunk: nothing was due)."""
    chunk, names, now = await _off_loop(engine, _claim_rows, engine, clock, policy)
    if chunk.rows:
        await _prepare(chunk, sender, names, now)
    return chunk


async def _off_loop(engine: Engine, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread, so the loop keeps the SMTP connections busy while the database
    works: claiming 500 rows on PostgreSQL is a ~15 ms UPDATE, during which the loop used to stand still
    (+15 % messages/s at 20,000 with the claim moved off it); recording a chunk's outcomes is another
    ~13 ms (at 30,000 on PostgreSQL: 0.84 s of 10.8 with every connection idle, when it ran on the loop).

    Inline for an in-memory SQLite database, which exists only on the connection of the thread that
    made it. The loop turns once first, so a chunk just handed to the mailer starts before the
    database work competes with it.
    """
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return fn(*args)
    await asyncio.sleep(0)
    return await asyncio.to_thread(fn, *args)


async def _deliver(mailer: Mailer, chunk: _Chunk) -> _Chunk:
    # An exception here is treated like a crash: the chunk stays `sending` until its lease expires.
    for outcome in await mailer.send_many(chunk.messages):
        chunk.outcomes[outcome.ref] = outcome
    return chunk


def _settle(engine: Engine, chunk: _Chunk, clock: Clock, policy: _Policy) -> SendReport:
    report = _record(engine, chunk, clock=clock, max_attempts=policy.max_attempts, retry_base=policy.retry_base,
                     retry_cap=policy.retry_cap) if chunk.rows else SendReport()
    report.reclaimed, report.dead = chunk.reclaimed, report.dead + chunk.dead
    return report


def _add(total: SendReport, part: SendReport) -> None:
    total.sent += part.sent
    total.retried += part.retried
    total.dead += part.dead
    total.skipped += part.skipped
    total.reclaimed += part.reclaimed


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
    """`send_pending` for callers already inside an event loop; leaves the mailer's connections open.

    Pipelined: while one chunk is on the wire, the next is claimed and rendered on the same loop, so
    the SMTP connections never wait for Jinja, nor Jinja for the SMTP server; as soon as a chunk is
    delivered the next one goes out, and the delivered one is recorded meanwhile. At most two chunks
    are claimed and unrecorded at a time: the one being sent (its lease restarted as it goes out, if
    half of it is gone) and the one being prepared or recorded; if sending fails, a prepared one goes
    back to the queue unattempted.
    """
    policy = _Policy(batch_size, max_attempts, lease, retry_base, retry_cap)
    total = SendReport()
    sending: asyncio.Task[_Chunk] | None = None
    delivered: _Chunk | None = None  # sent and not yet recorded; the `finally` records it if the loop could not
    try:
        while True:
            chunk = await _claim_chunk(engine, mailer.sender, clock, policy)
            if sending is not None:
                task, sending = sending, None
                try:
                    delivered = await task
                except BaseException:
                    if chunk.rows:
                        _release(engine, chunk, clock=clock)
                    raise
            if chunk.rows:
                try:
                    _renew_lease(engine, chunk, clock=clock, lease=policy.lease)
                except BaseException:
                    _release(engine, chunk, clock=clock)
                    raise
                sending = asyncio.ensure_future(_deliver(mailer, chunk))
            if delivered is not None:
                # Recorded while the next chunk is on the wire: on the loop, the UPDATEs left every
                # connection idle (on PostgreSQL ~8 % of the sending time at 30,000).
                _add(total, await _off_loop(engine, _settle, engine, delivered, clock, policy))
                delivered = None
            if not chunk.rows:
                _add(total, _settle(engine, chunk, clock, policy))
                return total
    finally:
        # Whatever stopped the loop (a database error, a cancellation), what was delivered is still recorded.
        # A second attempt at a record that did commit changes nothing: the lease no longer matches.
        try:
            if delivered is not None:
                _add(total, _settle(engine, delivered, clock, policy))
        finally:
            if sending is not None:
                _add(total, _settle(engine, await sending, clock, policy))


def _run(coro_factory: Callable[[], Coroutine[Any, Any, SendReport]], mailer: Mailer) -> SendReport:
    """Run on a fresh event loop (uvloop's when installed) and close the mailer's connections with it.

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
        return run_loop(run())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="send-notices") as pool:
        return pool.submit(run_loop, run()).result()


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
        chunk = await _claim_chunk(engine, mailer.sender, clock, policy)
        if chunk.rows:
            await _deliver(mailer, chunk)
        return _settle(engine, chunk, clock, policy)

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
