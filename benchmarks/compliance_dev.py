"""Development harness for figure 8's compliance pass: build the data once, then time the pass statement by statement.

Not a figure. `benchmarks/compliance.py` imports the orders through the XLSX importer (minutes at 1,000,000 lines);
this harness inserts the same order lines directly, keeps the database (a SQLite file, or a PostgreSQL database used
as a template), and runs the pass on a fresh copy as often as needed:

    python -m benchmarks.compliance_dev build --db sqlite --orders 100000 --base /tmp/cs/base100k
    python -m benchmarks.compliance_dev run --db sqlite --base /tmp/cs/base100k [--top 25]

`run` prints the first pass, the pass again and the plain SQL of `benchmarks.compliance.plain_sql` (its ratio), with
the slowest statements of the first pass and the rerun (wall seconds each, from the cursor events).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, prepare_process

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _pg_admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def _insert_orders(engine: Any, n: int) -> None:
    """The order lines `benchmarks.compliance._write_orders` writes to XLSX, inserted directly."""
    from sqlalchemy import insert, select

    from models.catalog import Product
    from models.clock import SHANGHAI
    from models.enrollment import Institution
    from models.operations import PurchaseOrder
    from models.program import Program

    with engine.begin() as conn:
        program_id = conn.execute(select(Program.id)).scalar_one()  # type: ignore[call-overload]
        insts = [r[0] for r in conn.execute(select(Institution.id).order_by(Institution.id))]  # type: ignore[call-overload]
        drugs = conn.execute(select(Product.id, Product.enterprise_id, Product.winning_price)  # type: ignore[call-overload]
                             .order_by(Product.id)).all()
        start = datetime(2025, 10, 1, 8, tzinfo=SHANGHAI)
        rows: list[dict[str, Any]] = []
        for k in range(n):
            pid, eid, price = drugs[k % len(drugs)]
            price = Decimal(price)
            if k % 53 == 7:
                price = price * Decimal("1.25")
            price = price.quantize(Decimal("0.01"))
            quantity = 10 + k % 90
            rows.append({"program_id": program_id, "order_no": f"PO{k:08d}", "institution_id": insts[k % len(insts)],
                         "product_id": pid, "enterprise_id": eid, "distributor": "国药控股沈阳有限公司",
                         "quantity": quantity, "unit_price": price, "amount": price * quantity,
                         "ordered_at": start + timedelta(minutes=k * 100 * 24 * 60 // n)})
            if len(rows) == 50_000:
                conn.execute(insert(PurchaseOrder), rows)
                rows = []
        if rows:
            conn.execute(insert(PurchaseOrder), rows)


def build(args: argparse.Namespace) -> None:
    from benchmarks.env import fresh_database

    home = Path(args.base + ".home")
    prepare_process(home)
    n_inst = args.institutions or max(10, args.orders // 10)
    t0 = time.perf_counter()
    if args.db == "sqlite":
        with fresh_database("sqlite", home, name="base") as db:
            _fill(db.engine, home, args.orders, n_inst, args.products)
            db.engine.dispose()
        con = sqlite3.connect(home / "base.db")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        shutil.copy(home / "base.db", args.base)
    else:
        from sqlalchemy import text

        name = Path(args.base).name
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        with fresh_database("postgres", home, name="base", pg_url=PG_SERVER + name) as db:
            _fill(db.engine, home, args.orders, n_inst, args.products)
            with db.engine.begin() as conn:
                # Keep the data: move it out of the throw-away schema into public.
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text(f'ALTER SCHEMA "{db.schema}" RENAME TO public'))
            db.engine.dispose()
        admin.dispose()
    print(f"built {args.base} in {time.perf_counter() - t0:.1f} s")


def _fill(engine: Any, home: Path, n_orders: int, n_inst: int, n_products: int) -> None:
    from sqlalchemy import text

    from benchmarks import compliance as fig
    from benchmarks.data import make_institutions
    from benchmarks.env import setup_program, shanghai
    from benchmarks.publication import _insert_running, _seed_drugs
    from core.clock_store import DatabaseClock
    from models.clock import SHANGHAI

    setup_program(engine, home, shanghai(9, 1))
    _seed_drugs(engine, max(10, min(n_products, 2_000)))
    _insert_running(engine, make_institutions(n_inst, seed=14), batch_number=1)
    _insert_orders(engine, n_orders)
    DatabaseClock(engine).set(fig.TODAY.replace(tzinfo=SHANGHAI))
    print(fig._operations(engine, n_inst))
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


class CpuClock:
    """CPU seconds of this process plus, on PostgreSQL, of the server backends serving the engine's connections
    (read from /proc: the server runs on this machine). Under a shared machine's load, wall seconds move 2–3×
    between runs minutes apart; CPU seconds of the same work move far less, so the ratio is also given in CPU."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.backends: set[int] = set()
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", self._connected)

    def _connected(self, dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.backends.add(int(cur.fetchone()[0]))

    def seconds(self) -> float:
        import os

        total = time.process_time()
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.backends:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total


class StatementTimer:
    """Wall and CPU seconds of each statement (CPU: this process and the PostgreSQL backends, `CpuClock`)."""

    def __init__(self, engine: Any, cpu: CpuClock | None = None) -> None:
        import threading

        from sqlalchemy import event

        self.rows: list[tuple[float, float, str]] = []
        self._local = threading.local()  # the pass runs its rule families on threads, a connection each
        self.cpu = cpu
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)

    def _cpu(self) -> float:
        return self.cpu.seconds() if self.cpu is not None else time.process_time()

    def before(self, *args: Any) -> None:
        self._local.start = (time.perf_counter(), self._cpu())

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        wall, cpu = self._local.start
        self.rows.append((time.perf_counter() - wall, self._cpu() - cpu, " ".join(statement.split())[:150]))

    def report(self, title: str, top: int) -> None:
        wall = sum(r[0] for r in self.rows)
        cpu = sum(r[1] for r in self.rows)
        print(f"--- {title}: {len(self.rows)} statements, {wall:.2f} s wall, {cpu:.2f} s CPU in SQL (wall, CPU)")
        for w, c, stmt in sorted(self.rows, key=lambda r: r[1], reverse=True)[:top]:
            print(f"{w:8.2f} {c:6.2f}  {stmt}")
        self.rows = []


def run(args: argparse.Namespace) -> None:
    home = Path(f"/tmp/cs/run-{uuid.uuid4().hex[:6]}")
    prepare_process(home)
    import os

    os.environ["SANJIN_CLOCK"] = "database"
    from benchmarks import compliance as fig
    from benchmarks.env import _use_url
    from benchmarks.instrument import peak_rss_mb
    from core.clock_store import DatabaseClock
    from core.db import make_engine
    from tasks.compliance.compliance_pass import run_compliance_pass

    if args.db == "sqlite":
        shutil.copy(args.base, home / "run.db")
        url = f"sqlite:///{home / 'run.db'}"
    else:
        from sqlalchemy import text

        name = f"{Path(args.base).name}_run_{uuid.uuid4().hex[:6]}"  # named after the base: its owner's prefix
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{Path(args.base).name}"'))
        url = PG_SERVER + name
    _use_url(url)
    engine = make_engine(url)
    try:
        from core.migrate import upgrade

        upgrade(engine)  # a base built before a migration of this branch
        if args.db == "postgres":
            from sqlalchemy import text

            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        cpu = CpuClock(engine)
        timer = StatementTimer(engine, cpu)
        engine.dispose()  # connections from here on are seen by the CPU clock
        clock = DatabaseClock(engine)
        c0 = cpu.seconds()
        t0 = time.perf_counter()
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            first = prof.runcall(run_compliance_pass, engine, SLUG, clock=clock)
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        else:
            first = run_compliance_pass(engine, SLUG, clock=clock)
        first_s = time.perf_counter() - t0
        first_cpu = cpu.seconds() - c0
        timer.report("first pass", args.top)
        t0 = time.perf_counter()
        second = run_compliance_pass(engine, SLUG, clock=clock)
        second_s = time.perf_counter() - t0
        timer.report("rerun", args.top)
        c0 = cpu.seconds()
        floor = fig.plain_sql(engine, "sqlite" if args.db == "sqlite" else "postgres")
        floor_cpu = cpu.seconds() - c0
        timer.rows = []
        print(json.dumps({"first": round(first_s, 2), "found": {o.rule.value: o.found for o in first.outcomes},
                          "opened": first.opened, "steps": first.seconds}, ensure_ascii=False))
        print(json.dumps({"rerun": round(second_s, 2), "opened": second.opened, "closed": second.closed,
                          "steps": second.seconds}))
        print(json.dumps(floor))
        print("plain SQL differs from the pass:",
              fig.floor_mismatches(floor, {o.rule.value: o.found for o in first.outcomes}) or "nowhere")
        print(f"RESULT {args.db}: pass {first_s:.2f} s, floor {floor['seconds']:.2f} s, "
              f"ratio {first_s / floor['seconds']:.2f}x, rerun {second_s:.2f} s "
              f"(opened {second.opened}, closed {second.closed}), peak RSS {peak_rss_mb():.0f} MB; CPU: pass "
              f"{first_cpu:.2f} s, floor {floor_cpu:.2f} s, ratio {first_cpu / floor_cpu:.2f}x")
    finally:
        engine.dispose()
        if args.db == "postgres":
            from sqlalchemy import text

            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compliance_dev")
    p.add_argument("command", choices=["build", "run"])
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--institutions", type=int, default=0)
    p.add_argument("--products", type=int, default=5_000)
    p.add_argument("--base", required=True)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--profile", action="store_true", help="cProfile the first pass (its seconds then mean less)")
    args = p.parse_args(argv)
    build(args) if args.command == "build" else run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
