"""Sending the outbox: claim due notices in chunks, render, deliver, record each outcome.

The delivery guarantee (at-least-once over SMTP, each notice recorded exactly once) and the lease that
proves a sender still owns a row are tasks/outbox/leases.py's; this module drives them as a pipeline.

Throughput (issue #6: 100,000 reminders at ≥ 2,000 messages/s). Chunks are pipelined — the next is
claimed and rendered while the current one is on the wire, and a chunk's outcomes are recorded while
the next one is — and they are marked with one UPDATE per outcome and up to a thousand rows, not one
statement per notice. At most two chunks are claimed and unrecorded at any moment: the one in flight
and either the one being prepared, which has not been sent and goes back to the queue if sending fails
(or if its lease cannot be restarted), or the one just delivered, being recorded. The price of
recording off the critical path is the second chunk in the at-least-once bound (tasks/outbox/leases.py).
Notices a lost sender may have delivered go out first in their chunk, carefully (tasks/outbox/careful.py): one at
a time, each step committed as it happens, so no crash makes one arrive a third time (issue #18).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from typing import Any, TypeVar

from jinja2 import TemplateError
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from models.clock import Clock, FixedClock, local_date
from models.outbox import Notice
from notifications.render import build_message, message_id_for, render_notice, sender_domain
from notifications.smtp import Delivery, Mailer, OutgoingMessage, SendOutcome
from notifications.smtp import run as run_loop
from tasks.outbox.attachments import MissingAttachment, attachment_refs, attachments_of, load_report_files
from tasks.outbox.careful import careful_record
from tasks.outbox.leases import (
    LEASE,
    RETRY_BASE,
    RETRY_CAP,
    Chunk,
    ClaimedNotice,
    SendReport,
    claim,
    reclaim_expired,
    record_outcomes,
    record_sent,
    release,
    renew_lease,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Letterhead:
    """What a program's letters say about their sender: its name, the issuing office, the 文号 pattern, the contact."""

    program_name: str
    office: str = ""
    document_number: str = ""  # the pattern, {year} and {number}
    contact: str = ""
    phone: str = ""

    def context(self, notice_id: int, day: date) -> dict[str, str]:
        number = self.document_number.format(year=day.year, number=notice_id) if self.document_number else ""
        return {"issuer_office": self.office, "document_number": number, "contact_name": self.contact,
                "contact_phone": self.phone}


def program_letterheads(engine: Engine, ids: Iterable[int | None]) -> dict[int, Letterhead]:
    """Each program's letterhead, read from its stored definition's `issuer` (empty fields when it has none)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    program = SQLModel.metadata.tables["program"]
    out = {}
    with engine.connect() as conn:
        for r in conn.execute(select(program.c.id, program.c.name, program.c.definition)
                              .where(program.c.id.in_(wanted))):
            issuer = (r.definition or {}).get("issuer") or {}
            out[int(r.id)] = Letterhead(r.name, str(issuer.get("office", "")), str(issuer.get("document_number", "")),
                                        str(issuer.get("contact", "")), str(issuer.get("phone", "")))
    return out


def render_context(row: ClaimedNotice | Notice, program_names: Mapping[int, str | Letterhead]) -> dict[str, Any]:
    """The stored context plus what every template gets; stored values win.

    `today` is the day the notice was written, not the day it is sent, so a letter resent after an
    outage carries its original date (as a re-sent paper letter would). The letterhead (issuing office,
    文号 numbered by the notice's id, contact person and phone) comes from the program file.

    What the row already says is not stored again (issue #17): the bulk writers leave out the program's
    name (one program's every letter repeats it; it comes from `program_names`) and, in a letter to an
    institution, the institution's name, which is the row's `recipient_name`. Their bytes, JSON-encoded by
    the database for each of 300,000 notices of a 100,000-institution enrollment, were figure 1's to pay.
    A notice written before, with both in its context, renders from its own values as it always did.
    """
    ctx = dict(row.context or {})
    ctx.setdefault("recipient_name", row.recipient_name)
    if row.recipient_type == "institution":
        ctx.setdefault("institution_name", row.recipient_name)
    ctx.setdefault("today", local_date(row.created_at).isoformat())
    head = program_names.get(row.program_id) if row.program_id is not None else None
    if isinstance(head, Letterhead):
        for k, v in head.context(int(row.id or 0), date.fromisoformat(str(ctx["today"])[:10])).items():
            ctx.setdefault(k, v)
    if "program_name" not in ctx:
        ctx["program_name"] = (head.program_name if isinstance(head, Letterhead) else head) or ""
    return ctx


async def _prepare(chunk: Chunk, sender: str, program_names: Mapping[int, Letterhead], when: datetime,
                   files: Mapping[int, tuple[bytes, str]] | None = None) -> None:
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
            attached = attachments_of(row.context, files) if files is not None and "attachments" in row.context else []
            data = build_message({"email": row.email, "recipient_name": row.recipient_name}, rendered,
                                 sender, mid, when=when, attachments=attached)
        except MissingAttachment as exc:
            chunk.outcomes[row.id] = SendOutcome(row.id, Delivery.PERMANENT, f"attachment: {exc}")
            continue
        except (TemplateError, ValueError, TypeError, LookupError) as exc:
            chunk.outcomes[row.id] = SendOutcome(row.id, Delivery.PERMANENT, f"render: {type(exc).__name__}: {exc}")
            continue
        chunk.subjects[row.id] = rendered.subject[:300]
        chunk.messages.append(OutgoingMessage(row.id, envelope_from, row.email.strip(), data, mid))


@dataclass(frozen=True)
class _Policy:
    batch_size: int
    max_attempts: int
    lease: timedelta
    retry_base: timedelta
    retry_cap: timedelta


def _claim_rows(engine: Engine, clock: Clock,
                policy: _Policy) -> tuple[Chunk, dict[int, Letterhead], datetime, dict[int, tuple[bytes, str]] | None]:
    # One reading of the clock for the whole step (the installation's clock is a database read).
    now = clock.now()
    at = FixedClock(now)
    reclaimed, dead, unconfirmed = reclaim_expired(engine, clock=at, max_attempts=policy.max_attempts)
    rows = claim(engine, clock=at, batch_size=policy.batch_size, lease=policy.lease)
    chunk = Chunk(rows, rows[0].lease if rows else None, reclaimed=reclaimed, dead=dead, unconfirmed=unconfirmed)
    names = program_letterheads(engine, (r.program_id for r in rows)) if rows else {}
    # Only a chunk holding a notice with attachments pays for the query (a reminder run never does).
    refs = attachment_refs(r.context for r in rows if "attachments" in r.context)
    return chunk, names, now, load_report_files(engine, refs) if refs else None


async def _claim_chunk(engine: Engine, sender: str, clock: Clock, policy: _Policy) -> Chunk:
    """Reclaim lost leases, claim a chunk and prepare its messages (an empty chunk: nothing was due)."""
    chunk, names, now, files = await _off_loop(engine, _claim_rows, engine, clock, policy)
    if chunk.rows:
        await _prepare(chunk, sender, names, now, files)
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


# How often the accepted messages of a chunk on the wire are recorded (`record_sent`).
PROGRESS_EVERY = 0.02


async def _record_progress(engine: Engine, chunk: Chunk, clock: Clock, accepted: list[int],
                           done: asyncio.Event) -> None:
    """Every `PROGRESS_EVERY` while the chunk is on the wire, record `sent` what the server accepted since."""
    recorded = 0
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), PROGRESS_EVERY)
        if len(accepted) > recorded and not done.is_set():
            refs, recorded = accepted[recorded:], len(accepted)
            await _off_loop(engine, record_sent, engine, chunk, refs, clock)


async def _deliver(mailer: Mailer, chunk: Chunk, engine: Engine, clock: Clock) -> Chunk:
    """Hand the chunk to the mailer: first, carefully, the notices a lost sender may have delivered already,
    then the rest, pipelined (`_deliver_carefully`, `_deliver_rest`)."""
    await _deliver_carefully(mailer, chunk, engine, clock)
    return await _deliver_rest(mailer, chunk, engine, clock)


async def _deliver_carefully(mailer: Mailer, chunk: Chunk, engine: Engine, clock: Clock) -> None:
    """The notices a lost sender may have delivered already, one at a time, each step committed as it happens
    (tasks/outbox/careful.py); nothing when the chunk has none.

    The records run on the loop, on one connection held for the careful part, and the caller runs this while no
    other thread of the sender works (no claim, no record off the loop): a thread holding the GIL when SQLite's
    commit of a resend's mark returns kept the end from going out for milliseconds (up to Python's 5 ms switch
    interval), and a kill there, on the full-size crash test, left a notice marked and never delivered.
    """
    # An exception here is treated like a crash: the chunk stays `sending` until its lease expires.
    for ref in _resent_already(chunk):
        chunk.outcomes[ref] = SendOutcome(ref, Delivery.TEMPORARY, "a careful resend of it had gone out before",
                                          maybe_delivered=True)
    again = _careful_refs(chunk)
    first = [m for m in chunk.messages if m.ref in again and m.ref not in chunk.outcomes]
    if first:
        with careful_record(engine, chunk, clock.now()) as record:
            for outcome in await mailer.send_many(first, careful=record):
                chunk.outcomes[outcome.ref] = outcome


def _careful_refs(chunk: Chunk) -> set[int]:
    """The notices of the chunk a lost sender may have delivered (or resent) already: none goes out pipelined."""
    return {r.id for r in chunk.rows if r.maybe_delivered or r.second_copy_out}


def _resent_already(chunk: Chunk) -> list[int]:
    """Claimed with their careful resend's mark set: a copy may have arrived twice already, so they are not handed
    over, and `record_outcomes` settles them `sent`, not confirmed. `leases.reclaim_expired` no longer puts such a
    row back (session 12); this stands guard for any other way one might come back to `pending`."""
    return [r.id for r in chunk.rows if r.second_copy_out]


async def _deliver_rest(mailer: Mailer, chunk: Chunk, engine: Engine, clock: Clock) -> Chunk:
    """The chunk's first deliveries, pipelined, its accepted messages recorded every `PROGRESS_EVERY` while the
    rest is on the wire."""
    again = _careful_refs(chunk)
    rest = [m for m in chunk.messages if m.ref not in again] if again else chunk.messages
    if rest:
        accepted: list[int] = []
        done = asyncio.Event()
        recorder = asyncio.ensure_future(_record_progress(engine, chunk, clock, accepted, done))
        try:
            outcomes = await mailer.send_many(rest, on_accepted=accepted.append)
        finally:
            done.set()
            await recorder  # settled only after its last progress record, so the two never overlap
        for outcome in outcomes:
            chunk.outcomes[outcome.ref] = outcome
    return chunk


def _settle(engine: Engine, chunk: Chunk, clock: Clock, policy: _Policy) -> SendReport:
    report = record_outcomes(engine, chunk, clock=clock, max_attempts=policy.max_attempts,
                             retry_base=policy.retry_base, retry_cap=policy.retry_cap) if chunk.rows else SendReport()
    report.reclaimed, report.dead = chunk.reclaimed, report.dead + chunk.dead
    report.unconfirmed += chunk.unconfirmed
    return report


def _add(total: SendReport, part: SendReport) -> None:
    total.sent += part.sent
    total.retried += part.retried
    total.dead += part.dead
    total.skipped += part.skipped
    total.reclaimed += part.reclaimed
    total.unconfirmed += part.unconfirmed


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
    sending: asyncio.Task[Chunk] | None = None
    delivered: Chunk | None = None  # sent and not yet recorded; the `finally` records it if the loop could not
    try:
        while True:
            chunk = await _claim_chunk(engine, mailer.sender, clock, policy)
            try:
                if sending is not None:
                    task, sending = sending, None
                    delivered = await task
                if chunk.rows:
                    renew_lease(engine, chunk, clock=clock, lease=policy.lease)
            except BaseException:  # the prepared chunk never reaches the mailer: back to the queue
                if chunk.rows:
                    release(engine, chunk, clock=clock)
                raise
            if chunk.rows:
                # Alone: the previous chunk is delivered and not yet being recorded, the next not yet claimed.
                await _deliver_carefully(mailer, chunk, engine, clock)
                sending = asyncio.ensure_future(_deliver_rest(mailer, chunk, engine, clock))
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
            renew_lease(engine, chunk, clock=clock, lease=policy.lease)  # handed over: counted and marked
            await _deliver(mailer, chunk, engine, clock)
        return _settle(engine, chunk, clock, policy)

    return _run(one, mailer)


__all__ = [
    "render_context",
    "send_chunk",
    "send_pending",
    "send_pending_async",
]
