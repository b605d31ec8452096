"""Prefect's production topology with real parts: a Prefect server on PostgreSQL, two process workers, `sanjin deploy`.

A batch's enrollment is triggered on the pool, its gates are decided from the command line while the run waits
suspended (holding no worker process), one worker is killed with SIGKILL while the run waits, and the batch is
still published within a bounded time, with nothing lost or done twice. Everything started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from core.clock_store import DatabaseClock
from models.audit import AuditEvent
from models.catalog import ListVersion
from models.enrollment import Batch, Gate
from models.outbox import Notice
from models.states import ApplicationState, BatchState, GateKind, GateState, InstitutionKind
from models.tables import Application, metadata
from tasks.phases.enrollment import reconcile_enrollment
from tests.conftest import PG_URL, fresh_pg_schema
from tests.factories import make_applications, make_institution, make_program, make_reviewers, shanghai

# One xdist group: each test's teardown ends every session on the Prefect database, which would cut a
# neighbour's server off mid-test if the two ran side by side.
pytestmark = [pytest.mark.slow, pytest.mark.prefect, pytest.mark.postgres, pytest.mark.xdist_group("topology")]
SLUG = "shenyang-2025"
POOL = "topology"
BIN = Path(sys.executable).parent
AFTER_DECISION_SECONDS = 120  # bound on decision → batch running on the surviving worker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _children(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc): a worker's flow-run processes."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop one process we started, and what it started (its own session), by PID."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


PREFECT_DATABASE = "sanjin_topology_prefect"


@pytest.fixture
def prefect_database() -> Iterator[dict[str, str]]:
    """The Prefect server's settings: a schema of its own, dropped afterwards, in a database kept for these tests.

    A database apart from the test database, because Prefect's migrations build indexes CONCURRENTLY, which
    waits for every open transaction of the database (other tests' included). A schema per run rather than a
    database per run, because dropping a database waits for a checkpoint: minutes on a busy machine. `public`
    stays on the path for the extension Prefect uses (pg_trgm), installed there once.
    """
    from tests.conftest import require_postgres

    require_postgres()
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn, contextlib.suppress(IntegrityError, ProgrammingError):  # made meanwhile elsewhere
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PREFECT_DATABASE}).first():
            conn.execute(text(f'CREATE DATABASE "{PREFECT_DATABASE}"'))
    admin.dispose()
    schema = f"prefect_{uuid.uuid4().hex[:10]}"
    owner = create_engine(make_url(PG_URL).set(database=PREFECT_DATABASE), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)  # a fresh session for the teardown, not one a kill may have ended
    with owner.connect() as conn:
        with contextlib.suppress(IntegrityError):  # another checkout's run installing it at the same moment
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = owner.url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    try:
        yield {"PREFECT_SERVER_DATABASE_CONNECTION_URL": url,
               "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_SEARCH_PATH": f"{schema},public"}
    finally:
        with owner.connect() as conn:  # a killed server's sessions linger until they next write to it: end them
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                              "AND pid <> pg_backend_pid()"), {"n": PREFECT_DATABASE})
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        owner.dispose()


@pytest.fixture
def app_engine() -> Iterator[Any]:
    with fresh_pg_schema("topo") as engine:
        metadata.create_all(engine)
        yield engine


class Topology:
    """The processes of one machine's share of a province: server, workers; each stopped by its PID."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env, self.procs, self.logs = tmp, env, {}, {}  # type: ignore[var-annotated]

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(args, env=env or self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                cwd=self.tmp, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            _stop(proc)

    def run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.tmp)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")


def _api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _open_gate(engine: Any, kind: GateKind) -> Gate | None:
    with Session(engine) as session:
        return session.execute(select(Gate).where(Gate.kind == kind, Gate.state == GateState.OPEN,
                                                  Gate.flow_run_id.is_not(None))).scalars().first()  # type: ignore[union-attr]


def _state(api: str, run_id: str) -> tuple[str, str]:
    state = _api(api, f"/flow_runs/{run_id}")["state"]
    return state["type"], state["name"]


def _workers_that_ran(topology: Topology, run_id: str) -> set[str]:
    """The workers that started the run at least once (both try each run; the loser's submission is aborted)."""
    def started(log: str) -> int:
        return log.count(f"submitting flow run '{run_id}'") - log.count(f"Aborted submission of flow run '{run_id}'")
    return {w for w in ("worker-1", "worker-2") if started(topology.log(w)) > 0}


def test_a_province_on_a_prefect_server_with_two_workers_survives_a_killed_worker(
        tmp_path: Path, prefect_database: dict[str, str], app_engine: Any) -> None:
    started = time.monotonic()
    up = started
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    app_url = app_engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           **prefect_database, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # the workers' `python -m prefect.engine` is ours
           "PREFECT_LOGGING_LEVEL": "INFO", "SANJIN_DATABASE_URL": app_url, "SANJIN_HOME": str(tmp_path / "home"),
           "SANJIN_CLOCK": "database", "SANJIN_MAILER": "maildir", "SANJIN_MAILDIR": str(tmp_path / "maildir")}
    # Three applications of 和平区 and two of 沈河区, their batch declared on the morning after the cut-off.
    program = make_program(app_engine, SLUG)
    reviewers = make_reviewers(app_engine, ["和平区", "沈河区"])
    institutions = [make_institution(app_engine, district=d, kind=InstitutionKind.CHAIN_PHARMACY)
                    for d in ("和平区", "和平区", "和平区", "沈河区", "沈河区")]
    make_applications(app_engine, program, institutions, submitted_at=shanghai(2025, 9, 12, 10))
    clock = DatabaseClock(app_engine)
    clock.set(shanghai(2025, 9, 12, 12))
    reconcile_enrollment(app_engine, SLUG, clock=clock)  # an open batch 1, its cut-off 2025-09-19
    clock.set(shanghai(2025, 9, 20, 9))

    topology = Topology(tmp_path, env)
    try:
        topology.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
        _wait_for(lambda: _healthy(api), timeout=180, what="the Prefect server")  # 10-60 s here, more under load
        # The workers start while `sanjin deploy` registers (the first creates the process pool if it is not there).
        workers = {name: topology.start(name, [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", name,
                                               "--type", "process"]) for name in ("worker-1", "worker-2")}
        deployed = topology.run(str(BIN / "sanjin"), "deploy", "--pool", POOL, "--program", SLUG, "--limit", "2")
        assert f"institution-enrollment/{SLUG}-enrollment-gates@{POOL}" in deployed
        queue = _api(api, f"/work_pools/{POOL}/queues/{SLUG}")
        assert queue["concurrency_limit"] == 2  # the per-program limit
        _schedules_off(api)  # this test triggers its runs; a cron firing at the top of the hour would blur the counts
        deployment = _api(api, f"/deployments/name/institution-enrollment/{SLUG}-enrollment-gates@{POOL}")
        assert deployment["path"] is None and deployment["pull_steps"] == []
        assert "SANJIN_DATABASE_URL" in deployment["job_variables"]["env"]  # no password in it: it may be stored

        created = up = time.monotonic()
        _api(api, f"/deployments/{deployment['id']}/create_flow_run", {})
        districts = _wait_for(lambda: _all_district_gates_waiting(app_engine), timeout=90,
                              what="the district gates and a suspended run")
        run_id = districts[0].flow_run_id
        first_leg = time.monotonic() - created
        _wait_for(lambda: _state(api, run_id) == ("PAUSED", "Suspended"), timeout=30, what="the run to suspend")
        _wait_for(lambda: not any(_children(w.pid) for w in workers.values()), timeout=30,
                  what="no flow process left on any worker while the run waits")

        # The first district from the command line; the woken run suspends again on the second, which is decided
        # through Prefect's form (a resume with input nothing has recorded yet): the run woken by it records it.
        first, second = districts
        out = topology.run(str(BIN / "sanjin"), "gate", "decide", str(first.id), "--approve-rest", "--as",
                           reviewers[first.district])
        assert "decision recorded" in out and "resumed" not in out, out  # a suspended run is re-queued
        decided = time.monotonic()
        _wait_for(lambda: _state(api, run_id)[0] == "RUNNING", timeout=90, what="the woken run to run", interval=0.2)
        suspend_to_running = time.monotonic() - decided
        _wait_for(lambda: _state(api, run_id) == ("PAUSED", "Suspended") and _suspended_since(api, run_id) > decided,
                  timeout=90, what="the woken run to suspend again on the other district's gate")
        form = {"run_input": {"gate_id": second.id, "approve": second.items, "decided_by": reviewers[second.district],
                              "recorded": False}}  # (refused for a moment, until the run has saved its form's schema)
        _wait_for(lambda: _api(api, f"/flow_runs/{run_id}/resume", form)["status"] == "ACCEPT", timeout=30,
                  what="Prefect to accept the form's decision", interval=0.2)
        city = _wait_for(lambda: _open_gate(app_engine, GateKind.CITY_REVIEW), timeout=90, what="the city gate")
        _wait_for(lambda: _state(api, city.flow_run_id) == ("PAUSED", "Suspended"), timeout=60,
                  what="the run to suspend at the city gate")
        district_leg = time.monotonic() - decided

        # A machine is lost while the run waits: its worker, and whatever it had started, SIGKILLed.
        last = _workers_that_ran(topology, city.flow_run_id)
        victim = sorted(last)[0] if last else "worker-1"
        survivor = "worker-2" if victim == "worker-1" else "worker-1"
        for pid in _children(workers[victim].pid):  # none while the run waits suspended (checked above)
            os.kill(pid, signal.SIGKILL)
        _stop(workers[victim], signal.SIGKILL)

        out = topology.run(str(BIN / "sanjin"), "gate", "decide", str(city.id), "--approve-rest", "--as", "manager")
        assert "re-queued" in out, out
        decided = time.monotonic()
        _wait_for(lambda: _batch_running(app_engine), timeout=AFTER_DECISION_SECONDS,
                  what="the batch to run after the city decision, on the surviving worker")
        city_leg = time.monotonic() - decided
        _wait_for(lambda: _state(api, city.flow_run_id)[0] == "COMPLETED", timeout=60, what="the run to complete")
        assert _workers_that_ran(topology, city.flow_run_id) == {victim, survivor}  # each ran a part of it

        # A re-run after everything repeats nothing.
        before = _counts(app_engine)
        rerun = _api(api, f"/deployments/{deployment['id']}/create_flow_run", {})["id"]
        _wait_for(lambda: _state(api, rerun)[0] == "COMPLETED", timeout=90, what="the re-run to finish")
        assert _counts(app_engine) == before
    except AssertionError as exc:  # the parts' own words, since pytest's temporary directory does not last
        raise AssertionError(f"{exc}\n" + "\n".join(f"--- {name}:\n{topology.log(name)[-3000:]}"
                                                      for name in topology.logs)) from exc
    finally:
        topology.stop_all()
    assert all(proc.poll() is not None for proc in topology.procs.values())

    with Session(app_engine) as session:
        (batch,) = session.execute(select(Batch)).scalars().all()
        assert batch.state == BatchState.RUNNING and batch.list_version_id is not None
        states = session.execute(select(Application.state)).scalars().all()
        assert sorted(states) == [ApplicationState.RUNNING.value] * 5
        gates = session.execute(select(Gate.kind, func.count()).group_by(Gate.kind)).all()
        assert dict(gates) == {GateKind.DISTRICT_REVIEW.value: 2, GateKind.CITY_REVIEW.value: 1}
        by_form = session.get(Gate, second.id)
        assert by_form is not None and by_form.decided_by == reviewers[second.district]  # recorded by the woken run
        audit = session.execute(select(AuditEvent.entity, AuditEvent.entity_id, AuditEvent.action, func.count())
                                .group_by(AuditEvent.entity, AuditEvent.entity_id, AuditEvent.action)).all()
        assert [row for row in audit if row[3] > 1 and row[2] not in ("load_created",)] == []
        keys = session.execute(select(Notice.idempotency_key)).scalars().all()
        assert len(keys) == len(set(keys)) and sum(k.startswith("batch_published:") for k in keys) == 5
        assert session.execute(select(func.count()).select_from(ListVersion)).scalar_one() == 1
    print(f"\ntopology: parts up and deployed {up - started:.1f} s; run created → first gate waiting {first_leg:.1f} s; "
          f"district decision → suspended run running again {suspend_to_running:.1f} s, → city gate waiting "
          f"{district_leg:.1f} s; city decision (worker killed) → batch running {city_leg:.1f} s; "
          f"whole test {time.monotonic() - started:.0f} s")


def _suspended_since(api: str, run_id: str) -> float:
    """When the run's current state began (a monotonic-clock reading, for comparing with `time.monotonic()`)."""
    from datetime import datetime

    started = datetime.fromisoformat(_api(api, f"/flow_runs/{run_id}")["state"]["timestamp"].replace("Z", "+00:00"))
    return time.monotonic() - (time.time() - started.timestamp())


def _schedules_off(api: str) -> None:
    for deployment in _api(api, "/deployments/filter", {}):
        for schedule in deployment["schedules"]:
            request = urllib.request.Request(f"{api}/deployments/{deployment['id']}/schedules/{schedule['id']}",
                                             data=json.dumps({"active": False}).encode(), method="PATCH",
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).close()


def _healthy(api: str) -> bool:
    try:
        return bool(_api(api, "/health"))
    except OSError:
        return False


def _all_district_gates_waiting(engine: Any) -> list[Gate] | None:
    with Session(engine) as session:
        gates = session.execute(select(Gate).where(Gate.kind == GateKind.DISTRICT_REVIEW)).scalars().all()
    return list(gates) if len(gates) == 2 and all(g.flow_run_id for g in gates) else None


def _batch_running(engine: Any) -> bool:
    with Session(engine) as session:
        return session.execute(select(Batch.state)).scalar() == BatchState.RUNNING.value


def _counts(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def test_a_run_lost_with_its_machine_while_running_is_marked_crashed_and_replaced_within_minutes(
        tmp_path: Path, prefect_database: dict[str, str], app_engine: Any) -> None:
    """The worker and its flow process are SIGKILLed while the run reconciles: Prefect would show it Running for
    ever. Its heartbeats stop; the pool's automation marks it Crashed and starts the deployment again."""
    from tasks.programs import lock_program

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           **prefect_database, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "INFO",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "SANJIN_DATABASE_URL": app_engine.url.render_as_string(hide_password=False),
           "SANJIN_HOME": str(tmp_path / "home"), "SANJIN_CLOCK": "database", "SANJIN_MAILER": "maildir",
           "SANJIN_MAILDIR": str(tmp_path / "maildir")}
    program = make_program(app_engine, SLUG)
    make_reviewers(app_engine, ["和平区"])
    make_applications(app_engine, program, [make_institution(app_engine, district="和平区")],
                      submitted_at=shanghai(2025, 9, 12, 10))
    clock = DatabaseClock(app_engine)
    clock.set(shanghai(2025, 9, 12, 12))
    reconcile_enrollment(app_engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))

    topology = Topology(tmp_path, env)
    try:
        topology.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
        _wait_for(lambda: _healthy(api), timeout=180, what="the Prefect server")
        worker = topology.start("worker-1", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name",
                                             "worker-1", "--type", "process"])
        topology.run(str(BIN / "sanjin"), "deploy", "--pool", POOL, "--program", SLUG, "--heartbeat", "30")
        _schedules_off(api)
        deployment = _api(api, f"/deployments/name/institution-enrollment/{SLUG}-enrollment-gates@{POOL}")
        with Session(app_engine) as holder:  # the program lock held here: the run stays in its reconciliation
            assert program.id is not None
            lock_program(holder, program.id)
            lost = _api(api, f"/deployments/{deployment['id']}/create_flow_run", {})["id"]
            _wait_for(lambda: _state(api, lost)[0] == "RUNNING", timeout=120, what="the run to be running")
            time.sleep(3)  # its first heartbeat is out
            flow_processes = _children(worker.pid)  # started in a session of their own: not in the worker's group
            assert flow_processes, "the running run has no process on the worker"
            for pid in flow_processes:  # the machine is lost: the flow process and the worker, SIGKILLed by PID
                os.kill(pid, signal.SIGKILL)
            _stop(worker, signal.SIGKILL)
            holder.rollback()
        killed = time.monotonic()
        topology.start("worker-2", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", "worker-2",
                                    "--type", "process"])
        _wait_for(lambda: _state(api, lost)[0] == "CRASHED", timeout=240, what="the lost run to be marked crashed")
        noticed = time.monotonic() - killed
        gate = _wait_for(lambda: _open_gate(app_engine, GateKind.DISTRICT_REVIEW), timeout=180,
                         what="a replacement run to open the district gate and wait on it")
        assert gate.flow_run_id != lost
        replacement = _api(api, f"/flow_runs/{gate.flow_run_id}")
        assert replacement["deployment_id"] == deployment["id"] and replacement["parameters"]["wait"] is True
        _wait_for(lambda: _state(api, gate.flow_run_id) == ("PAUSED", "Suspended"), timeout=60,
                  what="the replacement to wait suspended")
        replaced = time.monotonic() - killed
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(f"--- {name}:\n{topology.log(name)[-3000:]}"
                                                      for name in topology.logs)) from exc
    finally:
        topology.stop_all()
    with Session(app_engine) as session:
        assert session.execute(select(func.count()).select_from(Batch)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(Gate)).scalar_one() == 1
    print(f"\ncrash recovery (heartbeat 30 s): lost run marked crashed {noticed:.0f} s after the kill; "
          f"its replacement waiting on the gate {replaced:.0f} s after")
