"""Copying SQLite's write-ahead log into the database file on a thread of its own.

In WAL mode a commit appends pages to the log, and whichever connection commits past the
auto-checkpoint threshold copies the log back into the database file (and syncs both) before its
commit returns. A bulk step at 100,000 institutions writes 100-150 MB of pages, so the step that
happened to cross the threshold paid for copying its predecessors' pages as well: ~2 s of the 13-15 s
enrollment on SQLite went to checkpoints inside commits (issue #6: 14.6 s with them, 12.2 s with the
automatic checkpoint off, same load). Here a passive checkpoint runs on its own connection and
thread, soon after connections go back to the pool, while the next step works. Python's sqlite3
releases the GIL while SQLite works, so the copy uses the other core. Passive checkpoints never block
readers or writers. The writers keep a much higher automatic threshold as a backstop
(`BACKSTOP_PAGES`), for processes that write faster than this keeps up, or a dead thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

# 256 MB of 4 KB pages: above one bulk step's log, so in practice only a backstop.
BACKSTOP_PAGES = 65_536


class WalCheckpointer:
    """One per database file and process; `notify` after work, and the log is copied soon after."""

    def __init__(self, path: str, *, min_interval: float = 0.5, idle_exit: float = 60.0) -> None:
        self.path = path
        self.min_interval = min_interval  # at most two checkpoints a second, however many commits
        self.idle_exit = idle_exit  # a thread with nothing to do for this long ends; `notify` starts another
        self.checkpoints = 0
        self._due = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """Work was done on the database: checkpoint what is committed (a cheap no-op if nothing is)."""
        self._due.set()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
                self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint now: (busy, frames in the log, frames copied), as SQLite reports it."""
        with sqlite3.connect(self.path, timeout=0, isolation_level=None) as conn:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        conn.close()
        self.checkpoints += 1
        return int(row[0]), int(row[1]), int(row[2])

    def stop(self) -> None:
        """End the thread (the engine was disposed); a later `notify` starts a new one."""
        self._stopped.set()
        self._due.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._due.clear()
        self._stopped.clear()

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._due.wait(timeout=self.idle_exit):
                with self._lock:  # idle: end, unless a notify slipped in meanwhile
                    if not self._due.is_set():
                        self._thread = None
                        return
                continue
            if self._stopped.is_set():
                return
            self._due.clear()
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # the file went away, or is locked: the backstop still holds
                log.debug("WAL checkpoint of %s skipped: %s", self.path, exc)
            self._stopped.wait(self.min_interval)
