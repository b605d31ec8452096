"""`sanjin serve` in a subprocess of its own process group, as a person starts it in a terminal.

Shared by the serve test and the browser test: a free loopback port, the test's SQLite database, the
session's Prefect test API; the runner polls every second so a triggered run starts at once.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from tests.web.conftest import PASSWORD

SANJIN = str(Path(sys.executable).parent / "sanjin")
ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: signal.Signals = signal.SIGINT, *, group: bool = True, timeout: float = 60) -> int:
        """Ctrl-C in a terminal is SIGINT to the whole foreground process group."""
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def serve_env(engine: Engine, prefect_api: str) -> dict[str, str]:
    return {**os.environ, "SANJIN_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "SANJIN_WEB_SECRET_KEY": "serve-test-secret-0123456789"}


@contextmanager
def sanjin_serve(engine: Engine, prefect_api: str, log: Path, *extra: str) -> Iterator[Served]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([SANJIN, "serve", "--port", str(port), *extra], env=serve_env(engine, prefect_api),
                                cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(f"http://127.0.0.1:{port}", proc, log)
    try:
        def answering() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"sanjin serve exited with {proc.returncode}:\n{served.log_text()[-3000:]}")
            try:
                return httpx.get(f"{served.base}/login", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answering, timeout=90, what="sanjin serve to answer")
        yield served
    except BaseException:
        print(f"--- sanjin serve log ({log}) ---\n{served.log_text()[-6000:]}")  # shown with the failure
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def signed_in(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    token = CSRF.search(client.get("/login").text)
    assert token
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1),
                                           "next": "/"})
    assert response.status_code == 303, response.text
    return client


def csrf(client: httpx.Client, path: str) -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def flow_run_state(run_id: str) -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
        return state.type.value if state else None


def trigger(deployment: str) -> str:
    """Start a run of a served deployment now (the runner picks it up within its poll interval)."""
    from prefect.deployments import run_deployment

    run = run_deployment(deployment, timeout=0)
    return str(run.id)  # type: ignore[union-attr]
