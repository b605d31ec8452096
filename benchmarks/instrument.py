"""Client-side measurement: timers, peak RSS, and counting/timing the product's Prefect task functions.

Task runs are counted by wrapping the `.fn` of every Prefect `Task` object in the product's flow
modules: Prefect's task engine calls `task.fn` once per task run (a retry would call it again; no
product task retried in these runs). The wrapper also sums the wall time spent inside our task
functions, which is what figure 6 subtracts from the flows' wall time.
"""

from __future__ import annotations

import functools
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    VmHWM from /proc (Linux): the high-water mark of this process's own memory. `ru_maxrss` is the
    fallback elsewhere, but on Linux it survives execve, so a child started by a big parent reports
    at least the parent's RSS at fork (seen here: a child running `pass` "peaked" at 392 MB).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sqlite_log_state(database: str) -> dict[str, int] | None:
    """A SQLite database's write-ahead log as its WAL-index header says: frames in the log, frames already copied into
    the database file (`nBackfill`), and the log file's size. None if there is no log or no index (not in WAL mode,
    not open, PostgreSQL).

    Read from the `-shm` file without a connection, so reading it neither checkpoints nor takes a lock: mxFrame is
    the 32-bit native-order word at byte 16 of the header and nBackfill the one at byte 96 (after the header's two
    48-byte copies), as SQLite's wal.c lays them out. A new write transaction restarts the log only when every frame
    was copied (copied == frames): otherwise it appends, and a log past the writers' auto-checkpoint threshold
    (core.wal_checkpointer.BACKSTOP_PAGES) is copied inside the commit that crossed it. Figure 1 prints this at each
    stage's start and end to show where the copying landed.
    """
    import os
    import struct

    try:
        with open(f"{database}-shm", "rb") as index:
            header = index.read(100)
        size = os.path.getsize(f"{database}-wal")
    except OSError:
        return None
    if len(header) < 100:
        return None
    frames, copied = struct.unpack_from("=I", header, 16)[0], struct.unpack_from("=I", header, 96)[0]
    return {"frames": frames, "copied": copied, "log_bytes": size}


@dataclass
class Stopwatch:
    """Named stages in order, each with its wall time in seconds."""

    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return sum(self.stages.values())


@dataclass
class TaskProbe:
    """Counts task-function calls (= task runs) by task name and sums the time inside them."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    started: list[tuple[str, float]] = field(default_factory=list)  # (task name, perf_counter at entry)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def wrap_task(self, task: Any) -> None:
        """Wrap one prefect Task's function in place (idempotent per task object)."""
        fn = task.fn
        if getattr(fn, "_bench_probe", None) is self:
            return
        name = task.name
        probe = self

        if _is_coroutine_function(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = probe._enter(name)
                try:
                    return await fn(*args, **kwargs)
                finally:
                    probe._leave(name, start)

            wrapper: Any = async_wrapper
        else:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                start = probe._enter(name)
                try:
                    return fn(*args, **kwargs)
                finally:
                    probe._leave(name, start)

        wrapper._bench_probe = self
        task.fn = wrapper
        self._undo.append(lambda: setattr(task, "fn", fn))

    def wrap_modules(self, *modules: ModuleType) -> list[str]:
        """Wrap every prefect Task defined at module level in `modules`; returns their names."""
        from prefect import Task

        names = []
        for module in modules:
            for value in vars(module).values():
                if isinstance(value, Task):
                    self.wrap_task(value)
                    names.append(value.name)
        return sorted(set(names))

    def time_function(self, module: ModuleType, attribute: str, label: str) -> None:
        """Time calls of a plain function looked up through `module.attribute` (not a task run)."""
        original = getattr(module, attribute)
        probe = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with probe._lock:
                    probe.seconds[label] = probe.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(module, attribute, wrapper)
        self._undo.append(lambda: setattr(module, attribute, original))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _enter(self, name: str) -> float:
        start = time.perf_counter()
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.started.append((name, start))
        return start

    def _leave(self, name: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed

    def snapshot(self) -> tuple[dict[str, int], dict[str, float]]:
        with self._lock:
            return dict(self.counts), dict(self.seconds)

    def task_runs(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def task_seconds(self, names: set[str] | None = None) -> float:
        with self._lock:
            return sum(v for k, v in self.seconds.items() if k in self.counts and (names is None or k in names))


def _is_coroutine_function(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)
