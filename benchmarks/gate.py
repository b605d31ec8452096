# mypy: disable-error-code="arg-type,call-overload,union-attr,attr-defined,misc"
# (SQLModel types column attributes as plain values, so query expressions confuse mypy; as in sanjin/demo.py.)
"""Figure 5: a gate's round trip, decision recorded → the waiting flow run resumed.

The enrollment flow runs with wait=True (poll_seconds=1) in a thread and pauses on its open gate.
Then, as the CLI's `sanjin gate decide` does: tasks.gates.deciding.decide_gate records the decision and
flows.resume.resume_waiting_run wakes the run. Measured from the start of decide_gate until
- the flow run leaves PAUSED in Prefect's API (polled every 20 ms), and
- the flow's own code runs again (its first task function after the decision is entered: the reconciliation, or
  `record-gate-decision` for a decision made through Prefect's form).
Three round trips in the product's run: the batch's last two district gates, then the city gate they
open. The second is decided the way a person at a terminal does it, `sanjin gate decide` in a new
process, measured from the command's start (imports included) and reported apart (`cli`); the figure
itself is the worst of the in-process ones.

Baseline, same process, the next batch: the in-process round trips (its last district gate, then the
city gate) with the flow pausing at Prefect's default pause poll interval (10 s,
`pause_flow_run(poll_interval=…)`'s default).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, fresh_database, reviewer, setup_program, shanghai
from benchmarks.instrument import TaskProbe, peak_rss_mb
from benchmarks.orchestration import read_flow_run_state, run_flow


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    import flows.steps
    import flows.waiting
    from benchmarks.data import make_institutions
    from sanjin.demo_data import APPLICATION_HEADER, write_xlsx
    from tasks.intake.application_import import import_applications
    from tasks.phases.enrollment import reconcile_enrollment

    home = Path(cfg["home"])
    g = int(cfg["gate_institutions"])
    baseline_poll = int(cfg["gate_baseline_poll"])
    rows = make_institutions(2 * g, seed=5)
    first = write_xlsx(home / "applications-1.xlsx", APPLICATION_HEADER, [r.row for r in rows[:g]])
    second = write_xlsx(home / "applications-2.xlsx", APPLICATION_HEADER, [r.row for r in rows[g:]])
    probe = TaskProbe()
    probe.wrap_modules(flows.steps, flows.waiting)
    with fresh_database(cfg["db"], home, name="gate") as db:
        engine = db.engine
        clock = setup_program(engine, home, shanghai(9, 15))
        import_applications(engine, SLUG, first, clock=clock, actor="benchmark")
        reconcile_enrollment(engine, SLUG, clock=clock)
        clock.set(shanghai(9, 22))
        reconcile_enrollment(engine, SLUG, clock=clock)  # batch 1 declared, its district gates open
        _decide_all_but(engine, clock, keep=2)
        import_applications(engine, SLUG, second, clock=clock, actor="benchmark")  # batch 2, for the baseline

        product = _round_trips(engine, clock, probe, poll_seconds=1, cli_trips=frozenset({1}))
        rss_product = round(peak_rss_mb(), 1)

        clock.set(shanghai(10, 1))  # the window has closed: batch 2 is declared
        reconcile_enrollment(engine, SLUG, clock=clock)
        _decide_all_but(engine, clock, keep=1)
        baseline = _round_trips(engine, clock, probe, poll_seconds=baseline_poll)
        checks = _checks(engine, 2 * g, product, baseline)
    probe.restore()
    in_process = [t for t in product["round_trips"] if t["via"] == "in-process"]
    cli = [t for t in product["round_trips"] if t["via"] == "cli"]
    return {
        "institutions_per_batch": g, "poll_seconds": 1, "db": cfg["db"],
        "round_trips": product["round_trips"],
        "seconds": max(t["left_paused_s"] for t in in_process),
        "flow_running_seconds": max(t["flow_running_s"] for t in in_process),
        "cli": {"what": "`sanjin gate decide … --approve-rest` in a new process, from the command's start",
                "process_seconds": max(t["process_s"] for t in cli),
                "seconds": max(t["left_paused_s"] for t in cli),
                "flow_running_seconds": max(t["flow_running_s"] for t in cli)},
        "flow_state": product["flow_state"], "flow_result_running": product["running"],
        "baseline": {"what": "the same round trips with the pause polling every "
                             f"{baseline_poll} s (Prefect's pause_flow_run default)",
                     "poll_seconds": baseline_poll, "round_trips": baseline["round_trips"],
                     "seconds": max(t["left_paused_s"] for t in baseline["round_trips"]),
                     "flow_running_seconds": max(t["flow_running_s"] for t in baseline["round_trips"]),
                     "flow_state": baseline["flow_state"]},
        "task_runs": probe.snapshot()[0],
        "checks": checks,
        "peak_rss_mb_product": rss_product,
    }


def _decide_all_but(engine: Any, clock: Any, *, keep: int) -> None:
    """Decide every open district gate but the last `keep`, so the waiting run has those to wait on."""
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import list_gates

    gates = list_gates(engine)
    assert len(gates) >= keep, f"fewer than {keep} gates are open"
    for gate in gates[:-keep]:
        assert gate.id is not None
        decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)


def _wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def _decide_with_cli(gate_id: int, user: str) -> str:
    """`sanjin gate decide` as a person runs it: a new process, reaching the same database and Prefect API
    through the environment (SANJIN_DATABASE_URL, PREFECT_API_URL); returns what it printed last."""
    command = [str(Path(sys.executable).with_name("sanjin")), "gate", "decide", str(gate_id), "--approve-rest",
               "--as", user]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"sanjin gate decide failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _round_trips(engine: Any, clock: Any, probe: TaskProbe, *, poll_seconds: int,
                 cli_trips: frozenset[int] = frozenset()) -> dict[str, Any]:
    from sqlmodel import Session, select

    from flows.enrollment import enrollment_flow
    from flows.resume import resume_waiting_run
    from models.enrollment import Gate
    from models.states import GateState
    from tasks.gates.deciding import decide_gate

    tag = f"bench-gate-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, Any] = {}

    def waiting() -> None:
        try:
            outcome["call"] = asyncio.run(run_flow(enrollment_flow, SLUG, tag=tag, wait=True,
                                                   poll_seconds=poll_seconds))
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(waiting,), daemon=True)
    thread.start()

    def waiting_gate() -> Gate | str | None:
        if not thread.is_alive():
            return "finished"
        with Session(engine) as session:
            gate = session.exec(select(Gate).where(Gate.state == GateState.OPEN,
                                                   Gate.flow_run_id.is_not(None))).first()  # type: ignore[union-attr]
        if gate is not None and read_flow_run_state(gate.flow_run_id or "") == "PAUSED":
            return gate
        return None

    trips: list[dict[str, Any]] = []
    while True:
        gate = _wait_for(waiting_gate, timeout=120, what="the flow to pause on a gate", interval=0.1)
        if gate == "finished":
            break
        assert isinstance(gate, Gate) and gate.id is not None
        user = reviewer(gate.district)
        mark = len(probe.started)
        via = "cli" if len(trips) in cli_trips else "in-process"
        t0 = time.perf_counter()
        if via == "cli":
            message = _decide_with_cli(gate.id, user)
            t1 = t2 = time.perf_counter()
        else:
            result = decide_gate(engine, gate.id, approve=gate.items, user_name=user, clock=clock)
            t1 = time.perf_counter()
            message = resume_waiting_run(result, user)
            t2 = time.perf_counter()
        # Left PAUSED: seen in the API, or its code already ran again — a `sanjin gate decide` process can still be
        # exiting when the woken run has recorded, reconciled and paused again at the next gate (seen under load).
        # The woken run's first task: a decision made through the CLI or web is already in the database, so the run
        # goes straight to reconciling (flows/waiting.py); one made through Prefect's form is recorded first.
        _wait_for(lambda g=gate, m=mark, s=t0: read_flow_run_state(g.flow_run_id or "") != "PAUSED" or any(
            ts > s for _name, ts in probe.started[m:]), timeout=60, what="the run to leave PAUSED")
        t3 = time.perf_counter()
        t4 = _wait_for(lambda m=mark, s=t0: next((ts for _name, ts in probe.started[m:] if ts > s), None),
                       timeout=max(60, 3 * poll_seconds), what="the flow to run again", interval=0.005)
        trip = {"gate": gate.kind.value, "via": via, "items": len(gate.items), "left_paused_s": round(t3 - t0, 3),
                "flow_running_s": round(t4 - t0, 3), "resume_message": message}
        trip.update({"process_s": round(t1 - t0, 3)} if via == "cli" else
                    {"decide_s": round(t1 - t0, 3), "resume_call_s": round(t2 - t1, 3)})
        trips.append(trip)
        if len(trips) > 10:
            raise RuntimeError("the flow keeps waiting: more than 10 gates")
    thread.join(timeout=120)
    if "error" in outcome:
        raise RuntimeError(f"the waiting flow failed: {outcome['error']!r}") from outcome["error"]
    call = outcome["call"]
    return {"round_trips": trips, "flow_state": call.state, "running": call.result["running"]}


def _checks(engine: Any, institutions: int, product: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlmodel import Session

    from models.enrollment import Application
    from models.states import ApplicationState

    with Session(engine) as session:
        running = int(session.execute(select(func.count()).where(
            Application.state == ApplicationState.RUNNING)).scalar_one())
    kinds = [t["gate"] for t in product["round_trips"]], [t["gate"] for t in baseline["round_trips"]]
    ok = (running == institutions and product["flow_state"] == baseline["flow_state"] == "COMPLETED"
          and kinds[0] == ["district_review", "district_review", "city_review"]
          and kinds[1] == ["district_review", "city_review"])
    return {"running_applications": running, "expected_running": institutions, "gates": kinds, "ok": ok}
