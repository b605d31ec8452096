"""SIGTERM stops `sanjin serve` as Ctrl-C does, even while it is still starting: a message, exit 0, no traceback,
and Prefect's temporary server (a child process) stopped with it, never left behind orphaned (issue #19)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine

from tests.factories import make_program
from tests.web.serving import free_port

SANJIN = Path(sys.executable).parent / "sanjin"


def test_sigterm_while_starting_stops_serve_and_its_temporary_prefect_server_quietly(sqlite_engine: Engine,
                                                                                     tmp_path: Path) -> None:
    make_program(sqlite_engine, "shenyang-2025")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(SANJIN_DATABASE_URL=sqlite_engine.url.render_as_string(hide_password=False),
               SANJIN_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
               PREFECT_LOGGING_LEVEL="INFO")  # the line awaited below is INFO; an earlier in-process demo lowers it
    err = tmp_path / "serve.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen([str(SANJIN), "serve", "--port", str(free_port())], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 180
            while "Starting temporary server" not in err.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, err.read_text()
                time.sleep(0.5)
            found = re.search(r"Starting temporary server on (http://[\d.:]+)", err.read_text())
            assert found, err.read_text()
            time.sleep(2)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = err.read_text()
    assert code == 0, text
    assert "已停止 / stopped" in text and "Traceback" not in text, text
    try:  # the temporary server went with it
        httpx.get(f"{found.group(1)}/api/health", timeout=2)
        alive = True
    except httpx.HTTPError:
        alive = False
    assert not alive, "Prefect's temporary server outlived sanjin serve"
