"""Figure 1's CPU by thread and the SQLite log's state: the measures that tell a stage's own work from the log copying
that lands in it (issue #17, session 15)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from benchmarks.cpu import LOG_COPIER, CpuMeter
from benchmarks.instrument import sqlite_log_state


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_stage_s_cpu_is_split_between_the_main_thread_the_log_copier_and_other_threads() -> None:
    copier_done, release = threading.Event(), threading.Event()

    def copier() -> None:
        _burn(0.15)
        copier_done.set()
        release.wait(10)  # alive when the meter stops, as the product's copier is between stages

    copier_thread = threading.Thread(target=copier, name=LOG_COPIER, daemon=True)
    meter = CpuMeter().start()
    copier_thread.start()
    other = threading.Thread(target=_burn, args=(0.15,), name="prefect-like-worker")
    other.start()
    _burn(0.15)
    other.join()
    assert copier_done.wait(10)
    meter.stop()
    release.set()
    copier_thread.join()

    split = meter.threads
    assert split["main_thread"] >= 0.1
    assert split["log_copier"] >= 0.1
    assert split["other_threads"] >= 0.1  # the worker had ended: counted by difference
    assert abs(sum(split.values()) - meter.own) <= 0.05
    assert meter.as_dict()["this_process_by_thread"] == split


def test_the_log_state_shows_frames_still_to_copy_until_a_checkpoint_copies_them(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,) for _ in range(2000)])

    before = sqlite_log_state(str(path))
    assert before is not None and before["frames"] > 100 and before["copied"] == 0
    assert before["log_bytes"] >= before["frames"] * 4096

    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    after = sqlite_log_state(str(path))
    assert after is not None and after["copied"] == after["frames"] == before["frames"]
    conn.close()


def test_a_database_without_a_log_has_no_log_state(tmp_path: Path) -> None:
    assert sqlite_log_state(str(tmp_path / "none.db")) is None
