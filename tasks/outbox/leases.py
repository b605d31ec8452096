"""The outbox's row-level protocol: claiming notices under a lease, giving them back, recording outcomes.

Delivery guarantee. A notice is claimed (`pending` → `sending`, with a lease) and committed *before*
it goes to SMTP, and marked `sent` in a second transaction *after* the server accepted it. A crash
between the two leaves it in `sending`; once its lease expires the next run puts it back to `pending`
and sends it again with the **same Message-ID** (derived from the notice's id and idempotency key).
So a crash can make a notice arrive twice — at most the two chunks last handed to SMTP (the one in
flight and the one delivered just before it, whose record was under way; 1,000 messages at the default
chunk size), and a duplicate carries the same Message-ID, so it is recognisably the same letter (many
mail systems fold it into one) — while the outbox records every notice exactly once (`idempotency_key`
is unique; the `sent` mark is guarded by the lease, so a sender that lost its lease cannot overwrite the
outcome of the one that took over).

**At most twice.** As a chunk goes to the mailer its rows are marked `maybe_delivered` and their attempt
counted (`renew_lease`, one UPDATE a chunk), so a notice put back after a lost lease carries the mark if the
lost sender had handed it over; so does a first delivery the server did not answer after its end (a timeout,
a dropped connection: SendOutcome.maybe_delivered), which is never resent within the attempt. Such a notice
is resent *carefully* (tasks/outbox/careful.py): one message per SMTP transaction on one connection, its
attempt, its end going out (`second_copy_out`) and its acceptance each committed as they happen. A notice
whose careful resend went out and whose acceptance is not recorded is settled `sent`, not confirmed
(`UNCONFIRMED`, counted in SendReport.unconfirmed), and never handed over again: one first delivery, at
most one careful one. Nothing is recorded `sent` before the server has accepted it, except such an
unconfirmed resend, whose end had left (careful.py's docstring names the microseconds where that is not
so). A record and commit per step is affordable only because only crash leftovers go this way: at most the
two chunks a lost sender had handed over and not recorded, per crash; a chunk's accepted messages are
recorded while the rest is on the wire (`record_sent`), which keeps the first copies unrecorded by a crash
few. Issue #18: with the resend pipelined like a first delivery, a second crash could catch a whole chunk
delivered and unrecorded again (four copies with three kills at the same moment of the pipeline); with the
careful resend recorded only after its 250, a kill between the two gave a third copy (1 notice of 2,000 in
about 1 CI-sized run of 6; tests/test_crash.py).

While a notice is `sending`, `next_attempt_at` holds its lease expiry: the table needs no extra
column, and the lease value doubles as the token that proves a sender still owns the row.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Integer, String, Table, and_, case, or_, select, update
from sqlmodel import Session

from core.bulk import chunked, json_rows, table_of
from models.clock import Clock
from models.outbox import Notice
from models.states import NoticeStatus
from models.transitions import NOTICE
from notifications.smtp import Delivery, OutgoingMessage, SendOutcome

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
    # Settled `sent` without the server's acceptance: a careful resend went out and no answer was recorded (a
    # copy may have arrived twice; never handed over a third time). Not counted in `sent`.
    unconfirmed: int = 0

    @property
    def attempted(self) -> int:
        """Claimed rows this run settled or lost; 0 means nothing was due (a chunk loop can stop)."""
        return self.sent + self.retried + self.dead + self.skipped + self.unconfirmed


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
    recipient_type: str  # "institution": a bulk letter's institution_name is this row's recipient_name
    maybe_delivered: bool = False  # a lost sender may have delivered it: resend carefully
    second_copy_out: bool = False  # its careful resend went out already: never handed over again (settled unconfirmed)


@dataclass
class Chunk:
    """One claimed chunk on its way: its rows, their messages, and the outcomes known so far."""

    rows: list[ClaimedNotice]
    lease: datetime | None  # the claim's lease, shared by every row: the proof of ownership when marking
    messages: list[OutgoingMessage] = field(default_factory=list)
    outcomes: dict[int, SendOutcome] = field(default_factory=dict)  # render failures, then the mailer's
    subjects: dict[int, str] = field(default_factory=dict)
    message_ids: dict[int, str] = field(default_factory=dict)
    reclaimed: int = 0
    dead: int = 0  # reclaimed rows out of attempts
    unconfirmed: int = 0  # reclaimed rows whose careful resend had gone out: settled, not resent
    recorded: set[int] = field(default_factory=set)  # recorded `sent` before the chunk's end


def backoff(attempts: int, *, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP) -> timedelta:
    """Wait after the `attempts`-th failure: 1, 2, 4, 8 … minutes, capped, so an outage is not hammered."""
    wait: timedelta = base * 2 ** min(max(0, attempts - 1), 30)  # bounded: timedelta overflows past ~2**40 s
    return min(cap, wait)


# The note on a notice settled `sent` without the server's acceptance (SendReport.unconfirmed), shown where
# the outbox is listed; `{why}` says what left it unconfirmed.
UNCONFIRMED = ("未确认送达：{why_zh}；邮件已第二次交给服务器，为免第三份不再自动重发 / not confirmed: {why}; "
               "handed to the server a second time, so it is not sent again (never a third copy)")
LOST_SENDER = {"why_zh": "发送程序在服务器应答前中断", "why": "the sender was lost before the server's answer"}
RESENT_BEFORE = {"why_zh": "此前的重发已交给服务器", "why": "an earlier resend had gone out"}


def reclaim_expired(engine: Engine, *, clock: Clock, max_attempts: int) -> tuple[int, int, int]:
    """Settle rows whose sender died: back to `pending` (or `dead` when out of attempts), or `sent`, not
    confirmed, when their careful resend had gone out; returns (back, dead, unconfirmed).

    The attempt was counted when the chunk was handed to the mailer (`renew_lease`), so a notice that
    crashes its sender every time ends dead instead of looping forever; such a row is `maybe_delivered`
    (the lost sender may have handed it over), and its next delivery is careful (see the module's docstring).
    A row claimed ahead that never reached the mailer goes back as it was. A row whose careful resend had gone
    out (`second_copy_out`) may have arrived twice already: it is never handed over again.

    The put-back and the dead UPDATEs skip marked rows too (session 12, issue #18): on PostgreSQL each statement
    has its own snapshot, and a lost sender's mark may commit while this runs — its COMMIT was on the wire when
    the sender died, the row held by its UPDATE. The first UPDATE's snapshot then saw the row unmarked and passed
    it; the put-back waited for the row, re-read it committed and marked, found it still expired and `sending`,
    and put it back `pending` with the mark set: it was sent again, a third copy. Now such a row stays `sending`
    and expired, and the next reclaim (before the next claim) settles it unconfirmed.
    """
    t = table_of(Notice)
    now = clock.now()
    expired = and_(t.c.status == N.SENDING, t.c.next_attempt_at <= now)
    unmarked = t.c.second_copy_out.is_not(True)
    with engine.begin() as conn:
        unconfirmed = conn.execute(
            update(t)
            .where(expired, t.c.second_copy_out)
            .values(status=SENT, sent_at=now, next_attempt_at=None, last_error=UNCONFIRMED.format(**LOST_SENDER))
        ).rowcount
        dead = conn.execute(
            update(t)
            .where(expired, unmarked, t.c.attempts >= max_attempts)
            .values(status=DEAD, next_attempt_at=None,
                    last_error="sender lost while sending (lease expired); out of attempts")
        ).rowcount
        back = conn.execute(
            update(t)
            .where(expired, unmarked)
            .values(status=RETRY, next_attempt_at=now,
                    last_error="sender lost while sending (lease expired); resending")
        ).rowcount
    if back or dead or unconfirmed:
        log.warning("outbox: %d notices reclaimed after a lost sender, %d of them dead, %d sent unconfirmed",
                    back + dead + unconfirmed, dead, unconfirmed)
    return back, dead, unconfirmed


def claim(engine: Engine, *, clock: Clock, batch_size: int, lease: timedelta = LEASE) -> list[ClaimedNotice]:
    """Take up to `batch_size` due notices for this sender and commit, before any of them is sent.

    PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`, then UPDATE those ids, so concurrent senders take
    disjoint chunks without waiting. (Not one `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
    LOCKED)`: PostgreSQL re-runs such a subquery as rows change and claims far more than n — seen in
    the tests here.) SQLite: that single statement is right, as SQLite evaluates the subquery once under
    its one write lock; `status = 'pending'` is re-checked by the UPDATE either way, so a row is never
    claimed twice.
    """
    t = table_of(Notice)
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
                       t.c.program_id, t.c.created_at, t.c.attempts, t.c.next_attempt_at, t.c.recipient_type,
                       t.c.maybe_delivered, t.c.second_copy_out)
        ).all()
    claimed = [
        ClaimedNotice(r.id, r.idempotency_key, r.kind, r.email, r.recipient_name, dict(r.context or {}),
                      r.program_id, r.created_at, r.attempts, r.next_attempt_at, r.recipient_type,
                      bool(r.maybe_delivered), bool(r.second_copy_out))
        for r in rows
    ]
    return sorted(claimed, key=lambda c: c.id)


def _owned(t: Table, ids: Sequence[int], lease: datetime | None) -> Any:
    return and_(t.c.id.in_(ids), t.c.status == N.SENDING, t.c.next_attempt_at == lease)


def renew_lease(engine: Engine, chunk: Chunk, *, clock: Clock, lease: timedelta) -> None:
    """Hand the chunk over, durably, as it goes to the mailer: count the attempt, mark its rows
    `maybe_delivered` (from now on a copy may reach the server) and restart the lease if half of it is
    gone; drop rows it lost meanwhile.

    The mark is what tells a lost sender's rows apart: a chunk claimed ahead (while the previous one was
    on the wire) that never reached the mailer is put back uncounted and unmarked, as `release` does, and
    goes out again as a first delivery; a chunk that was handed over is counted and its rows' next
    delivery is careful. Without it, at 10,000 notices and 20 kills, every reclaimed row took the
    slower careful path and a chunk claimed ahead again and again was counted dead after six kills
    (68 notices) without ever being attempted. One UPDATE of the chunk's rows per chunk, on the way out.
    A row marked already goes out carefully, one at a time, and its attempt is counted as it starts
    (`count_attempt`), not here: a sender killed early in a careful chunk would otherwise count the whole
    chunk an attempt (at 10,000 notices and 20 kills on PostgreSQL two notices ended dead, one never tried).

    The lease: a chunk is claimed while the previous one is still being sent, so without the restart its
    lease would run down for two chunks' sending time instead of one (with a provider's rate limit, long
    enough for another sender to take the rows over and send them twice).
    """
    now = clock.now()
    renewed = now + lease if chunk.lease is None or now + lease / 2 >= chunk.lease else chunk.lease
    t = table_of(Notice)
    kept: set[int] = set()
    with engine.begin() as conn:
        for ids in chunked([r.id for r in chunk.rows]):
            kept.update(conn.execute(update(t).where(_owned(t, ids, chunk.lease))
                                     .values(next_attempt_at=renewed, maybe_delivered=True,
                                             attempts=case((t.c.maybe_delivered, t.c.attempts),
                                                           else_=t.c.attempts + 1))
                                     .returning(t.c.id)).scalars())
    if len(kept) < len(chunk.rows):
        log.warning("outbox: %d claimed notices were taken over before sending", len(chunk.rows) - len(kept))
        chunk.messages = [m for m in chunk.messages if m.ref in kept]
    chunk.lease = renewed


def release(engine: Engine, chunk: Chunk, *, clock: Clock) -> None:
    """Hand a claimed chunk that never reached the mailer back to the queue, its attempt not counted."""
    t = table_of(Notice)
    with engine.begin() as conn:
        for ids in chunked([r.id for r in chunk.rows]):
            conn.execute(update(t).where(_owned(t, ids, chunk.lease)).values(status=RETRY, next_attempt_at=clock.now()))


def record_sent(engine: Engine, chunk: Chunk, refs: Sequence[int], clock: Clock) -> None:
    """Record `sent` the messages of a chunk the server has accepted so far, while the rest is on the wire.

    Shrinks what a crash leaves delivered and unrecorded (to be resent, maybe a second copy) from the
    chunks in flight to the messages accepted since the last such record; `record_outcomes` settles the
    rest. One UPDATE of up to a thousand rows, off the event loop, every `PROGRESS_EVERY`.
    """
    t = table_of(Notice)
    now = clock.now()
    owned = and_(t.c.status == N.SENDING, t.c.next_attempt_at == chunk.lease)
    rows = [(ref, chunk.message_ids[ref], chunk.subjects.get(ref)) for ref in refs]
    with Session(engine) as session, session.begin():
        done = _update_each(session, rows, owned, "subject", status=SENT, sent_at=now, last_error=None,
                            next_attempt_at=None)
    chunk.recorded.update(done)


def record_outcomes(
    engine: Engine,
    chunk: Chunk,
    *,
    clock: Clock,
    max_attempts: int,
    retry_base: timedelta,
    retry_cap: timedelta,
) -> SendReport:
    """Every outcome of a chunk in one transaction, guarded by the lease this sender holds.

    One UPDATE per outcome and up to a thousand rows, not one per notice: the per-row values
    (Message-ID, subject, error) come as one JSON parameter read as a table (core.bulk.json_rows).
    On PostgreSQL an executemany of per-row UPDATEs cost ~160 µs a notice here, more than rendering
    one. The table is a MATERIALIZED CTE because SQLite otherwise drives the join from the notice
    index and re-reads the JSON once per row (12 s for 10,000 notices); a VALUES list instead cost
    SQLAlchemy ~140 µs a row to compile.
    """
    t = table_of(Notice)
    now = clock.now()
    sent: list[tuple[int, str, str | None]] = []
    # By attempts (one backoff each) and whether the server may have accepted it unanswered (then the next
    # delivery is careful, as after a lost sender).
    retry: dict[tuple[int, bool], list[tuple[int, str, str | None]]] = defaultdict(list)
    dead: list[tuple[int, str, str | None]] = []
    unconfirmed: list[tuple[int, str, str | None]] = []
    for row in chunk.rows:
        outcome = chunk.outcomes.get(row.id)
        if outcome is None:  # dropped before sending: its lease was lost (see renew_lease)
            continue
        if row.id in chunk.recorded:  # committed right after the server accepted it
            continue
        attempts = row.attempts + 1
        mid = chunk.message_ids[row.id]
        error = (outcome.detail or outcome.delivery.value)[:1000]
        if outcome.delivery is Delivery.SENT:
            sent.append((row.id, mid, chunk.subjects.get(row.id)))
        elif outcome.maybe_delivered and (row.maybe_delivered or row.second_copy_out):
            # A careful resend's end went out and the server did not answer it: its second copy may have
            # arrived (careful.py committed `second_copy_out` with the end), so it is never handed over again.
            # Or it was claimed with the mark already set (send_notices._resent_already): not handed over at all.
            why = (RESENT_BEFORE if row.second_copy_out else
                   {"why_zh": "服务器未应答重发", "why": f"the server did not answer its resend ({error[:200]})"})
            unconfirmed.append((row.id, mid, UNCONFIRMED.format(**why)[:1000]))
        elif outcome.delivery is Delivery.TEMPORARY and attempts < max_attempts:
            retry[attempts, outcome.maybe_delivered or row.maybe_delivered].append((row.id, mid, error))
        else:
            if outcome.delivery is Delivery.TEMPORARY:
                error = f"gave up after {attempts} attempts: {error}"[:1000]
            dead.append((row.id, mid, error))
    report = SendReport()
    owned = and_(t.c.status == N.SENDING, t.c.next_attempt_at == chunk.lease)
    after = t.c.attempts  # = the claimed row's attempts + 1, counted as it was handed over (renew_lease)
    with Session(engine) as session, session.begin():
        report.sent = len(_update_each(session, sent, owned, "subject", status=SENT, sent_at=now, attempts=after,
                                       last_error=None, next_attempt_at=None))
        for (attempts, maybe), failed in retry.items():
            at = now + backoff(attempts, base=retry_base, cap=retry_cap)
            report.retried += len(_update_each(session, failed, owned, "last_error", status=RETRY, attempts=after,
                                               next_attempt_at=at, maybe_delivered=maybe))
        report.dead = len(_update_each(session, dead, owned, "last_error", status=DEAD, attempts=after,
                                       next_attempt_at=None))
        report.unconfirmed = len(_update_each(session, unconfirmed, owned, "last_error", status=SENT, sent_at=now,
                                              attempts=after, next_attempt_at=None))
    report.sent += len(chunk.recorded)
    report.skipped = len(chunk.rows) - report.sent - report.retried - report.dead - report.unconfirmed
    if report.skipped:
        log.warning("outbox: %d notices were taken over by another sender before they were marked", report.skipped)
    return report


_RECORD_SLICE = 1000
_OUTCOME_COLUMNS = (("id", Integer()), ("mid", String()), ("text", String()))


def _update_each(session: Session, rows: Sequence[tuple[int, str, str | None]], guard: Any, text_column: str,
                 **values: Any) -> set[int]:
    """Set `values` on the rows (id, Message-ID, text) still guarded, with each row's Message-ID and text
    (its subject or its error) in `text_column`; returns the ids of the rows it changed."""
    t = table_of(Notice)
    changed: set[int] = set()
    for start in range(0, len(rows), _RECORD_SLICE):
        part = json_rows(session, "outcome_rows", _OUTCOME_COLUMNS, rows[start : start + _RECORD_SLICE])
        v = select(part).cte("outcomes").prefix_with("MATERIALIZED")
        stmt = (update(t).where(t.c.id == v.c.id, guard)
                .values(**values, message_id=v.c.mid, **{text_column: v.c.text}).add_cte(v).returning(t.c.id))
        # Counted from RETURNING: Python's sqlite3 reports no rowcount for a statement opening with WITH.
        changed.update(int(i) for i in session.connection().execute(stmt).scalars())
    return changed


__all__ = [
    "CLAIMED",
    "DEAD",
    "LEASE",
    "RETRY",
    "RETRY_BASE",
    "RETRY_CAP",
    "SENT",
    "UNCONFIRMED",
    "Chunk",
    "ClaimedNotice",
    "SendReport",
    "backoff",
    "claim",
    "reclaim_expired",
    "record_outcomes",
    "record_sent",
    "release",
    "renew_lease",
]
