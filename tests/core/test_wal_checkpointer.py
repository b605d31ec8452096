"""SQLite's write-ahead log is copied into the database file by a thread of its own, not by commits."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from core.db import make_engine, wal_checkpointer
from core.wal_checkpointer import BACKSTOP_PAGES, WalCheckpointer

ROWS = 2_000
ROW_BYTES = 4_000  # ~8 MB: twice SQLite's default 4 MB auto-checkpoint threshold


def _wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _write(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS blob (id INTEGER PRIMARY KEY, body BLOB)")
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO blob (body) SELECT randomblob(?) FROM n", (ROWS, ROW_BYTES))


def _rows_in_the_database_file_alone(path: Path, scratch: Path) -> int:
    """Rows a copy of the database file holds without its log: only what a checkpoint copied into it."""
    copy = scratch / "file-alone.db"
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as conn:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'blob'").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM blob").fetchone()[0] if tables else 0
    conn.close()
    return int(rows)


def test_a_commit_leaves_the_copy_to_the_checkpointer_thread(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    with engine.connect() as conn:  # the committing connections only keep a far-off backstop
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == BACKSTOP_PAGES
    _write(engine)
    assert _wait_for(lambda: checkpointer.checkpoints >= 1), "no checkpoint after the commit"
    assert _wait_for(lambda: path.stat().st_size > ROWS * ROW_BYTES), "the pages never reached the database file"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert _rows_in_the_database_file_alone(path, scratch) == ROWS
    engine.dispose()


def test_disposing_the_engine_ends_the_thread_and_new_work_starts_another(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    _write(engine)
    assert _wait_for(lambda: checkpointer.checkpoints >= 1)
    engine.dispose()
    assert checkpointer._thread is None or not checkpointer._thread.is_alive()
    before = checkpointer.checkpoints
    _write(engine)  # the pool comes back; so does the thread
    assert _wait_for(lambda: checkpointer.checkpoints > before)
    engine.dispose()


def test_an_idle_checkpointer_thread_ends_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    checkpointer = WalCheckpointer(str(path), min_interval=0.01, idle_exit=0.1)
    checkpointer.notify()
    assert _wait_for(lambda: checkpointer.checkpoints == 1)
    assert _wait_for(lambda: checkpointer._thread is None)


def test_postgresql_and_in_memory_databases_have_no_checkpointer() -> None:
    assert wal_checkpointer(make_engine("sqlite://")) is None
    assert wal_checkpointer(make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")) is None
