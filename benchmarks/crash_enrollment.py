"""Crash test of enrollment (issue #18): kill -9 a process importing applications and reconciling enrollment at
random moments, restart it each time, then check every application is in exactly one right state, once.

    .venv/bin/python -m benchmarks.crash_enrollment [--rows 10000] [--kills 20] [--url URL] [--seed N]

The child imports the file and reconciles enrollment on the two days the enrollment test uses (the batch on
09-12, its cut-off passed on 09-20), saying which step it is in; the parent kills it at a random moment of a
step, `kills` times spread over the three steps, then lets one child finish. A run after a crash must find
the same state and do nothing twice. `python -m benchmarks.crash` runs this with the sender's crash test and
`sanjin audit verify`.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.crash_proc import Child

ROOT = Path(__file__).resolve().parent.parent
SLUG = "shenyang-2025"
PHASES = ("import", "reconcile-0912", "reconcile-0920")  # the child's markers, in order


def child(url: str, path: str) -> None:
    from core.clock_store import DatabaseClock
    from core.db import make_engine
    from models.clock import SHANGHAI
    from tasks.intake.application_import import import_applications
    from tasks.phases.enrollment import reconcile_enrollment

    engine = make_engine(url)
    clock = DatabaseClock(engine)
    clock.set(datetime(2025, 9, 12, 10, tzinfo=SHANGHAI))
    print(PHASES[0], flush=True)
    import_applications(engine, SLUG, Path(path), clock=clock, actor="crash-test")
    clock.set(datetime(2025, 9, 12, 12, tzinfo=SHANGHAI))
    print(PHASES[1], flush=True)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(datetime(2025, 9, 20, 9, tzinfo=SHANGHAI))
    print(PHASES[2], flush=True)
    reconcile_enrollment(engine, SLUG, clock=clock)
    print("done", flush=True)


def child_main(args: list[str]) -> None:
    child(args[0], args[1])


def prepare(url: str, rows: int, workdir: Path) -> Path:
    from core.db import make_engine
    from models.states import Role
    from models.tables import metadata
    from tasks.programs import load_program
    from tasks.users import add_user
    from tests.factories import clock_at
    from tests.factories_files import APPLICATION_HEADER, application_row, write_xlsx

    engine = make_engine(url)
    metadata.create_all(engine)
    load_program(engine, ROOT / "deploy" / "programs" / f"{SLUG}.yaml", clock=clock_at(2025, 8, 1, 9))
    add_user(engine, "manager", Role.PROGRAM_MANAGER)
    districts = ["和平区", "沈河区", "大东区"]
    for i, district in enumerate(districts):
        add_user(engine, f"reviewer{i}", Role.DISTRICT_REVIEWER, districts=[district])
    kinds = ["社区卫生服务中心", "连锁药店", "单体药店", "民营诊所"]
    data = [application_row(n, kind=kinds[n % len(kinds)], district=districts[n % len(districts)])
            for n in range(1, rows + 1)]
    engine.dispose()
    return write_xlsx(workdir / "applications.xlsx", APPLICATION_HEADER, data)


def check(url: str, rows: int) -> dict[str, Any]:
    """Every application once, in one state the enrollment test reaches; one import; one audit row per submission."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from core.db import make_engine
    from models.states import ApplicationState, GateKind
    from models.tables import Application, AuditEvent, Gate, ImportRecord, Notice

    engine = make_engine(url)
    with Session(engine) as session:
        def count(stmt: Any) -> int:
            return int(session.execute(stmt).scalar_one())

        states = dict(session.execute(select(Application.state, func.count()).group_by(Application.state)).all())
        found = {
            "applications": count(select(func.count()).select_from(Application)),
            "institutions_applied": count(select(func.count(func.distinct(Application.institution_id)))),
            "imports": count(select(func.count()).select_from(ImportRecord)),
            "submit_audits": count(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "submit",
                                                                                       AuditEvent.entity == "application")),
            "receipts": count(select(func.count()).select_from(Notice).where(Notice.kind == "application_receipt")),
            "gates": count(select(func.count()).select_from(Gate).where(Gate.kind == GateKind.DISTRICT_REVIEW)),
            "gate_keys": count(select(func.count(func.distinct(Gate.natural_key)))
                               .where(Gate.kind == GateKind.DISTRICT_REVIEW)),
            "batch_districts": count(select(func.count()).select_from(
                select(Application.batch_id, Application.district).distinct().subquery())),
            "states": {str(k.value if hasattr(k, "value") else k): v for k, v in states.items()},
        }
    engine.dispose()
    problems = [f"{k}: {found[k]} != {rows}" for k in ("applications", "institutions_applied", "submit_audits",
                                                         "receipts") if found[k] != rows]
    if found["imports"] != 1:
        problems.append(f"imports: {found['imports']} != 1")
    if not found["gates"] == found["gate_keys"] == found["batch_districts"]:  # one review per batch and district
        problems.append(f"district gates: {found['gates']} ({found['gate_keys']} keys) for "
                        f"{found['batch_districts']} batch × district pairs")
    if set(found["states"]) != {ApplicationState.SUBMITTED.value}:  # waiting at their district gates
        problems.append(f"unexpected states {found['states']}")
    found["problems"] = problems
    return found


def run(rows: int, kills: int, url: str | None = None, seed: int = 18, max_delay: float = 30.0,
        fork: bool = False) -> dict[str, Any]:
    """Prepare, run under `kills` crashes, finish with one run left alone, and count; `url` defaults to SQLite.

    Kills are spread over the three steps (the import, then each day's reconciliation): kill k of K falls in
    step 3k // K, a random delay after the child enters it — at most `max_delay` seconds, and at most that
    step's length as last seen (a kill after a random time alone mostly fell on a restarted child that had
    nothing left to do: 2 of 20 kills at 10,000 applications).
    """
    import os

    os.environ["SANJIN_CLOCK"] = "database"  # a rehearsal database: time is simulated (core/clock_store.py)
    rng = random.Random(seed)
    length = dict.fromkeys(PHASES, max_delay)  # each step's length, learnt as children get through it
    with tempfile.TemporaryDirectory(prefix="sanjin-crash-") as tmp:
        workdir = Path(tmp)
        url = url or f"sqlite:///{workdir / 'sanjin.db'}"
        path = prepare(url, rows, workdir)
        killed_running, killed_in = 0, dict.fromkeys(PHASES, 0)
        for k in range(kills):
            phase = PHASES[min(len(PHASES) - 1, len(PHASES) * k // max(1, kills))]
            proc = Child("benchmarks.crash_enrollment", [url, str(path)], fork=fork)
            entered = proc.wait_for(phase, 1800)
            if entered is not None:
                time.sleep(max(0.0, entered + rng.uniform(0.0, length[phase]) - time.monotonic()))
            if proc.kill():
                killed_running += 1
                current = [m for _, m in proc.markers if m in PHASES][-1:]
                if current:
                    killed_in[current[0]] += 1
            status = proc.wait()
            if status not in (0, -signal.SIGKILL):
                raise RuntimeError(f"a run failed by itself: {proc.stderr_tail()}")
            for a, b in zip(PHASES, [*PHASES[1:], "done"], strict=True):  # a step seen whole: its real length
                start, end = proc.seen(a), proc.seen(b)
                if start is not None and end is not None:
                    length[a] = min(length[a], end - start)
        final = Child("benchmarks.crash_enrollment", [url, str(path)], fork=fork)
        if final.wait() != 0:
            raise RuntimeError(f"the run after the crashes failed: {final.stderr_tail()}")
        found = check(url, rows)
        found.update(rows=rows, kills=kills, killed_while_running=killed_running, killed_in=killed_in)
        return found


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child_main(sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--url", default=None)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    found = run(args.rows, args.kills, args.url, args.seed, max_delay=30.0)
    print(json.dumps(found, ensure_ascii=False, indent=2))
    sys.exit(1 if found["problems"] else 0)


if __name__ == "__main__":
    main()
