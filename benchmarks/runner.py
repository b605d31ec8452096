"""`python -m benchmarks` / `make bench ARGS="..."`: run the figures of issue #6, print a table and JSON.

Each benchmark runs in its own child process (peak RSS per benchmark, figure 7) against one Prefect
API: Prefect's test harness (`prefect.testing.utilities.prefect_test_harness`), started here once and
shared through PREFECT_API_URL, so no benchmark touches a real server or pays the harness start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.mail import SMTP_CONNECTIONS
from benchmarks.report import build_figures, render_table

FIGURES = ("enrollment", "reminders", "publication", "web", "gate", "compliance", "topology")
DBS = ("sqlite", "postgres")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--institutions", type=int, default=100_000, help="institutions enrolled and listed (figures 1, 3)")
    p.add_argument("--seal-pairs", type=int, default=3,
                   help="figure 1's audit-seal cost: this many pairs of runs with the seal off and on (medians)")
    p.add_argument("--products", type=int, default=5_000, help="products on the published drug list (figure 3)")
    p.add_argument("--web-requests", type=int, default=40,
                   help="requests timed per page for the overview and inbox (figure 4)")
    p.add_argument("--reminders", type=int, default=100_000,
                   help="reminders due, written to the outbox and delivered to a local aiosmtpd (figure 2)")
    p.add_argument("--smtp-connections", type=int, default=SMTP_CONNECTIONS,
                   help="the sender's pool of SMTP connections in figure 2 (benchmarks/mail.py says why 32)")
    p.add_argument("--orders", type=int, default=None,
                   help="order lines imported and checked by the compliance pass (figure 8; default 10 × institutions)")
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--only", default=",".join(FIGURES),
                   help=f"comma-separated subset of {', '.join(FIGURES)} (figures 6 and 7 come with them)")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON to this file")
    p.add_argument("--sample", type=int, default=1_000,
                   help="sample size of the extrapolated baselines (per-institution task runs, ORM row by row)")
    p.add_argument("--gate-institutions", type=int, default=40,
                   help="applications in the batch whose gates figure 5 decides")
    p.add_argument("--gate-baseline-poll", type=int, default=10,
                   help="pause poll interval (s) of figure 5's baseline: Prefect's pause_flow_run default is 10")
    p.add_argument("--topology-institutions", type=int, default=None,
                   help="institutions enrolled over the workers in figure 9's spread (default: --institutions)")
    p.add_argument("--topology-programs", type=int, default=2,
                   help="programs figure 9's spread runs at once (one program's enrollment holds its lock)")
    p.add_argument("--topology-parts", default="suspend,pause,spread",
                   help="figure 9's parts to run: any of suspend,pause,spread")
    p.add_argument("--topology-setups", default="",
                   help="figure 9's worker set-ups for the suspend part: any of prefect_defaults,sanjin (default all)")
    p.add_argument("--task-run-recorder", choices=("on", "off"), default="off",
                   help="the harness API's task-run recorder (on: task runs are also counted through the API; "
                        "off by default, as in the demo: it contends for the harness's SQLite lock)")
    p.add_argument("--profile", type=Path, default=None,
                   help="write pyinstrument reports of every stage here (adds overhead: not for the figures)")
    p.add_argument("--pg-url", default=None, help="PostgreSQL URL (default: $SANJIN_BENCH_POSTGRES_URL, "
                                                  "$SANJIN_TEST_POSTGRES_URL or postgres@127.0.0.1:5432/test)")
    p.add_argument("--work-dir", type=Path, default=None, help="where data files and SQLite databases go "
                                                                "(default: a temporary folder, removed after)")
    args = p.parse_args(argv)
    args.only = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = set(args.only) - set(FIGURES)
    if unknown:
        p.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(FIGURES)}")
    args.dbs = list(DBS) if args.db == "both" else [args.db]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected figures; 0 when every benchmark ran (a missed target is a result, not an error)."""
    args = parse_args(argv)
    saved = dict(os.environ)
    try:
        return _main(args)
    finally:  # PREFECT_HOME and the recorder setting are this run's only (main is also called from tests)
        os.environ.clear()
        os.environ.update(saved)


def _main(args: argparse.Namespace) -> int:
    keep = args.work_dir is not None
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sanjin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with prefect_api(work, recorder=args.task_run_recorder == "on") as api:
            runs: dict[str, dict[str, Any]] = {"floor.-": run_child("floor", "-", args, work, api)}
            for figure in FIGURES:
                if figure not in args.only:
                    continue
                for db in args.dbs:
                    runs[f"{figure}.{db}"] = run_child(figure, db, args, work, api)
        api_rss = api.get("server_peak_rss_mb")  # read by prefect_api as the harness stops
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    document = {
        "meta": meta(args, time.perf_counter() - started, api),
        "figures": build_figures(runs, args, api_rss),
    }
    sys.stdout.write(render_table(document) + "\n")
    text = json.dumps(document, ensure_ascii=False, indent=1, default=str)
    sys.stdout.write(text + "\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    if any(v.get("status") != "ok" for v in runs.values()):
        return 1  # a benchmark crashed: see its log tail in the JSON
    if any(v.get("failure") for v in runs.values()):
        return 2  # the product failed at this size (figure 1 says where)
    return 0


@contextmanager
def prefect_api(work: Path, *, recorder: bool) -> Iterator[dict[str, Any]]:
    """Prefect's test harness in this process; children reach it through PREFECT_API_URL.

    The harness is what the product's tests use: a temporary SQLite-backed API server in a
    subprocess, started once (17–30 s on this machine), never a real server. Its task-run recorder
    is off by default, as in the demo (sanjin/demo.py): on this SQLite-backed API it contends for
    the database lock ("database is locked" seen in the server log, a 2.2 s resume instead of
    0.2 s in figure 5). Task runs are then counted client-side only; `--task-run-recorder on`
    also counts them through the API (read_task_runs after the recorder settles).
    """
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED"] = "true" if recorder else "false"
    _progress("starting Prefect's test harness (temporary API server)…")
    start = time.perf_counter()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        info: dict[str, Any] = {"url": str(PREFECT_API_URL.value()), "startup_seconds": round(time.perf_counter() - start, 2),
                                "mode": "prefect.testing.utilities.prefect_test_harness (SQLite-backed, subprocess)",
                                "task_run_recorder": recorder}
        _progress(f"Prefect API at {info['url']} ({info['startup_seconds']} s)")
        info["warm_up"] = _warm_up_api()
        try:
            yield info
        finally:
            info["server_peak_rss_mb"] = _harness_server_peak_rss()


def _warm_up_api() -> dict[str, Any]:
    """Run one trivial flow (a task and a table artifact, like a phase flow) against the new API server.

    A production API server is long-running. The first flow run a freshly started server ever sees
    costs it about 0.7 s more than later ones (measured here: 1.03 s against 0.17 s from a new client
    process; 0.31-0.36 s once another process had run a flow). That is the server warming up, not
    orchestration a program run pays, and it would land on whichever benchmark came first (figure 1,
    and so figure 6). Each benchmark's own first flow in its new process still pays the client-side
    start-up, which is counted.
    """
    import asyncio

    from prefect import flow, task
    from prefect.artifacts import acreate_table_artifact

    @task(name="bench-warm-up-task")
    def touch() -> int:
        return 1

    @flow(name="bench-warm-up")
    async def warm_up() -> int:
        await acreate_table_artifact(key="bench-warm-up", table=[{"ok": 1}], description="warm-up")
        return touch()

    start = time.perf_counter()
    asyncio.run(warm_up())
    first = time.perf_counter() - start
    start = time.perf_counter()
    asyncio.run(warm_up())
    second = time.perf_counter() - start
    _progress(f"API warmed up: first flow run {first:.2f} s, second {second:.2f} s")
    return {"first_flow_seconds": round(first, 3), "second_flow_seconds": round(second, 3),
            "why": "a production API server is long-running; its one-time warm-up is not per-run overhead"}


def _harness_server_pid() -> int | None:
    """The pid of the harness's uvicorn subprocess, or None (another kind of API, or not started yet)."""
    try:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer._instances.get(None)
        return int(server.server_process.pid)  # type: ignore[union-attr]
    except Exception:
        return None


def _harness_server_peak_rss() -> float | None:
    """VmHWM of the harness's uvicorn subprocess (Linux), read before the harness stops it."""
    try:
        pid = _harness_server_pid()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except Exception:
        return None
    return None


def run_child(figure: str, db: str, args: argparse.Namespace, work: Path, api: dict[str, Any]) -> dict[str, Any]:
    home = work / f"{figure}-{db}"
    home.mkdir(parents=True, exist_ok=True)
    cfg = {"home": str(home), "db": db, "institutions": args.institutions, "products": args.products,
           "sample": args.sample, "seal_pairs": args.seal_pairs, "gate_institutions": args.gate_institutions,
           "gate_baseline_poll": args.gate_baseline_poll, "reminders": args.reminders,
           "web_requests": args.web_requests,
           "orders": args.orders if args.orders is not None else 10 * args.institutions,
           "price_institutions": args.institutions,
           "smtp_connections": args.smtp_connections,
           "topology_institutions": args.topology_institutions, "topology_programs": args.topology_programs,
           "topology_parts": [p for p in args.topology_parts.split(",") if p],
           "topology_setups": [s for s in args.topology_setups.split(",") if s],
           "profile_dir": str(args.profile / f"{figure}-{db}") if args.profile else None}
    config_path, result_path, log_path = home / "config.json", home / "result.json", home / "child.log"
    config_path.write_text(json.dumps(cfg), encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": api["url"], "PYTHONUNBUFFERED": "1"}
    if (api_pid := _harness_server_pid()) is not None:  # benchmarks/cpu.py counts the API server's CPU too
        env["SANJIN_BENCH_API_PID"] = str(api_pid)
    if args.pg_url:
        env["SANJIN_BENCH_POSTGRES_URL"] = args.pg_url
    _progress(f"{figure} on {db}: running (log {log_path})…")
    start = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.child", figure, str(config_path), str(result_path)],
                                cwd=str(Path(__file__).resolve().parent.parent), env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    result: dict[str, Any]
    if result_path.exists():
        result = json.loads(result_path.read_text(encoding="utf-8"))
    else:
        result = {"status": "error", "error": f"the child exited with {proc.returncode} and wrote no result"}
    result["child_wall_seconds"] = round(wall, 2)
    # The child's own VmHWM. wait4's ru_maxrss is kept too but is not the figure: Linux carries
    # maxrss across execve, so it is at least this runner's RSS at fork time.
    result["child_peak_rss_mb"] = result.get("peak_rss_mb_self")
    result["child_ru_maxrss_wait4_mb"] = round(usage.ru_maxrss / 1024, 1)
    if result.get("status") != "ok":
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        result["log_tail"] = tail
        _progress(f"{figure} on {db}: FAILED — {result.get('error')}\n" + "\n".join(tail))
    else:
        _progress(f"{figure} on {db}: done in {wall:.1f} s")
    return result


def meta(args: argparse.Namespace, seconds: float, api: dict[str, Any]) -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "sizes": {"institutions": args.institutions, "products": args.products, "sample": args.sample,
                  "gate_institutions": args.gate_institutions, "reminders": args.reminders,
                  "smtp_connections": args.smtp_connections},
        "dbs": args.dbs, "only": args.only,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": {n: version(n) for n in ("prefect", "sqlalchemy", "sqlmodel", "xlsxwriter", "openpyxl",
                                             "psycopg", "pyinstrument", "jinja2", "aiosmtplib", "aiosmtpd")},
        "prefect_api": {k: v for k, v in api.items() if k != "url"},
        "runner_seconds": round(seconds, 1),
    }


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
