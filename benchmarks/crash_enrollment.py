"""Crash test of enrollment (issue #18): kill -9 a process importing applications and reconciling enrollment at
random moments, restart it each time, then check every application is in exactly one right state, once.

    .venv/bin/python -m benchmarks.crash_enrollment [--rows 10000] [--kills 20] [--url URL] [--seed N]

The child imports the file and reconciles enrollment on the two days the enrollment test uses (the batch on
09-12, its cut-off passed on 09-20); the parent kills it after a random delay, `kills` times, then lets one
child finish. A run after a crash must find the same state and do nothing twice.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SLUG = "shenyang-2025"


def child(url: str, path: str) -> None:
    from core.clock_store import DatabaseClock
    from core.db import make_engine
    from models.clock import SHANGHAI
    from tasks.intake.application_import import import_applications
    from tasks.phases.enrollment import reconcile_enrollment

    engine = make_engine(url)
    clock = DatabaseClock(engine)
    clock.set(datetime(2025, 9, 12, 10, tzinfo=SHANGHAI))
    import_applications(engine, SLUG, Path(path), clock=clock, actor="crash-test")
    clock.set(datetime(2025, 9, 12, 12, tzinfo=SHANGHAI))
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(datetime(2025, 9, 20, 9, tzinfo=SHANGHAI))
    reconcile_enrollment(engine, SLUG, clock=clock)


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
            "states": {str(k.value if hasattr(k, "value") else k): v for k, v in states.items()},
        }
    engine.dispose()
    problems = [f"{k}: {found[k]} != {rows}" for k in ("applications", "institutions_applied", "submit_audits",
                                                         "receipts") if found[k] != rows]
    if found["imports"] != 1:
        problems.append(f"imports: {found['imports']} != 1")
    if found["gates"] != 3:  # one district review per district of the file, never two
        problems.append(f"district gates: {found['gates']} != 3")
    if set(found["states"]) != {ApplicationState.SUBMITTED.value}:  # waiting at their district gates
        problems.append(f"unexpected states {found['states']}")
    found["problems"] = problems
    return found


def run(rows: int, kills: int, url: str | None = None, seed: int = 18, max_delay: float = 8.0) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="sanjin-crash-") as tmp:
        workdir = Path(tmp)
        url = url or f"sqlite:///{workdir / 'sanjin.db'}"
        path = prepare(url, rows, workdir)
        command = [sys.executable, "-m", "benchmarks.crash_enrollment", "child", url, str(path)]
        killed_running = 0
        for _ in range(kills):
            proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.2, max_delay))
            if proc.poll() is None:
                proc.kill()  # SIGKILL: no cleanup, no rollback handler, as a power cut
                killed_running += 1
            proc.wait()
        final = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
        if final.returncode != 0:
            raise RuntimeError(f"the run after the crashes failed: {final.stderr[-2000:]}")
        found = check(url, rows)
        found.update(rows=rows, kills=kills, killed_while_running=killed_running)
        return found


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
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
