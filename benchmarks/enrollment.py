# mypy: disable-error-code="arg-type,call-overload,union-attr,attr-defined,misc"
# (SQLModel types column attributes as plain values, so query expressions confuse mypy; as in sanjin/demo.py.)
"""Figure 1 (and the inputs of 6): enrollment of N institutions through the product's flows.

import (XLSX, tasks.intake.application_import.import_applications, which validates every cell) → batching (the
enrollment flow, tasks.phases.enrollment.reconcile_enrollment) → district review (one decide_gate per
district gate, approving every item) → city gate (flow) → city review (one decide_gate) → the
batch runs and the institution list is published (flow) → accounts and contracts (their flows).

Baselines, on the same generated rows in the same process:
- one Prefect task run per institution: a small flow mapping a trivial task over a sample of
  institution codes, extrapolated linearly (fixed cost of the empty flow + per-task cost × N);
- ORM row by row: Institution and Application added with session.add + flush per application
  into a scratch database, on a sample, extrapolated linearly (× N / sample).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.cpu import CpuMeter
from benchmarks.env import SLUG, fresh_database, reviewer, setup_program, shanghai
from benchmarks.instrument import Stopwatch, TaskProbe, peak_rss_mb, sqlite_log_state
from benchmarks.orchestration import FlowCall, api_counts, recorder_enabled, run_flow
from benchmarks.profiling import profiled

EXPECTED_TASKS = {"reconcile-enrollment": 4, "reconcile-accounts": 1, "reconcile-contracts": 1}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.cpu import install
    from benchmarks.data import make_institutions
    from sanjin.demo_data import APPLICATION_HEADER, write_xlsx

    install()  # before any engine connects: a PostgreSQL backend opened earlier would not be counted

    home = Path(cfg["home"])
    n = int(cfg["institutions"])
    sample = min(int(cfg["sample"]), n)
    profile_dir = Path(cfg["profile_dir"]) if cfg.get("profile_dir") else None
    profiles: dict[str, Any] = {}

    t0 = time.perf_counter()
    rows = make_institutions(n)
    xlsx = write_xlsx(home / "applications.xlsx", APPLICATION_HEADER, [r.row for r in rows])
    setup_seconds = time.perf_counter() - t0

    with fresh_database(cfg["db"], home, name="enrollment") as db:
        product = _product_run(db, home, xlsx, n, profile_dir, profiles)
        product["audit_chain"] = _chain_check(db.engine)
    product["peak_rss_mb_product"] = round(peak_rss_mb(), 1)
    product["sealing"] = _unsealed_comparison(cfg, home, xlsx, n, product)
    product["floor"] = _floor(cfg, home, xlsx, product, product["sealing"])

    orm = _orm_baseline(cfg["db"], home, rows[:sample], n)
    per_institution = _per_institution_baseline(rows[:sample], n)
    return {
        "institutions": n, "db": cfg["db"], "setup_seconds_untimed": round(setup_seconds, 2),
        "xlsx_bytes": xlsx.stat().st_size, **product,
        "baselines": {"orm_row_by_row": orm, "task_run_per_institution": per_institution},
        "profiles": profiles,
    }


def _product_run(db: Any, home: Path, xlsx: Path, n: int, profile_dir: Path | None,
                 profiles: dict[str, Any]) -> dict[str, Any]:
    import flows.steps
    import flows.waiting
    import tasks.lists.versions
    import tasks.status
    from benchmarks.env import quiet_heartbeat
    from flows.accounts import accounts_flow
    from flows.contracts import contracts_flow
    from flows.enrollment import enrollment_flow
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import list_gates
    from tasks.intake.application_import import import_applications

    engine = db.engine
    clock = setup_program(engine, home, shanghai(9, 15))
    probe = TaskProbe()
    probe.wrap_modules(flows.steps, flows.waiting)
    # Product code the flows run outside any task (progress_artifact's status query), and the
    # list publication inside the enrollment reconciler: timed, not counted as task runs.
    # Both are imported where they are called (flows/steps.py, tasks/phases/enrollment.py), so they are timed
    # in the modules that define them; in this run only the enrollment reconciler publishes.
    probe.time_function(tasks.status, "program_status", "flow body: program_status")
    probe.time_function(tasks.lists.versions, "publish_list", "publish_list (inside reconcile)")
    tag = f"bench-enrollment-{db.kind}-{uuid.uuid4().hex[:8]}"
    watch = Stopwatch()
    calls: list[FlowCall] = []
    decisions: list[dict[str, Any]] = []

    def decide_open(kind: str) -> None:
        for gate in list_gates(engine):
            assert gate.id is not None
            start = time.perf_counter()
            result = decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)
            decisions.append({"kind": kind, "gate": gate.id, "items": len(gate.items), "state": result.state.value,
                              "seconds": round(time.perf_counter() - start, 3)})

    phase_flows = {"accounts": accounts_flow, "contracts": contracts_flow}

    async def flow(stage: str) -> Any:
        call = await run_flow(phase_flows.get(stage, enrollment_flow), SLUG, tag=tag)
        calls.append(call)
        if call.error is not None:
            raise RuntimeError(f"{call.name} ended {call.state}: {call.error}")
        return call.result

    out: dict[str, Any] = {}
    failure: dict[str, Any] = {}
    cpu_stages: dict[str, float] = {}
    cpu_split: dict[str, dict[str, Any]] = {}
    sqlite_log: dict[str, dict[str, Any]] = {}
    database_file = engine.url.database if engine.dialect.name == "sqlite" else None
    collector = CollectorMeter()

    @contextmanager
    def stage(name: str, profile: str) -> Iterator[None]:
        """The stage's wall time (the Stopwatch), its CPU wherever it ran (benchmarks/cpu.py) split by where
        (main thread, the SQLite log's copier, other threads, API server, database), the cycle collector's share of
        it, its profile, and on SQLite the log at its start and end (what was still to copy; whether it restarted)."""
        log_start = sqlite_log_state(database_file) if database_file else None
        meter = CpuMeter().start()
        try:
            with watch.stage(name), collector.stage(name), profiled(profile_dir, profile, profiles):
                yield
        finally:
            meter.stop()
            cpu_stages[name] = round(meter.total, 3)
            cpu_split[name] = {**meter.threads, "api_server": None if meter.api is None else round(meter.api, 3),
                               "database_backends": round(meter.database, 3)}
            if database_file:
                sqlite_log[name] = {"at_start": log_start, "at_end": sqlite_log_state(database_file)}

    async def pipeline() -> None:
        from flows.clients import shared_api_clients

        try:
            async with shared_api_clients():  # as the demo and `sanjin run` do: one client pair per process
                await stages()
        except Exception as exc:  # a product failure at this size: report the stage, keep what was measured
            failure.update(stage=list(watch.stages)[-1] if watch.stages else None,
                           error=f"{exc.__class__.__name__}: {str(exc)[:2000]}")

    async def stages() -> None:
        with stage("import + validation (import_applications)", "1-import"):
            result = import_applications(engine, SLUG, xlsx, clock=clock, actor="benchmark")
        out["imported"] = result.created
        with stage("batching: assign (enrollment_flow)", "1-flow-assign"):
            await flow("assign")
        clock.set(shanghai(9, 22))  # after the first cut-off (2025-09-19): the batch is declared
        with stage("batching: declare + district gates (enrollment_flow)", "1-flow-declare"):
            report = await flow("declare")
        out["district_gates"] = len(report["open_gate_ids"])
        with stage("district review (decide_gate × districts)", "1-district-decide"):
            decide_open("district")
        with stage("city gate (enrollment_flow)", "1-flow-city-gate"):
            report = await flow("city")
        out["city_gates"] = len(report["open_gate_ids"])
        with stage("city review (decide_gate)", "1-city-decide"):
            decide_open("city")
        with stage("batch runs + institution list published (enrollment_flow)", "1-flow-run-publish"):
            report = await flow("run")
        out["batches_running"] = report["running"]
        with stage("accounts (accounts_flow)", "1-flow-accounts"):
            accounts = await flow("accounts")
        out["accounts_created_by_reconcile"] = accounts["created"]
        with stage("contracts (contracts_flow)", "1-flow-contracts"):
            contracts = await flow("contracts")
        out["contracts_created"] = contracts["created"]

    with quiet_heartbeat():
        meter = CpuMeter().start()
        asyncio.run(pipeline())
        cpu = meter.stop()
        outcome = out
        api = asyncio.run(api_counts(tag, expect_task_runs=probe.task_runs())) if recorder_enabled() else None
    counts, seconds = probe.snapshot()
    probe.restore()
    flows_seconds = sum(c.seconds for c in calls)
    task_seconds = sum(v for k, v in seconds.items() if k in counts)
    body_seconds = seconds.get("flow body: program_status", 0.0)
    return {
        "seconds": round(watch.total(), 3),
        # CPU seconds wherever the run's work ran (benchmarks/cpu.py: this process, with SQLite's engine in it;
        # the API server; PostgreSQL's backends): on a loaded machine the wall time of two runs differs by more
        # than what they do, their CPU much less.
        "cpu_seconds": round(cpu.total, 3),
        "cpu": cpu.as_dict(),
        "stages": {k: round(v, 3) for k, v in watch.stages.items()},
        "cpu_stages": cpu_stages,
        # Each stage's CPU by where it ran: a stage pays for copying the log its predecessors wrote (the log_copier
        # thread, or the main thread when a commit crossed the backstop), which the stage harness never counts.
        "cpu_stages_split": cpu_split,
        "sqlite_log_stages": sqlite_log or None,
        "collector": collector.report(),
        "failure": failure or None,
        "outcome": outcome,
        "checks": _checks(engine, n),
        "decisions": _summarize_decisions(decisions),
        "flows": [{"flow": c.name, "seconds": round(c.seconds, 3), "state": c.state, "error": c.error}
                  for c in calls],
        "task_runs": {"client_side": sum(counts.values()), "by_task": counts,
                      "expected": sum(EXPECTED_TASKS.values()),
                      "api": api, "api_note": None if api is not None else
                      "task-run recorder disabled on the API: Prefect's API does not learn of task runs"},
        "time_in": {
            "flows_wall": round(flows_seconds, 3),
            "task_functions": round(task_seconds, 3),
            "task_functions_by_task": {k: round(v, 3) for k, v in seconds.items() if k in counts},
            "flow_bodies_product_code": round(body_seconds, 3),
            "publish_list_inside_reconcile": round(seconds.get("publish_list (inside reconcile)", 0.0), 3),
            "outside_prefect": round(watch.total() - flows_seconds, 3),
        },
    }


class CollectorMeter:
    """CPU seconds Python's cycle collector took in each stage, by generation (this process only).

    Why: figure 1's process holds Prefect, its client and FastAPI's models (~300,000 tracked objects, three
    times the stage harness's), and a full collection walks them all; a stage that keeps 100,000 new tuples
    alive triggers some. The stage harness (benchmarks.enrollment_stages) does not show this cost.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.counts: dict[str, list[int]] = {}
        self._current: str | None = None
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        elif self._current is not None:
            generation = info["generation"]
            self.seconds[self._current][generation] += time.process_time() - self._started
            self.counts[self._current][generation] += 1

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        import gc

        self._current = name
        self.seconds[name], self.counts[name] = [0.0, 0.0, 0.0], [0, 0, 0]
        gc.callbacks.append(self._callback)
        try:
            yield
        finally:
            gc.callbacks.remove(self._callback)
            self._current = None

    def report(self) -> dict[str, Any]:
        import gc

        return {"tracked_objects_at_end": len(gc.get_objects()),
                "seconds": round(sum(map(sum, self.seconds.values())), 3),
                "stages": {name: {"seconds": round(sum(s), 3), "by_generation": [round(x, 3) for x in s],
                                  "collections": self.counts[name]} for name, s in self.seconds.items()}}


def _chain_check(engine: Any) -> dict[str, Any]:
    """The audit trail the run wrote verifies (untimed): every chain walked, as `sanjin audit verify` does."""
    from core.audit_chain import verify_chain

    start = time.perf_counter()
    with engine.connect() as conn:
        report = verify_chain(conn)
    return {"rows": report.rows, "intact": report.broken is None,
            "broken": report.broken.message() if report.broken else None,
            "verify_seconds_untimed": round(time.perf_counter() - start, 3)}


def _unsealed_comparison(cfg: dict[str, Any], home: Path, xlsx: Path, n: int, sealed: dict[str, Any]
                         ) -> dict[str, Any]:
    """Figure 1 again in this process, in pairs with the audit seal switched off and on (issue #18: no loss of bulk
    write speed), each run in a fresh database; the cost is the medians' difference.

    One pair was a coin toss: on a shared machine two runs of the same code differed by more than the seal costs
    (+7 % one day, +19 % the next). The pairs alternate which runs first (off-on, on-off, …), so a machine that
    slows down or warms up during the comparison weighs on both sides alike. Figure 1's own run comes first and
    alone pays this process's first-flow start-up; it is shown, not compared.
    """
    from core.audit_chain import set_sealing

    pairs = max(1, int(cfg.get("seal_pairs") or SEAL_PAIRS))
    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for i in range(pairs):
        for seal in ((False, True) if i % 2 == 0 else (True, False)):
            set_sealing(seal)
            try:
                with fresh_database(cfg["db"], home, name=f"enrollment_{'sealed' if seal else 'unsealed'}_{i}") as db:
                    runs[seal].append(_product_run(db, home, xlsx, n, None, {}))
            finally:
                set_sealing(True)
    on, off = runs[True], runs[False]
    a, b = _median([r["seconds"] for r in on]), _median([r["seconds"] for r in off])
    ca, cb = _median([r["cpu_seconds"] for r in on]), _median([r["cpu_seconds"] for r in off])
    return {"sealed_seconds": a, "unsealed_seconds": b, "cost_seconds": round(a - b, 3),
            "cost_percent": round(100 * (a - b) / b, 1) if b else None, "target_percent": 5.0,
            "sealed_cpu_seconds": ca, "unsealed_cpu_seconds": cb,
            "cpu_cost_percent": round(100 * (ca - cb) / cb, 1) if cb else None,
            "pairs": pairs,
            "pair_cost_percent": [round(100 * (x["seconds"] - y["seconds"]) / y["seconds"], 1)
                                  for x, y in zip(on, off, strict=True)],
            "pair_cpu_cost_percent": [round(100 * (x["cpu_seconds"] - y["cpu_seconds"]) / y["cpu_seconds"], 1)
                                      for x, y in zip(on, off, strict=True)],
            "pair_spread": _spread([round(100 * (x["seconds"] - y["seconds"]) / y["seconds"], 1)
                                    for x, y in zip(on, off, strict=True)]),
            "pair_cpu_spread": _spread([round(100 * (x["cpu_seconds"] - y["cpu_seconds"]) / y["cpu_seconds"], 1)
                                        for x, y in zip(on, off, strict=True)]),
            "sealed_runs_seconds": [r["seconds"] for r in on], "unsealed_runs_seconds": [r["seconds"] for r in off],
            "sealed_runs_cpu_seconds": [r["cpu_seconds"] for r in on],
            "unsealed_runs_cpu_seconds": [r["cpu_seconds"] for r in off],
            "first_run_sealed_seconds": sealed["seconds"],
            "sealed_cpu": _median_run(on, "cpu_seconds")["cpu"], "unsealed_cpu": _median_run(off, "cpu_seconds")["cpu"],
            "sealed_stages": _median_stages(on, "stages"), "unsealed_stages": _median_stages(off, "stages"),
            "sealed_cpu_stages": _median_stages(on, "cpu_stages"),
            "unsealed_cpu_stages": _median_stages(off, "cpu_stages"),
            "failures": [r["failure"] for r in off + on if r["failure"]],
            "checks_ok": all(r["checks"]["ok"] for r in off + on),
            "order": f"figure 1 (sealed, first in the process), then {pairs} pairs seal off/on, alternating which "
                     "runs first: medians compared"}


SEAL_PAIRS = 3  # unsealed/sealed pairs of figure 1 after its own run (benchmarks --seal-pairs)


def _spread(costs: list[float]) -> dict[str, float]:
    """The pairs' costs summarised so a figure can be cited with its scatter: their median, min and max, and the
    quartiles (`statistics.quantiles`, inclusive; with fewer than 4 pairs the quartiles are little more than
    min and max). The medians of the sealed and the unsealed runs (`cost_percent`) are not the pairs' median."""
    if len(costs) < 2:
        return {"median": costs[0], "min": costs[0], "max": costs[0], "q1": costs[0], "q3": costs[0]} if costs else {}
    q1, _, q3 = statistics.quantiles(costs, n=4, method="inclusive")
    return {"median": round(statistics.median(costs), 1), "min": min(costs), "max": max(costs),
            "q1": round(q1, 1), "q3": round(q3, 1)}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the median (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r[key])[(len(runs) - 1) // 2]


def _median_stages(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Each stage's median over the runs (stages a failed run did not reach are left out of its median)."""
    names = list(dict.fromkeys(name for r in runs for name in r[key]))
    return {name: _median([r[key][name] for r in runs if name in r[key]]) for name in names}


def _floor(cfg: dict[str, Any], home: Path, xlsx: Path, product: dict[str, Any], sealing: dict[str, Any]
           ) -> dict[str, Any]:
    """The plain script of benchmarks/enrollment_floor.py on the same file, same database kind, same process.

    The floor runs last, in a process whose modules, statement caches and Prefect clients the product's runs
    have warmed; figure 1 ran first and paid that warm-up. So the ratio is given twice: figure 1's (the
    figure), and that of the product's third run (sealed, warm, `sealing.sealed_seconds`) — what a long-running
    worker pays per enrollment. Then the same-I/O floor (every row figure 1 writes, `run_same_io_floor`), in a
    database of its own, with its own ratios under `same_io`.
    """
    from benchmarks.enrollment_floor import run_floor, run_same_io_floor

    with fresh_database(cfg["db"], home, name="enrollment_floor", migrate=False, make_current=False) as db:
        floor = run_floor(db.engine, xlsx)
    with fresh_database(cfg["db"], home, name="enrollment_floor_same_io", migrate=False, make_current=False) as db:
        same_io = run_same_io_floor(db.engine, xlsx)
    target = 2.0 if cfg["db"] == "sqlite" else 3.0
    return {**_ratios(floor, product, sealing, target), "same_io": _ratios(same_io, product, sealing, target)}


def _ratios(floor: dict[str, Any], product: dict[str, Any], sealing: dict[str, Any], target: float
            ) -> dict[str, Any]:
    ratio = round(product["seconds"] / floor["seconds"], 2) if floor["seconds"] else None
    cpu_ratio = round(product["cpu_seconds"] / floor["cpu_seconds"], 2) if floor["cpu_seconds"] else None
    return {**floor, "product_seconds": product["seconds"], "ratio": ratio, "target_ratio": target,
            "verdict": None if ratio is None else "met" if ratio <= target else "MISSED",
            # CPU wherever each ran (the product's includes the Prefect API server's): what load moves least.
            "product_cpu_seconds": product["cpu_seconds"], "cpu_ratio": cpu_ratio,
            "cpu_verdict": None if cpu_ratio is None else "met" if cpu_ratio <= target else "MISSED",
            "warm_product_seconds": sealing["sealed_seconds"], "warm_product_cpu_seconds": sealing["sealed_cpu_seconds"],
            "warm_ratio": round(sealing["sealed_seconds"] / floor["seconds"], 2) if floor["seconds"] else None,
            "warm_cpu_ratio": round(sealing["sealed_cpu_seconds"] / floor["cpu_seconds"], 2)
            if floor["cpu_seconds"] else None}


def _summarize_decisions(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("district", "city"):
        mine = [d for d in decisions if d["kind"] == kind]
        out[kind] = {"gates": len(mine), "items": sum(d["items"] for d in mine),
                     "seconds": round(sum(d["seconds"] for d in mine), 3),
                     "slowest": max(mine, key=lambda d: d["seconds"]) if mine else None,
                     "states": sorted({d["state"] for d in mine})}
    return out


def _checks(engine: Any, n: int) -> dict[str, Any]:
    """What the run must have produced, counted in the database."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from models.catalog import ListEntry, ListVersion
    from models.enrollment import Application, Batch, Gate
    from models.operations import PlatformAccount
    from models.outbox import Notice
    from models.states import ApplicationState, GateState, ListKind

    with Session(engine) as session:
        def count(*where: Any, table: Any = None) -> int:
            query = select(func.count()).select_from(table) if table is not None else select(func.count())
            return int(session.execute(query.where(*where)).scalar_one())

        latest = session.execute(select(ListVersion).where(ListVersion.kind == ListKind.INSTITUTIONS)
                                 .order_by(ListVersion.number.desc())).scalars().first()  # type: ignore[attr-defined]
        checks = {
            "running_applications": count(Application.state == ApplicationState.RUNNING, table=Application),
            "batches": count(table=Batch),
            "gates_decided": count(Gate.state == GateState.DECIDED, table=Gate),
            "gates_open": count(Gate.state == GateState.OPEN, table=Gate),
            "institution_list_versions": count(ListVersion.kind == ListKind.INSTITUTIONS, table=ListVersion),
            "institution_list_entries": count(ListEntry.version_id == latest.id, table=ListEntry) if latest else 0,
            "institution_list_entry_count": latest.entry_count if latest else 0,
            "platform_accounts": count(table=PlatformAccount),
            "notices": count(table=Notice),
        }
    checks["ok"] = (checks["running_applications"] == n and checks["institution_list_entries"] == n
                    and checks["institution_list_entry_count"] == n and checks["platform_accounts"] == n
                    and checks["batches"] == 1 and checks["gates_open"] == 0 and checks["gates_decided"] > 1)
    return checks


def _orm_baseline(kind: str, home: Path, rows: list[Any], n: int) -> dict[str, Any]:
    """Institution + Application added and flushed one application at a time, into a scratch database."""
    from sqlmodel import Session

    from benchmarks.env import benchmark_program_file
    from models.clock import FixedClock
    from models.enrollment import Application, Institution
    from models.states import KIND_LABELS, ApplicationState
    from tasks.programs import get_program, load_program

    kinds = {label: kind for kind, label in KIND_LABELS.items()}
    when = shanghai(9, 15)
    with fresh_database(kind, home, name="orm_baseline", make_current=False) as db:
        load_program(db.engine, benchmark_program_file(home), clock=FixedClock(when))
        with Session(db.engine) as session:
            program, _ = get_program(session, SLUG)
            ids: dict[str, int] = {}
            start = time.perf_counter()
            for r in rows:
                row = r.row
                inst = Institution(
                    name=row["单位名称"], address=row["单位地址"], uscc=row["统一社会信用代码"], legal_rep=row["法人代表"],
                    insurance_code=row["机构医保编码"], contact_name=row["联系人"], phone=row["联系电话"],
                    email=row["电子邮箱"] or None, district=row["所属区县"], kind=kinds[row["机构类别"]],
                    private_tertiary=row["民营三级"] == "是", special_designated=row["特药定点"] == "是",
                    proxy_parent_id=ids.get(row["代采上级机构医保编码"]))
                session.add(inst)
                session.flush()
                assert inst.id is not None
                ids[row["机构医保编码"]] = inst.id
                session.add(Application(program_id=program.id or 0, institution_id=inst.id, district=inst.district,
                                        state=ApplicationState.SUBMITTED,
                                        committed_drug_count=int(row["承诺配备药品数量"]),
                                        participation_years=int(row["承诺参加年限"]), submitted_at=when))
                session.flush()
            session.commit()
            seconds = time.perf_counter() - start
    extrapolated = seconds * n / len(rows) if rows else 0.0
    return {"what": "session.add + flush per institution and per application (no parsing, no validation, "
                    "no audit rows, no notices)",
            "sample": len(rows), "sample_seconds": round(seconds, 3), "extrapolated_to": n,
            "seconds": round(extrapolated, 3), "extrapolated": len(rows) < n,
            "rows_per_second": round(len(rows) / seconds) if seconds else None}


def _per_institution_baseline(rows: list[Any], n: int) -> dict[str, Any]:
    """A flow mapping a trivial task over institution codes: one Prefect task run per institution."""
    from prefect import flow, task

    from benchmarks.env import quiet_heartbeat

    @task(name="bench-touch-institution")
    def touch(code: str) -> str:
        return code

    @flow(name="bench-task-run-per-institution")
    def per_institution(codes: list[str]) -> int:
        return len(touch.map(codes).result())

    probe = TaskProbe()
    probe.wrap_task(touch)
    codes = [r.code for r in rows]
    tag = f"bench-per-institution-{uuid.uuid4().hex[:8]}"
    from prefect import tags

    with quiet_heartbeat(), tags(tag):
        start = time.perf_counter()
        per_institution([])
        empty = time.perf_counter() - start
        start = time.perf_counter()
        done = per_institution(codes)
        seconds = time.perf_counter() - start
    assert done == len(codes)
    api = asyncio.run(api_counts(tag, expect_task_runs=len(codes))) if recorder_enabled() else None
    per_task = (seconds - empty) / len(codes) if codes else 0.0
    extrapolated = empty + per_task * n
    return {"what": "flow mapping a trivial task over the institutions (Task.map, Prefect's default thread pool)",
            "sample": len(codes), "sample_seconds": round(seconds, 3), "empty_flow_seconds": round(empty, 3),
            "per_task_run_ms": round(per_task * 1000, 3), "extrapolated_to": n,
            "seconds": round(extrapolated, 3), "extrapolated": len(codes) < n,
            "task_runs_client_side": probe.task_runs(), "task_runs_at_n": n, "api": api}
