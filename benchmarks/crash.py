"""Crash tests (issue #18): kill -9 enrollment and the sender at random moments, restart, count, verify the audit trail.

    .venv/bin/python -m benchmarks.crash [--db sqlite|postgresql|both] [--applications 10000] [--notices 10000]
        [--kills 20] [--only enrollment|notices] [--postgres-url URL] [--seed 18]

Each part runs on a database of its own (a temporary SQLite file, or a fresh schema of the PostgreSQL
database given, dropped afterwards):
- enrollment (benchmarks.crash_enrollment): `--applications` applications imported and reconciled, the
  process killed `--kills` times at random moments and restarted; every application once, in one right state;
- notices (benchmarks.crash_notices): `--notices` notices sent to aiosmtpd in another process, the sender
  killed `--kills` times and restarted; every notice sent, delivered at least once and at most twice under its
  Message-ID.
Then `sanjin audit verify` on that database must exit 0. Prints the counts as JSON; exit 1 on any problem.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("SANJIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def database(kind: str, postgres_url: str = POSTGRES_URL) -> Iterator[str]:
    """The URL of an empty database: a temporary SQLite file, or a new PostgreSQL schema (in the URL's search_path)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sanjin-crash-db-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'sanjin.db'}"
        return
    from sqlalchemy import create_engine, text

    schema = f"crash_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def audit_verify(url: str, command: bool = True) -> dict[str, Any]:
    """`sanjin audit verify` on the database, as an operator runs it: its exit code and what it printed.

    `command=False`: its function in this process (tasks.trust.audit_check.verify_audit), exit 0 or 1 as the
    command would give; the CI-sized tests save a fresh interpreter's start with it.
    """
    if not command:
        from core.db import make_engine
        from tasks.trust.audit_check import verify_audit

        engine = make_engine(url)
        try:
            report = verify_audit(engine)
        finally:
            engine.dispose()
        broken = report.broken
        return {"exit": 0 if broken is None else 1, "output": broken.message() if broken else f"{report.rows} rows"}
    env = {**os.environ, "SANJIN_DATABASE_URL": url, "SANJIN_CLOCK": "database"}
    done = subprocess.run([str(Path(sys.executable).parent / "sanjin"), "audit", "verify"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    return {"exit": done.returncode, "output": " ".join((done.stdout + done.stderr).split())[:400]}


def run_part(part: str, kind: str, *, size: int, kills: int, seed: int = 18, postgres_url: str = POSTGRES_URL,
             verify_command: bool = True, **options: Any) -> dict[str, Any]:
    """One crash run of `size` applications or notices on a fresh database, its counts and the audit check;
    `problems` lists every broken invariant. `options` go to the part's `run` (max_delay, fork, …)."""
    os.environ["SANJIN_CLOCK"] = "database"  # a rehearsal database: the runs move its simulated clock
    with database(kind, postgres_url) as url:
        if part == "enrollment":
            from benchmarks import crash_enrollment

            found = crash_enrollment.run(size, kills, url, seed, **options)
        else:
            from benchmarks import crash_notices

            found = crash_notices.run(size, kills, url, seed, **options)
        found["audit_verify"] = audit_verify(url, verify_command)
    if found["audit_verify"]["exit"] != 0:
        found["problems"].append(f"sanjin audit verify exited {found['audit_verify']['exit']}")
    found.update(part=part, database=kind)
    return found


def summary(found: dict[str, Any]) -> str:
    """One line of counts for a test's output and the README."""
    head = f"{found['part']} on {found['database']}: {found['kills']} kills ({found['killed_while_running']} while running)"
    if found["part"] == "enrollment":
        body = (f"{found['applications']} applications in {found['states']}, {found['institutions_applied']} "
                f"institutions, {found['imports']} import, {found['submit_audits']} submit audits, "
                f"{found['receipts']} receipts, {found['gates']} district gates")
    else:
        body = (f"{found['notices']} notices ({found['idempotency_keys']} keys) {found['statuses']}, "
                f"{found['received']} received; deliveries per Message-ID {found['deliveries_per_message_id']} "
                f"(min {found['min_deliveries']}, max {found['max_deliveries']}), {found.get('unconfirmed', 0)} sent unconfirmed")
    line = f"{head}; {body}; audit verify exit {found['audit_verify']['exit']}; problems {found['problems'] or 'none'}"
    for suspect in found.get("suspects", []):  # a notice that arrived more than twice or never: its row and receipts
        line += f"\n  suspect {suspect}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.crash", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--applications", type=int, default=10_000)
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--only", choices=("enrollment", "notices"), default=None)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--max-delay", type=float, default=None,
                        help="a kill's random delay, at most (default 30 s into an enrollment step, 0.3 s past the "
                             "sender's random point)")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    parts = [args.only] if args.only else ["enrollment", "notices"]
    results = []
    for kind in kinds:
        for part in parts:
            options = {} if args.max_delay is None else {"max_delay": args.max_delay}
            found = run_part(part, kind, size=args.applications if part == "enrollment" else args.notices,
                             kills=args.kills, seed=args.seed, postgres_url=args.postgres_url, **options)
            print(json.dumps(found, ensure_ascii=False, indent=2), flush=True)
            results.append(found)
    for found in results:
        print(summary(found))
    return 1 if any(found["problems"] for found in results) else 0


if __name__ == "__main__":
    sys.exit(main())
