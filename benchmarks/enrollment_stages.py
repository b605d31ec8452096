"""Figure 1's stages one at a time, without Prefect, each from a saved database: for iterating on one stage.

    python -m benchmarks.enrollment_stages build DIR N     # the XLSX, and a SQLite snapshot before each stage
    python -m benchmarks.enrollment_stages time DIR STAGE K   # K runs of STAGE, each from its snapshot
    SANJIN_BENCH_SEAL=0 python -m benchmarks.enrollment_stages time DIR STAGE K   # the same with the seal off

A full figure-1 run takes minutes and its wall time moves with the machine's load; a stage from a snapshot
takes seconds, and alternating two checkouts (run this from each) gives their CPU seconds side by side. The
stages call what the flows' tasks call (reconcile_enrollment, decide_gate, …); Prefect's share is figure 6's.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

STAGES = ["import", "assign", "declare", "district", "citygate", "city", "run", "accounts", "contracts"]


def _engine(path: Path) -> Any:
    from benchmarks.env import _use_url
    from core.db import shared_engine

    url = f"sqlite:///{path}"
    _use_url(url)
    return shared_engine(url)


def _stage(stage: str, engine: Any, xlsx: Path) -> None:
    from benchmarks.env import SLUG, reviewer, shanghai
    from core.clock_store import DatabaseClock

    clock = DatabaseClock(engine)
    if stage == "import":
        from tasks.intake.application_import import import_applications

        import_applications(engine, SLUG, xlsx, clock=clock, actor="benchmark")
    elif stage in ("assign", "declare", "citygate", "run"):
        from tasks.phases.enrollment import reconcile_enrollment

        if stage == "declare":
            clock.set(shanghai(9, 22))  # after the first cut-off, as figure 1
        reconcile_enrollment(engine, SLUG, clock=clock)
    elif stage in ("district", "city"):
        from tasks.gates.deciding import decide_gate
        from tasks.gates.rows import list_gates

        for gate in list_gates(engine):
            assert gate.id is not None
            decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer(gate.district), clock=clock)
    elif stage == "accounts":
        from tasks.platform.accounts import reconcile_accounts

        reconcile_accounts(engine, SLUG, clock=clock)
    else:
        from tasks.platform.contracts import reconcile_contracts

        reconcile_contracts(engine, SLUG, clock=clock)


def _copy(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def build(out: Path, n: int) -> None:
    from benchmarks.data import make_institutions
    from benchmarks.env import setup_program, shanghai
    from core.migrate import upgrade
    from sanjin.demo_data import APPLICATION_HEADER, write_xlsx

    rows = make_institutions(n)
    xlsx = write_xlsx(out / "applications.xlsx", APPLICATION_HEADER, [r.row for r in rows])
    work = out / "work.db"
    _copy(out / "none", work)
    engine = _engine(work)
    upgrade(engine)
    setup_program(engine, out / "home", shanghai(9, 15))
    for i, stage in enumerate(STAGES):
        with engine.connect() as conn:  # the snapshot holds no log: each timed stage starts alike
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _copy(work, out / f"s{i}.db")
        engine = _engine(work)
        _stage(stage, engine, xlsx)


def time_stage(out: Path, stage: str, runs: int) -> None:
    # Imported before the clock starts: imports are not the stage's time.
    import tasks.gates.deciding
    import tasks.intake.application_import
    import tasks.phases.enrollment
    import tasks.platform.accounts
    import tasks.platform.contracts  # noqa: F401

    work = out / "work.db"
    for run in range(runs):
        _copy(out / f"s{STAGES.index(stage)}.db", work)
        engine = _engine(work)
        cpu, wall = time.process_time(), time.perf_counter()
        _stage(stage, engine, out / "applications.xlsx")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        copy = _own_log_copy(work)
        print(f"{stage} run {run}: wall {wall:.3f} s, CPU {cpu:.3f} s, load {os.getloadavg()[0]:.1f}; "
              f"then copying its own log {copy:.3f} s of CPU", flush=True)
        engine.dispose()


def _own_log_copy(work: Path, timeout: float = 20.0) -> float:
    """CPU seconds this process spends after the stage until the stage's log is copied into the database file.

    The clock above stops at the stage's last commit; its log is copied afterwards by the engine's copier thread
    (core.wal_checkpointer). In figure 1 that copy lands in the next stage's CPU, or in the commit that crosses the
    backstop (the city decision's or the batch run's): a stage compared between the two without this looked twice
    as dear in figure 1 (issue #17, session 15). Printed apart, so the stage's own figure stays comparable with earlier
    sessions'.
    """
    from benchmarks.instrument import sqlite_log_state

    cpu, deadline = time.process_time(), time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        state = sqlite_log_state(str(work))
        if state is None or state["copied"] == state["frames"]:
            break
        time.sleep(0.02)
    return time.process_time() - cpu


def main(argv: list[str]) -> None:
    from benchmarks.env import prepare_process

    command, out = argv[0], Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    prepare_process(out / "home")
    os.environ["SANJIN_CLOCK"] = "database"
    if os.environ.get("SANJIN_BENCH_SEAL", "1") == "0":  # issue #18's comparison, as figure 1's --seal-pairs
        from core.audit_chain import set_sealing

        set_sealing(False)
    if command == "build":
        build(out, int(argv[2]))
    else:
        time_stage(out, argv[2], int(argv[3]) if len(argv) > 3 else 3)


if __name__ == "__main__":
    main(sys.argv[1:])
