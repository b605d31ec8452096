"""CPU seconds of a stretch of work wherever it ran: this process, Prefect's API server, PostgreSQL's backends.

Why: this machine's two cores are shared with other work, and wall time of the same run moved by 2× between two
runs minutes apart (load average 9). CPU seconds move far less, but this process's own CPU hides what it asks
others to do: on PostgreSQL the database's work runs in its backend processes, and Prefect's bookkeeping of a
flow run partly in the API server. So a meter sums all three, read from `/proc/<pid>/stat` (Linux; elsewhere
only this process is counted and the figure says so):
- this process: `time.process_time()` (every thread, the SQLite engine included);
- the API server: the pid the runner passes in `SANJIN_BENCH_API_PID` (the harness's uvicorn subprocess);
- PostgreSQL: every backend a connection pool of this process opened (`Pool` "connect" events record the
  backend's pid; a backend closed while the meter runs is read at its close).
Other clients of the same API server or PostgreSQL are not counted: their processes are not ours.

This process's share is also split by thread (`CpuMeter.threads`): the main thread, the SQLite log's copier
(core/wal_checkpointer.py, which copies the *previous* steps' log while a step works) and the rest (Prefect's
event-loop and worker threads). Why: a stage's CPU in figure 1 holds whatever copying of the log lands in it, while
the stage harness (benchmarks.enrollment_stages) stops its clock before its own log is copied; a stage compared
between the two without the split looked up to twice as dear in figure 1 (issue #17, session 15).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LIVE: set[int] = set()  # backends of this process's open connections
_CLOSED: list[tuple[int, float]] = []  # (backend pid, its CPU when this process closed it)
_installed = [False]


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, or None if it cannot be read (gone, not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, utime 14, stime 15
    return (int(fields[11]) + int(fields[12])) / _TICK


LOG_COPIER = "sqlite-wal-checkpoint"  # core.wal_checkpointer's thread name


def thread_cpu() -> dict[int, tuple[str, float]]:
    """This process's live threads: native id → (name, user + system CPU seconds so far), from /proc/self/task.

    The main thread is named "main"; a thread Python did not start (none in this product) "native". Empty where
    /proc cannot be read. Resolution is the kernel's clock tick (10 ms here), so a stage's split is read to ±0.01 s.
    """
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return out
    main = os.getpid()
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        tid = int(task.name)
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = ("main" if tid == main else names.get(tid, "native"), (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _backend_pid(dbapi_connection: Any) -> int | None:
    info = getattr(dbapi_connection, "info", None)  # psycopg 3
    pid = getattr(info, "backend_pid", None)
    return int(pid) if pid else None


def install() -> None:
    """Record the backends of every PostgreSQL connection this process opens from now on (idempotent)."""
    if _installed[0]:
        return
    _installed[0] = True

    @event.listens_for(Pool, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        pid = _backend_pid(dbapi_connection)
        if pid is not None:
            _LIVE.add(pid)

    @event.listens_for(Pool, "close")
    def _closing(dbapi_connection: Any, record: Any) -> None:
        pid = _backend_pid(dbapi_connection)
        if pid is not None and pid in _LIVE:
            _CLOSED.append((pid, process_cpu(pid) or 0.0))
            _LIVE.discard(pid)

    event.listen(Pool, "close_detached", _closing)


def _backends_now() -> dict[int, float]:
    return {pid: cpu for pid in _LIVE if (cpu := process_cpu(pid)) is not None}


@dataclass
class CpuMeter:
    """CPU seconds between `start()` and `stop()`: this process, the API server, PostgreSQL backends."""

    own: float = 0.0
    api: float | None = None
    database: float = 0.0
    threads: dict[str, float] = field(default_factory=dict)
    _at_start: dict[str, Any] = field(default_factory=dict)

    def start(self) -> CpuMeter:
        install()
        api_pid = int(os.environ.get("SANJIN_BENCH_API_PID", "0") or 0)
        self._at_start = {"own": time.process_time(), "api_pid": api_pid,
                          "api": process_cpu(api_pid) if api_pid else None,
                          "backends": _backends_now(), "closed": len(_CLOSED), "threads": thread_cpu()}
        return self

    def stop(self) -> CpuMeter:
        s = self._at_start
        self.own = time.process_time() - s["own"]
        if s["api"] is not None:
            now = process_cpu(s["api_pid"])
            self.api = None if now is None else now - s["api"]
        before: dict[int, float] = s["backends"]  # a backend opened meanwhile counts from 0: its log-in too
        database = 0.0
        for pid, cpu in [*_backends_now().items(), *_CLOSED[s["closed"]:]]:
            database += cpu - before.get(pid, 0.0)
        self.database = database
        self.threads = self._split(s["threads"], thread_cpu())
        return self

    def _split(self, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
        """This process's CPU by thread: the main thread, the log's copier, and the rest (by difference: other live
        threads and any that ended meanwhile). Empty if /proc could not be read."""
        if not after:
            return {}
        main = copier = 0.0
        for tid, (name, cpu) in after.items():
            delta = cpu - before.get(tid, (name, 0.0))[1]  # a thread started meanwhile counts from 0
            if name == "main":
                main += delta
            elif name == LOG_COPIER:
                copier += delta
        return {"main_thread": round(main, 3), "log_copier": round(copier, 3),
                "other_threads": round(max(0.0, self.own - main - copier), 3)}

    @property
    def total(self) -> float:
        return self.own + (self.api or 0.0) + self.database

    def as_dict(self) -> dict[str, Any]:
        return {"total": round(self.total, 3), "this_process": round(self.own, 3),
                "api_server": None if self.api is None else round(self.api, 3),
                "database_backends": round(self.database, 3), "this_process_by_thread": self.threads}


__all__ = ["LOG_COPIER", "CpuMeter", "install", "process_cpu", "thread_cpu"]
