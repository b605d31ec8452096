"""A process to kill -9: the crash tests' child, started fresh (`python -m MODULE child …`) or forked.

Forked from an interpreter that has imported the product already, a child starts in milliseconds instead of
the ~1 s of CPU of a fresh interpreter's imports (12 s of wall time on this loaded 2-core machine); the
CI-sized tests fork, the full-size script starts fresh interpreters, as a scheduler would. Either way the
child is a process of its own, killed with SIGKILL: no clean-up, no rollback handler, as a power cut.

The child reports where it is by printing marker lines; `markers` holds them with the time each arrived.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


class Child:
    """`MODULE.child_main(args)` in a process of its own."""

    def __init__(self, module: str, args: list[str], *, fork: bool) -> None:
        self.markers: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - the child's stderr, read after it ends
        self.pid: int
        self._proc: subprocess.Popen[bytes] | None = None
        self._status: int | None = None
        if fork:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns into the caller (a test runner, the script)
                code = 1
                try:
                    os.close(read)
                    os.dup2(write, 1)
                    os.dup2(self._err.fileno(), 2)
                    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
                    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
                    importlib.import_module(module).child_main(args)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            os.close(write)
            self.pid = pid
            out: IO[bytes] = os.fdopen(read, "rb")
        else:
            self._proc = subprocess.Popen([sys.executable, "-m", module, "child", *args], cwd=ROOT,
                                          stdout=subprocess.PIPE, stderr=self._err)
            self.pid = self._proc.pid
            assert self._proc.stdout is not None
            out = self._proc.stdout
        threading.Thread(target=self._read, args=(out,), daemon=True).start()

    def _read(self, out: IO[bytes]) -> None:
        with out:
            for line in out:
                self.markers.append((time.monotonic(), line.decode("utf-8", "replace").strip()))

    def seen(self, marker: str) -> float | None:
        """When the child printed `marker`, if it did."""
        return next((at for at, m in self.markers if m == marker), None)

    def wait_for(self, marker: str, timeout: float) -> float | None:
        """Until the child prints `marker` (its time) or ends (None)."""
        deadline = time.monotonic() + timeout
        while (at := self.seen(marker)) is None:
            if self.poll() is not None or time.monotonic() > deadline:
                return self.seen(marker)
            time.sleep(0.005)
        return at

    def poll(self) -> int | None:
        """The exit status as Popen gives it (−9 for SIGKILL), or None while running."""
        if self._status is None:
            if self._proc is not None:
                self._status = self._proc.poll()
            else:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self._status = os.waitstatus_to_exitcode(status)
        return self._status

    def kill(self) -> bool:
        """SIGKILL if still running; whether it was."""
        if self.poll() is not None:
            return False
        os.kill(self.pid, signal.SIGKILL)
        return True

    def wait(self, timeout: float = 1800) -> int:
        deadline = time.monotonic() + timeout
        while (status := self.poll()) is None:
            if time.monotonic() > deadline:
                self.kill()
            time.sleep(0.01)
        return status

    def stderr_tail(self, size: int = 2000) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")[-size:]


__all__ = ["Child"]
