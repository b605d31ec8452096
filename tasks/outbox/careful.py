"""The careful resend: each step of a notice a lost sender may have delivered is committed as it happens.

A notice whose first copy may have arrived unrecorded (`maybe_delivered`: its chunk was handed over and its
sender lost, or the server did not answer its end) is resent one message per SMTP transaction on one
connection, and each step is committed on one autocommit connection before the send goes on
(notifications/smtp.py's `CarefulLog`):

- `starting`: its attempt is counted (so a notice that kills its sender every time still ends dead);
- its end (the final dot) and `second_copy_out` are committed back to back: from then on a second copy may
  have arrived, and a notice found so marked without a recorded acceptance (its sender lost, or the server
  silent after the end) is settled `sent`, not confirmed, and never handed over again
  (leases.reclaim_expired, leases.record_outcomes) — no kill but one in the microseconds named below makes
  it arrive a third time;
- `settled`: its acceptance is committed `sent` right after the server's 250; a refusal clears the mark (that
  copy never arrived), and the notice is retried or dead as any refusal.

Issue #18: before the mark, a careful resend was recorded only after its 250, and a kill between the end and
that record, for a notice whose first copy had arrived unrecorded too, made it arrive three times (1 notice of
2,000 in about 1 CI-sized run of 6). Recording the resend before its end instead lost notices in an earlier
version (a kill between the record and the end: 15-31 of 10,000 at 20 kills), because that window held a
database round trip. What remains is the moment between the two points of no return, which are put back to
back: the end leaves this process with `protocol.write`; a SQLite commit is beyond a kill once the call
returns (the WAL is written by this process), a PostgreSQL statement once its bytes are in the socket (the
server runs and commits what it received from a client that has died since: 50 of 50 autocommitted UPDATEs
whose client was SIGKILLed right after sending them were committed, tried here). So on SQLite the mark is
committed just before the end, and on PostgreSQL its UPDATE runs before the end in a transaction left open
(`open_mark`) and only its COMMIT follows the end, seven constant bytes handed to libpq (`send_commit`); between
the two is no await, no round trip, only this process's own Python — and no other thread of it competing for the
GIL, as the careful part runs alone (send_notices._deliver_carefully): with a worker thread busy, SQLite's commit
gives the GIL away and the end waits to get it back (the likeliest cause of a notice one full-size crash run
lost). A kill in what remains, on SQLite, settles as sent a copy that never left (lost if its first copy had not
arrived either); on PostgreSQL, leaves a copy out unmarked (a third copy if its first had arrived).

Stop 22's CI run met that PostgreSQL moment once (1 notice of 2,000 arrived three times, 6 random kills): then the
whole UPDATE statement followed the end through SQLAlchemy (its round trip 350 µs median here, the bytes leaving
part way through it). Now the COMMIT's bytes leave 23 µs (median; 70 µs p99) after the call begins.

Session 12: the CI runs still met it (one third copy, none unconfirmed), because the moment was not the
microseconds of this process's code: writing the end to the socket woke the SMTP server, and on a loaded machine
the scheduler could run the server (and others) while this process waited to send the COMMIT — milliseconds with
the copy out and unmarked (`--kill-plan accepted:1,preempt:1` in benchmarks/crash_notices.py stalls there: {1: 4,
3: 1} on PostgreSQL before). The end is now held in the kernel (TCP_CORK, notifications/smtp.py `_held`) until
the COMMIT has left: written, it leaves even if this process dies (the kernel sends what is queued when it closes
the socket), but it wakes nobody, so nothing is scheduled in between. A second path was the reclaim
(leases.reclaim_expired): a lost sender's mark committing while the next sender put its notice back.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from psycopg import pq
from sqlalchemy import Connection, Engine, update

from core.bulk import table_of
from models.outbox import Notice
from models.states import NoticeStatus
from notifications.smtp import Delivery, SendOutcome
from tasks.outbox.leases import SENT, Chunk

log = logging.getLogger(__name__)


def count_attempt(conn: Connection, chunk: Chunk, ref: int) -> None:
    """Count the attempt of one carefully sent notice as it starts (a single-row UPDATE, autocommitted), so a
    notice that kills its sender every time still ends dead, and one never tried is never counted."""
    t = table_of(Notice)
    conn.execute(update(t).where(t.c.id == ref, t.c.status == NoticeStatus.SENDING, t.c.next_attempt_at == chunk.lease)
                 .values(attempts=t.c.attempts + 1))
    conn.commit()


def mark_second_copy(conn: Connection, chunk: Chunk, ref: int, out: bool = True) -> bool:
    """Commit that the notice's careful resend is (or, `out=False`, was not after all) out; False if another
    sender holds it meanwhile. Its Message-ID and subject go with the mark, so a notice settled unconfirmed names them."""
    t = table_of(Notice)
    owned = (t.c.id == ref) & (t.c.status == NoticeStatus.SENDING) & (t.c.next_attempt_at == chunk.lease)
    values = ({"second_copy_out": True, "message_id": chunk.message_ids[ref], "subject": chunk.subjects.get(ref)}
              if out else {"second_copy_out": False})
    done = conn.execute(update(t).where(owned).values(**values).returning(t.c.id)).first()
    conn.commit()
    return done is not None


def record_accepted(conn: Connection, chunk: Chunk, ref: int, *, at: datetime) -> bool:
    """Commit one carefully sent notice as `sent`, right after the server accepted it; False if another
    sender holds it meanwhile (then `record_outcomes` skips it, as any row whose lease was lost).

    A single-row UPDATE and commit per notice, on the caller's open connection (no pool round trip): only
    notices a lost sender may have delivered come this way, at most a couple of chunks per crash. `at` is
    read once before the careful send (the installation's clock is a database read).
    """
    t = table_of(Notice)
    owned = (t.c.id == ref) & (t.c.status == NoticeStatus.SENDING) & (t.c.next_attempt_at == chunk.lease)
    done = conn.execute(update(t).where(owned).values(
        status=SENT, sent_at=at, last_error=None, next_attempt_at=None,
        message_id=chunk.message_ids[ref], subject=chunk.subjects.get(ref)).returning(t.c.id)).first()
    conn.commit()
    if done is not None:
        chunk.recorded.add(ref)
    return done is not None


def open_mark(conn: Connection, chunk: Chunk, ref: int) -> bool:
    """Begin a transaction and set the notice's `second_copy_out` mark in it, uncommitted (its row locked); False,
    with nothing left open, if another sender holds the notice meanwhile or its mark is set already (a careful
    resend of it went out before: it is never handed over again). `commit_mark` or `send_commit` ends it.

    The statement's whole round trip happens here, before the end goes out, so what is left for the moment between
    the end and the mark is a COMMIT: seven constant bytes (careful.py's docstring)."""
    t = table_of(Notice)
    owned = ((t.c.id == ref) & (t.c.status == NoticeStatus.SENDING) & (t.c.next_attempt_at == chunk.lease)
             & t.c.second_copy_out.is_not(True))
    conn.exec_driver_sql("BEGIN")
    done = conn.execute(update(t).where(owned).values(
        second_copy_out=True, message_id=chunk.message_ids[ref], subject=chunk.subjects.get(ref))
        .returning(t.c.id)).first()
    if done is None:
        conn.exec_driver_sql("ROLLBACK")
    return done is not None


def send_commit(raw: Any) -> None:
    """PostgreSQL: put the open mark's COMMIT on the wire and return as soon as its bytes have left (libpq, no
    psycopg in between): from then on the server commits it, whatever becomes of this process."""
    pg = raw.pgconn
    pg.send_query(b"COMMIT")
    while pg.flush() != 0:  # a non-blocking connection: seven bytes leave at the first flush but for a full socket
        select.select([], [pg.socket], [], 1.0)


def collect_commit(raw: Any) -> bool:
    """PostgreSQL: the result of `send_commit`'s COMMIT, read before the connection is used again."""
    pg = raw.pgconn
    pg.consume_input()
    while pg.is_busy():
        select.select([pg.socket], [], [], 1.0)
        pg.consume_input()
    ok = True
    while (result := pg.get_result()) is not None:
        ok = ok and result.status == pq.ExecStatus.COMMAND_OK
    return ok


class CarefulRecord:
    """The `CarefulLog` of one careful send: each step committed on `conn` (autocommit) as the mailer reports it.

    `conn` must be an AUTOCOMMIT connection held for the whole careful send, on the event loop's thread:
    nothing else runs between a step and its commit. The mark of a resend's end is written before the end in a
    transaction of its own (`open_mark`) and committed at the point of no return of its dialect: on SQLite just
    before the end, on PostgreSQL just after it, the COMMIT's bytes sent by libpq itself (`send_commit`).
    """

    def __init__(self, conn: Connection, chunk: Chunk, at: datetime) -> None:
        self.conn, self.chunk, self.at = conn, chunk, at
        self.raw: Any = conn.connection.dbapi_connection
        # Where each dialect's commit is beyond a kill (the module's docstring): SQLite when the call returns,
        # so the mark goes first; PostgreSQL when the statement's bytes leave, so the end goes first.
        self.mark_first = conn.dialect.name != "postgresql"
        self.open: int | None = None  # the notice whose mark awaits its COMMIT (PostgreSQL)
        self.commit_sent = False

    def starting(self, ref: int) -> None:
        count_attempt(self.conn, self.chunk, ref)

    def ending(self, ref: int) -> bool:
        if not open_mark(self.conn, self.chunk, ref):
            return False
        if self.mark_first:
            self.raw.commit()  # sqlite3's own commit: nothing but its return between it and the end
            self.conn.commit()
        else:
            self.open = ref
        return True

    def ended(self, ref: int) -> None:
        if self.open == ref:
            send_commit(self.raw)
            self.commit_sent = True

    def close_mark(self) -> None:
        """Read the COMMIT of an open mark whose end went out; roll back one whose end never did (the write
        failed: that copy did not leave)."""
        ref, sent, self.open, self.commit_sent = self.open, self.commit_sent, None, False
        if ref is None:
            return
        if not sent:
            self.conn.exec_driver_sql("ROLLBACK")
        elif not collect_commit(self.raw):
            log.warning("outbox: the mark of notice %d's careful resend was not committed", ref)
        self.conn.commit()

    def settled(self, outcome: SendOutcome, ending: bool) -> None:
        self.close_mark()
        if outcome.delivery is Delivery.SENT:
            record_accepted(self.conn, self.chunk, outcome.ref, at=self.at)
        elif ending and not outcome.maybe_delivered:  # refused, or never written: that copy did not arrive
            mark_second_copy(self.conn, self.chunk, outcome.ref, out=False)


@contextmanager
def careful_record(engine: Engine, chunk: Chunk, at: datetime) -> Iterator[CarefulRecord]:
    """A `CarefulRecord` on a connection of its own in autocommit (each step one statement and one round
    trip, not an UPDATE and then a COMMIT), held for the whole careful send.

    On PostgreSQL without server-side prepared statements for the while: psycopg prepares a statement on its
    sixth run, one more round trip before the statement's bytes leave — in the moment between a careful
    resend's end and its mark (the module's docstring).
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        raw: Any = conn.connection.dbapi_connection
        threshold = getattr(raw, "prepare_threshold", None)
        if threshold is not None:
            raw.prepare_threshold = None
        try:
            record = CarefulRecord(conn, chunk, at)
            try:
                yield record
            finally:
                record.close_mark()
        finally:
            if threshold is not None:
                raw.prepare_threshold = threshold


__all__ = [
    "CarefulRecord",
    "careful_record",
    "collect_commit",
    "count_attempt",
    "mark_second_copy",
    "open_mark",
    "record_accepted",
    "send_commit",
]
