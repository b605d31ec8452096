"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlmodel import Session

from core.audit_chain import seal_written
from core.settings import get_settings
from core.wal_checkpointer import BACKSTOP_PAGES, WalCheckpointer


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the demo's readers (status, dashboard) run while a flow writes; FKs are off by default.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # The log is copied into the database file by a thread of its own (core.wal_checkpointer), not
    # inside whichever commit crosses SQLite's default 4 MB threshold; this is only the backstop.
    cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    # 16 MB of page cache per connection instead of 2 MB. Enrollment at 100,000 barely notices (13.0 s
    # with 2 MB, 12.7 with 16, 12.8 with 64, one run each); 64 MB per pooled connection put the web
    # benchmark's process at 470 MB instead of 300. Temporary B-trees (sorts, GROUP BY) stay in memory.
    cur.execute("PRAGMA cache_size=-16384")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The engine's log copier (a SQLite file), or None (PostgreSQL, an in-memory database)."""
    return _CHECKPOINTERS.get(engine)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for `url` (default: the configured one); creates the SQLite file's folder."""
    url = url or get_settings().resolved_database_url
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if path and path != ":memory:":
            checkpointer = _CHECKPOINTERS[engine] = WalCheckpointer(path)
            # A connection back in the pool has ended its transaction: copy what it committed.
            event.listen(engine, "checkin", lambda *_: checkpointer.notify())
            event.listen(engine, "engine_disposed", lambda *_: checkpointer.stop())
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@event.listens_for(Session, "before_commit")
def _seal_audit_rows(session: Session) -> None:
    """Every session's commit seals the audit rows its transaction wrote into their chains (core/audit_chain.py).

    On the Session class, not in `transaction()`: a writer that commits a bare `Session(engine)` is sealed too,
    so no new writer of audit rows can forget it. A session with no transaction has written nothing.
    """
    if session.in_transaction():
        seal_written(session.connection())


_ENGINES: dict[str, Engine] = {}


def shared_engine(url: str | None = None) -> Engine:
    """One engine (connection pool) per URL per process; flows and the CLI share it."""
    url = url or get_settings().resolved_database_url
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def serialize(session: Session, name: str) -> None:
    """Hold the lock called `name` until this transaction ends; another transaction asking for it waits.

    Two overlapping application files imported at once both read "institution not yet known", then both
    inserted it: a deadlock or a unique violation whose message printed names, phones and credit codes
    (issue #18). Taken before the import reads anything, the second import waits, then sees the first's rows.
    Every importer takes one per program and kind (applications, declaration, operations, register).
    PostgreSQL: a transaction-scoped advisory lock keyed by the name. SQLite: a write that changes nothing
    takes the database's write lock now instead of at the first insert (the busy timeout bounds the wait).
    """
    import hashlib

    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(text("UPDATE importrecord SET id = id WHERE 0 = 1"))
