# mypy: disable-error-code="arg-type,call-overload,union-attr,attr-defined,misc"
"""Figure 9: Prefect's production topology — a real `prefect server` on PostgreSQL, process workers, `sanjin deploy`.

Every time here is read from the server's own records (the flow run's state history, the task runs' start
times), so how often this process polls adds nothing to a figure:
- **run created → flow code running on a worker**: a run created on the deployment → its Running state →
  its first task run started;
- **decision → running again**, three round trips each: a pooled run that *suspends* (its process exits; the
  decision re-queues it and a worker starts it again) against an in-process run that *pauses* (as under
  `sanjin serve`, polling every 2 s, the deployments' value), from the decision's start to the Running state
  and to the run's first task run after it (its code running again);
- two worker set-ups in the same run: **Prefect's defaults** (the worker polls every 10 s and starts each
  run through its workspace supervisor, a second interpreter) and **sanjin's** (`PREFECT_WORKER_QUERY_SECONDS=0.5`
  and `sanjin deploy`'s `--engine-command`, the engine started directly);
- the floor: `python -c "import prefect.engine, flows.enrollment"` timed in the same run — what any new flow
  process pays before the flow can run, whatever the orchestration;
- **spread**: the enrollment run that runs K programs' batches (publishing each list, accounts and notices),
  all created at once, on one worker (one run at a time) and on two (two at a time). Set-up untimed: each
  program's applications imported, its batch declared and its gates decided. One program's enrollment takes the
  program lock, so it cannot be split over workers; what spreads is programs (a province's cities).

The Prefect server gets its own database (`SANJIN_BENCH_PREFECT_DATABASE`, default `sanjin_bench_prefect`), a
schema per run dropped afterwards: Prefect's migrations build indexes CONCURRENTLY, which waits for every open
transaction of their database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.env import DEFAULT_PG_URL, benchmark_program_file, fresh_database, reviewer, shanghai

BIN = Path(sys.executable).parent
SETUPS = {  # name → (worker environment, `sanjin deploy` engine command)
    "prefect_defaults": ({}, ""),
    "sanjin": ({"PREFECT_WORKER_QUERY_SECONDS": "0.5"}, "python -m prefect.engine"),
}
TRIPS = 3


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg["db"] != "postgres":
        return {"skipped": "the topology runs on PostgreSQL only (a Prefect server and several workers)"}
    home = Path(cfg["home"])
    pg_url = os.environ.get("SANJIN_BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    spread_n = int(cfg.get("topology_institutions") or cfg["institutions"])
    programs = int(cfg.get("topology_programs") or 2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the server and workers
    n = int(cfg["gate_institutions"])
    parts = set(cfg.get("topology_parts") or ("suspend", "pause", "spread"))
    _rows(n + 2 * max(1, spread_n // programs) * programs)  # every institution of the run, generated once
    out: dict[str, Any] = {"db": "postgres", "floor": _import_floor(), "flow_start": {}, "suspend": {}, "errors": {}}
    with _prefect_database(pg_url) as prefect_db, fresh_database("postgres", home, name="topology") as db:
        env = _environment(home, db.url, prefect_db)
        with _processes(home) as procs:
            api = _start_server(procs, env)
            for name in cfg.get("topology_setups") or list(SETUPS):
                worker_env, command = SETUPS[name]
                if "suspend" not in parts:
                    break
                slug = f"bench-{name.replace('_', '-')}"
                try:
                    clock = _program_with_gates(db.engine, home, slug, n, offset=0)
                    procs.start(f"worker-{name}", [str(BIN / "prefect"), "worker", "start", "--pool", slug, "--name",
                                                   f"w-{name}", "--type", "process"], {**env, **worker_env})
                    _deploy(env, slug, slug, command)
                    result = _suspend_trips(api, db.engine, clock, slug)
                    out["flow_start"][name] = result.pop("flow_start")
                    out["suspend"][name] = result
                except Exception as exc:  # reported; the other parts still run
                    out["errors"][f"suspend {name}"] = f"{exc.__class__.__name__}: {exc}"[:3000]
                finally:
                    procs.stop(f"worker-{name}")
            for part, measure in (("pause", lambda: _pause_trips(api, db.engine, home, n)),
                                  ("spread", lambda: _spread(api, db.engine, home, env, procs, spread_n, programs,
                                                             first_row=n if out["suspend"] or "pause" in out else 0))):
                if part not in parts:
                    continue
                try:
                    out[part] = measure()
                except Exception as exc:
                    out["errors"][part] = f"{exc.__class__.__name__}: {exc}"[:3000]
        out["server_log_tail"] = procs.tail("server", 5)
    if out["errors"] and not any(out.get(p) for p in ("suspend", "pause", "spread")):
        raise RuntimeError(f"the topology did not run: {out['errors']}")
    best = out["suspend"].get("sanjin") or next(iter(out["suspend"].values()), {})
    out["seconds"] = best.get("flow_running_seconds")
    out["checks"] = {"ok": not out["errors"] and all(out[p]["ok"] if isinstance(out.get(p), dict) and "ok" in out[p]
                                                      else all(v["ok"] for v in out[p].values())
                                                      for p in parts if p in out)}
    return out


# --- the parts -------------------------------------------------------------------------------------------------


class _Procs:
    """Everything this benchmark starts, each in its own session, stopped by PID."""

    def __init__(self, home: Path) -> None:
        self.home, self.procs, self.logs = home, {}, {}  # type: ignore[var-annotated]

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.home / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.home,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def tail(self, name: str, lines: int) -> list[str]:
        return self.logs[name].read_text(errors="replace").splitlines()[-lines:] if name in self.logs else []


@contextlib.contextmanager
def _processes(home: Path) -> Iterator[_Procs]:
    procs = _Procs(home)
    try:
        yield procs
    finally:
        for name in list(procs.procs):
            procs.stop(name)


@contextlib.contextmanager
def _prefect_database(pg_url: str) -> Iterator[dict[str, str]]:
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    name = os.environ.get("SANJIN_BENCH_PREFECT_DATABASE", "sanjin_bench_prefect")
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    schema = f"prefect_{uuid.uuid4().hex[:10]}"
    owner = create_engine(make_url(pg_url).set(database=name, query={}), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with owner.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = owner.url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    try:
        yield {"PREFECT_SERVER_DATABASE_CONNECTION_URL": url,
               "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_SEARCH_PATH": f"{schema},public"}
    finally:
        with owner.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                              "AND pid <> pg_backend_pid() AND query NOT ILIKE '%pg_stat_activity%'"), {"n": name})
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _environment(home: Path, app_url: str, prefect_db: dict[str, str]) -> dict[str, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return {**os.environ, **prefect_db, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_HOME": str(home / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_LOGGING_TO_API_ENABLED": "true",
            # A real server records task runs (its default). The runner switches the recorder off for its SQLite
            # test harness through this process's environment; inherited, it left this server with no task
            # runs at all, and every trip waited for one in vain.
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "true",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the workers' `python` is this one
            "SANJIN_DATABASE_URL": app_url, "SANJIN_HOME": str(home), "SANJIN_CLOCK": "database",
            "SANJIN_MAILER": "maildir", "SANJIN_MAILDIR": str(home / "maildir")}


def _start_server(procs: _Procs, env: dict[str, str]) -> str:
    api = env["PREFECT_API_URL"]
    port = api.rsplit(":", 1)[1].split("/")[0]
    procs.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port], env)
    _wait_for(lambda: _healthy(api), timeout=240, what="the Prefect server", interval=0.5)
    os.environ["PREFECT_API_URL"] = api  # this process's own client calls (resume, pause run) go there too
    from prefect.settings import PREFECT_API_URL, temporary_settings

    temporary_settings({PREFECT_API_URL: api}).__enter__()
    return api


def _deploy(env: dict[str, str], pool: str, slug: str, command: str, limit: int = 2) -> None:
    done = subprocess.run([str(BIN / "sanjin"), "deploy", "--pool", pool, "--program", slug, "--limit", str(limit),
                           "--engine-command", command], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"sanjin deploy failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
    for deployment in _api(env["PREFECT_API_URL"], "/deployments/filter", {}):  # this benchmark triggers its runs
        for schedule in deployment["schedules"]:
            _api(env["PREFECT_API_URL"], f"/deployments/{deployment['id']}/schedules/{schedule['id']}",
                 {"active": False}, method="PATCH")


def _program_with_gates(engine: Any, home: Path, slug: str, n: int, *, offset: int) -> Any:
    """A program `slug` whose first batch of `n` applications is declared, its district gates open."""
    from core.clock_store import DatabaseClock
    from sanjin.demo_data import APPLICATION_HEADER, write_xlsx
    from tasks.intake.application_import import import_applications
    from tasks.phases.enrollment import reconcile_enrollment

    _load_program(engine, home, slug)
    rows = _rows(offset + n)[offset:offset + n]
    xlsx = write_xlsx(home / f"{slug}.xlsx", APPLICATION_HEADER, [r.row for r in rows])
    clock = DatabaseClock(engine)
    clock.set(shanghai(9, 15))
    import_applications(engine, slug, xlsx, clock=clock, actor="benchmark")
    reconcile_enrollment(engine, slug, clock=clock)
    clock.set(shanghai(9, 22))
    reconcile_enrollment(engine, slug, clock=clock)
    return clock


_ROWS: list[Any] = []


def _rows(count: int) -> list[Any]:
    """One generated set of institutions for every program here, made once (a second, larger set would give the
    same insurance codes to other names): USCCs and codes are unique across all."""
    from benchmarks.data import make_institutions

    if not _ROWS:
        _ROWS[:] = make_institutions(count, seed=9)
    assert len(_ROWS) >= count, (len(_ROWS), count)
    return _ROWS


_USERS_MADE: list[bool] = []


def _load_program(engine: Any, home: Path, slug: str) -> None:
    import yaml

    from core.clock_store import DatabaseClock
    from core.settings import get_settings
    from models.states import Role
    from sanjin.demo_data import DISTRICTS
    from tasks.programs import load_program
    from tasks.users import add_user

    os.environ["SANJIN_CLOCK"] = "database"
    get_settings.cache_clear()
    base = benchmark_program_file(home)
    definition = yaml.safe_load(base.read_text(encoding="utf-8"))
    definition["slug"], definition["name"] = slug, f"{definition['name']}（{slug}）"
    path = home / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), encoding="utf-8")
    clock = DatabaseClock(engine)
    clock.set(shanghai(9, 15))
    load_program(engine, path, clock=clock, actor="manager")
    if not _USERS_MADE:
        add_user(engine, "manager", Role.PROGRAM_MANAGER, display_name="市医保局价采处")
        for district in DISTRICTS:
            add_user(engine, reviewer(district), Role.DISTRICT_REVIEWER, districts=[district])
        _USERS_MADE.append(True)


# --- suspend (pooled) and pause (in-process) round trips ----------------------------------------------------------


def _suspend_trips(api: str, engine: Any, clock: Any, slug: str) -> dict[str, Any]:
    from flows.resume import resume_waiting_run
    from tasks.gates.deciding import decide_gate

    _decide_all_but(engine, clock, slug, keep=2)
    deployment = _api(api, f"/deployments/name/institution-enrollment/{slug}-enrollment-gates@{slug}")
    run_id = _api(api, f"/deployments/{deployment['id']}/create_flow_run", {})["id"]
    trips = []
    for _ in range(TRIPS):
        gate = _wait_for(lambda: _waiting_gate(api, engine, slug, "Suspended"), timeout=180,
                         what="the pooled run to suspend on a gate")
        assert gate.flow_run_id == run_id, (gate.flow_run_id, run_id)
        t0 = time.time()
        result = decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)
        message = resume_waiting_run(result, reviewer(gate.district))
        trips.append(_trip(api, run_id, t0, gate.kind.value, message))
    _wait_for(lambda: _api(api, f"/flow_runs/{run_id}")["state"]["type"] == "COMPLETED", timeout=180,
              what="the pooled run to complete")
    start = _flow_start(api, run_id)
    return {"round_trips": trips, "flow_start": start,
            "running_state_seconds": max(t["running_state_s"] for t in trips),
            "flow_running_seconds": max(t["flow_running_s"] for t in trips),
            "ok": all("re-queued" in t["message"] for t in trips) and _batch_running(engine, slug)}


def _pause_trips(api: str, engine: Any, home: Path, n: int) -> dict[str, Any]:
    """The same round trips with the run paused in this process, as `sanjin serve`'s runner holds it."""
    import asyncio
    import contextvars

    from flows.enrollment import enrollment_flow
    from flows.resume import resume_waiting_run
    from tasks.gates.deciding import decide_gate

    slug = "bench-pause"
    clock = _program_with_gates(engine, home, slug, n, offset=0)
    _decide_all_but(engine, clock, slug, keep=2)
    outcome: dict[str, Any] = {}

    def waiting() -> None:
        try:
            outcome["state"] = asyncio.run(enrollment_flow(slug, wait=True, poll_seconds=2, return_state=True))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(waiting,), daemon=True)
    thread.start()
    trips = []
    for _ in range(TRIPS):
        gate = _wait_for(lambda: _waiting_gate(api, engine, slug, "Paused"), timeout=180,
                         what="the in-process run to pause on a gate")
        t0 = time.time()
        result = decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)
        message = resume_waiting_run(result, reviewer(gate.district))
        trips.append(_trip(api, gate.flow_run_id, t0, gate.kind.value, message))
    thread.join(timeout=180)
    return {"poll_seconds": 2, "round_trips": trips,
            "running_state_seconds": max(t["running_state_s"] for t in trips),
            "flow_running_seconds": max(t["flow_running_s"] for t in trips),
            "ok": "error" not in outcome and _batch_running(engine, slug),
            "error": repr(outcome.get("error")) if "error" in outcome else None}


def _decide_all_but(engine: Any, clock: Any, slug: str, *, keep: int) -> None:
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import list_gates

    gates = [g for g in list_gates(engine) if _program_of(engine, g) == slug]
    for gate in gates[:-keep]:
        decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)


def _program_of(engine: Any, gate: Any) -> str:
    from sqlmodel import Session

    from models.program import Program

    with Session(engine) as session:
        return session.get(Program, gate.program_id).slug


def _waiting_gate(api: str, engine: Any, slug: str, state_name: str) -> Any:
    from sqlmodel import Session, select

    from models.enrollment import Gate
    from models.program import Program
    from models.states import GateState

    with Session(engine) as session:
        gate = session.exec(select(Gate).join(Program, Program.id == Gate.program_id).where(
            Program.slug == slug, Gate.state == GateState.OPEN, Gate.flow_run_id.is_not(None))).first()
    if gate is None:
        return None
    state = _api(api, f"/flow_runs/{gate.flow_run_id}")["state"]
    return gate if state["type"] == "PAUSED" and state["name"] == state_name else None


GATE_STEP = "reconcile-"  # the woken run's first step past the gate: a reconciliation that reads the decision


def _trip(api: str, run_id: str, t0: float, kind: str, message: str) -> dict[str, Any]:
    """Decision at `t0` → the run's next Running state → its first reconciliation after it started (its code running
    past the gate: the step that acts on the decision), by the server's records, with where the time went."""
    try:
        running = _wait_for(lambda: _first_state_after(api, run_id, "RUNNING", t0), timeout=180,
                            what="the woken run to run", interval=0.2)
        task = _wait_for(lambda: _first_task_after(api, run_id, t0, GATE_STEP), timeout=180,
                         what="the woken run's code to run past the gate", interval=0.2)
    except TimeoutError as exc:  # what the server knows of the run, for the report
        states = [(s["type"], s["name"], s["timestamp"]) for s in _api(api, f"/flow_run_states/?flow_run_id={run_id}")]
        tasks = [(r["name"], r["start_time"]) for r in _api(api, "/task_runs/filter",
                                                              {"flow_runs": {"id": {"any_": [run_id]}}})]
        logs = [r["message"][:300] for r in _api(api, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}},
                                                                       "limit": 200})][-15:]
        raise TimeoutError(f"{exc}; decided at {datetime.fromtimestamp(t0).isoformat()}; states {states}; "
                           f"task runs {tasks}; logs {logs}") from exc
    with contextlib.suppress(TimeoutError):  # the breakdown ends with the run waiting again (or done)
        _wait_for(lambda: any(_first_state_after(api, run_id, k, task) for k in ("PAUSED", "COMPLETED", "FAILED")),
                  timeout=120, what="the woken run to wait again or end", interval=0.2)
    return {"gate": kind, "running_state_s": round(running - t0, 3), "flow_running_s": round(task - t0, 3),
            "message": message, "breakdown": _breakdown(api, run_id, t0, task)}


def _breakdown(api: str, run_id: str, t0: float, gate_step: float) -> dict[str, float | None]:
    """Seconds from the decision to each thing the server recorded of the wake: the run re-queued (`Resuming`, the
    API call), a worker taking it (`Pending`: its poll), the process being started (`Submitting`), the engine
    running the flow (`Running`: the interpreter started, Prefect and the flow imported, the run loaded), the
    first task of the woken run, the step past the gate, and the next suspension (the run waiting again)."""
    states = sorted((_ts(s["timestamp"]), s["type"], s["name"]) for s in
                    _api(api, f"/flow_run_states/?flow_run_id={run_id}") if _ts(s["timestamp"]) >= t0)

    def first(kind: str, name: str | None = None) -> float | None:
        found = [t for t, k, n in states if k == kind and (name is None or n == name)]
        return round(found[0] - t0, 3) if found else None

    first_task = _first_task_after(api, run_id, t0, None)
    return {"resuming": first("SCHEDULED"), "pending": first("PENDING", "Pending"),
            "submitting": first("PENDING", "Submitting"), "running": first("RUNNING"),
            "first_task": round(first_task - t0, 3) if first_task else None,
            "gate_step": round(gate_step - t0, 3),
            "waiting_again": first("PAUSED"), "completed": first("COMPLETED")}


def _flow_start(api: str, run_id: str) -> dict[str, Any]:
    """Run created → Running → first task run started, from the server's records of the run's first start."""
    run = _api(api, f"/flow_runs/{run_id}")
    created = _ts(run["created"])
    running = _first_state_after(api, run_id, "RUNNING", created) or created
    pending = _first_state_after(api, run_id, "PENDING", created) or created
    task = _first_task_after(api, run_id, created, None) or created
    return {"created_to_pending_s": round(pending - created, 3), "created_to_running_s": round(running - created, 3),
            "created_to_flow_code_s": round(task - created, 3)}


def _first_state_after(api: str, run_id: str, state_type: str, after: float) -> float | None:
    states = _api(api, f"/flow_run_states/?flow_run_id={run_id}")
    times = sorted(_ts(s["timestamp"]) for s in states if s["type"] == state_type and _ts(s["timestamp"]) >= after)
    return times[0] if times else None


def _first_task_after(api: str, run_id: str, after: float, name: str | None) -> float | None:
    body: dict[str, Any] = {"flow_runs": {"id": {"any_": [run_id]}}, "limit": 200}
    runs = _api(api, "/task_runs/filter", body)
    starts = sorted(_ts(r["start_time"]) for r in runs if r.get("start_time") and _ts(r["start_time"]) >= after
                    and (name is None or r["task_key"].startswith(name.replace("-", "_")) or
                         r["name"].startswith(name)))
    return starts[0] if starts else None


def _batch_running(engine: Any, slug: str) -> bool:
    from sqlmodel import Session, select

    from models.enrollment import Batch
    from models.program import Program
    from models.states import BatchState

    with Session(engine) as session:
        states = session.exec(select(Batch.state).join(Program, Program.id == Batch.program_id).where(
            Program.slug == slug)).all()
    return bool(states) and all(s == BatchState.RUNNING for s in states)


# --- spread: K programs' batches run on one worker, then on two ---------------------------------------------------


def _spread(api: str, engine: Any, home: Path, env: dict[str, str], procs: _Procs, n: int,
            programs: int, *, first_row: int) -> dict[str, Any]:
    """`first_row`: after the gate programs' institutions, if they were imported (a village clinic's proxy parent
    is listed before it, so each program's slice finds its parents in the file or already in the system)."""
    per = max(1, n // programs)
    legs: dict[str, Any] = {}
    offset = first_row
    for workers in (1, 2):
        pool = f"spread-{workers}"
        slugs = [f"bench-spread{workers}-{i}" for i in range(programs)]
        t_setup = time.perf_counter()
        for slug in slugs:
            _ready_to_run(engine, home, slug, per, offset)
            offset += per
            _deploy(env, pool, slug, SETUPS["sanjin"][1])
        setup = time.perf_counter() - t_setup
        names = [f"w-{pool}-{i}" for i in range(workers)]
        for name in names:
            procs.start(name, [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--name", name, "--type",
                               "process", "--limit", "1"], {**env, **SETUPS["sanjin"][0]})
        _wait_for(lambda p=pool, k=workers: _online_workers(api, p) >= k, timeout=300,  # their start is not timed
                  what="the workers to be online", interval=0.5)
        runs = []
        start = time.time()
        for slug in slugs:
            deployment = _api(api, f"/deployments/name/institution-enrollment/{slug}-enrollment-gates@{pool}")
            runs.append(_api(api, f"/deployments/{deployment['id']}/create_flow_run",
                             {"parameters": {"wait": False}})["id"])
        _wait_for(lambda ids=tuple(runs): all(_api(api, f"/flow_runs/{r}")["state"]["type"] in
                                              ("COMPLETED", "FAILED", "CRASHED") for r in ids),
                  timeout=3600, what="the enrollment runs", interval=1)
        finished = [_api(api, f"/flow_runs/{r}") for r in runs]
        end = max(_ts(r["end_time"]) for r in finished)
        first = min(_ts(r["start_time"]) for r in finished if r["start_time"])
        for name in names:
            procs.stop(name)
        legs[f"{workers}_worker{'s' if workers > 1 else ''}"] = {
            "seconds": round(end - start, 3), "first_run_started_after_s": round(first - start, 3),
            "runs": [{"seconds": r["total_run_time"], "state": r["state"]["type"]} for r in finished],
            "setup_seconds_untimed": round(setup, 1),
            "ok": all(r["state"]["type"] == "COMPLETED" for r in finished) and all(
                _batch_running(engine, s) for s in slugs)}
    one, two = legs["1_worker"]["seconds"], legs["2_workers"]["seconds"]
    return {"programs": programs, "institutions_per_program": per, "institutions": per * programs, **legs,
            "speed_up": round(one / two, 2) if two else None, "ok": all(v["ok"] for v in legs.values()),
            "what": "each program's enrollment run (its batch runs: list published, accounts, notices), all created "
                    "at once; workers with --limit 1. One program's run holds its program lock: it cannot be split."}


def _online_workers(api: str, pool: str) -> int:
    return sum(w["status"] == "ONLINE" for w in _api(api, f"/work_pools/{pool}/workers/filter", {}))


def _ready_to_run(engine: Any, home: Path, slug: str, n: int, offset: int) -> None:
    """Applications imported, the batch declared, its district and city gates decided: the next run runs it."""
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import list_gates
    from tasks.phases.enrollment import reconcile_enrollment

    clock = _program_with_gates(engine, home, slug, n, offset=offset)
    for step in ("district", "city"):
        for gate in [g for g in list_gates(engine) if _program_of(engine, g) == slug]:
            decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)
        if step == "district":
            reconcile_enrollment(engine, slug, clock=clock)  # opens the city gate


# --- small helpers -------------------------------------------------------------------------------------------------


def _import_floor() -> dict[str, Any]:
    """What a new flow process pays before any flow code: Python, Prefect's engine and the flow module imported."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import prefect.engine, flows.enrollment"], check=True,
                       cwd=Path(__file__).resolve().parent.parent)
        times.append(time.perf_counter() - start)
    return {"what": "python -c 'import prefect.engine, flows.enrollment' (min of 3)", "seconds": round(min(times), 3)}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _api(url: str, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"},
                                     method=method or ("POST" if body is not None else "GET"))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _healthy(api: str) -> bool:
    try:
        return bool(_api(api, "/health"))
    except OSError:
        return False


def _wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
