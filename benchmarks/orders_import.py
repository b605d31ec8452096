"""Figure 8's import on its own (issue #14): N order lines as the platform's XLSX export through `import_operations`,
beside the floor of reading the same file with python-calamine alone, each in its own process with its peak RSS.

    .venv/bin/python -m benchmarks.orders_import --orders 1000000 --db sqlite

Set-up (untimed, this process): a fresh database with the program, `--institutions` running institutions and
`--products` products, and the export written as benchmarks.compliance writes it. Then, one child process each
and in this order, so load moves all three alike:
- `floor`: python-calamine reads the whole sheet (`to_python`), as the product read an XLSX before;
- `stream`: the product's streaming reader alone (tasks.intake.xlsx_stream, every row turned into values);
- `import`: `import_operations(..., "orders", ...)` into the database, which must create every line.
A child's peak RSS is its own VmHWM (a fresh exec, so nothing of this process is counted). Target: the import
process ≤ 1 GiB; rows/s is printed beside the floor's with the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, fresh_database, prepare_process, setup_program, shanghai
from benchmarks.instrument import peak_rss_mb

GIB_MB = 1024


def _child(argv: list[str]) -> dict[str, Any]:
    """One measurement; its time starts after its imports (the product's take ~3 s here, not part of reading)."""
    mode, path = argv[0], Path(argv[1])
    out: dict[str, Any] = {"mode": mode}
    if mode == "floor":
        from python_calamine import CalamineWorkbook

        start = time.perf_counter()
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        out["rows"] = len(rows)
    elif mode == "stream":
        from tasks.intake.xlsx_stream import open_sheet

        start = time.perf_counter()
        sheet = open_sheet(path.read_bytes())
        assert sheet is not None
        out["rows"] = sum(1 for _ in sheet.rows)
    elif mode == "import":
        from core.clock_store import DatabaseClock
        from core.db import make_engine
        from tasks.intake.operations_import import import_operations

        engine = make_engine(argv[2])
        start = time.perf_counter()
        result = import_operations(engine, SLUG, "orders", path, clock=DatabaseClock(engine), actor="platform")
        out.update(rows=result.rows, created=result.created)
        engine.dispose()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    out["seconds"] = round(time.perf_counter() - start, 3)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def _run_child(mode: str, path: Path, env: dict[str, str], *extra: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.orders_import", "--child", mode, str(path), *extra],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run(orders: int, institutions: int, products: int, db_kind: str, home: Path) -> dict[str, Any]:
    prepare_process(home)
    # The export is bigger than the upload limits' defaults (500,000 rows): a bureau importing such files
    # raises SANJIN_IMPORT_MAX_ROWS, as here. The other limits (100 MB file, 1 GB unpacked) hold as they are.
    os.environ["SANJIN_IMPORT_MAX_ROWS"] = str(max(orders + 10, 500_000))
    from sqlalchemy import select

    from benchmarks.compliance import TODAY, _write_orders
    from benchmarks.data import make_institutions
    from benchmarks.publication import _insert_running, _seed_drugs
    from core.clock_store import DatabaseClock
    from models.catalog import Product
    from models.clock import SHANGHAI
    from models.enrollment import Institution

    with fresh_database(db_kind, home, name="orders_import") as db:
        engine = db.engine
        t0 = time.perf_counter()
        setup_program(engine, home, shanghai(9, 1))
        _seed_drugs(engine, products)
        _insert_running(engine, make_institutions(institutions, seed=14), batch_number=1)
        with engine.connect() as conn:
            codes = [r[0] for r in conn.execute(select(Institution.insurance_code).order_by(Institution.id))]  # type: ignore[call-overload]
            drugs = [(r[0], Decimal(r[1])) for r in conn.execute(
                select(Product.drug_code, Product.winning_price).order_by(Product.id))]  # type: ignore[call-overload]
        path = home / "orders.xlsx"
        _write_orders(path, orders, codes, drugs)
        DatabaseClock(engine).set(TODAY.replace(tzinfo=SHANGHAI))
        setup = time.perf_counter() - t0
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        floor = _run_child("floor", path, env)
        stream = _run_child("stream", path, env)
        imported = _run_child("import", path, env, db.url)
    rate = round(orders / imported["seconds"]) if imported["seconds"] else None
    floor_rate = round(orders / floor["seconds"]) if floor["seconds"] else None
    return {
        "db": db_kind, "orders": orders, "institutions": institutions, "products": products,
        "file_mb": round(path.stat().st_size / 1e6, 1), "setup_seconds_untimed": round(setup, 1),
        "import": {**imported, "rows_per_second": rate},
        "calamine_floor": {**floor, "rows_per_second": floor_rate},
        "streaming_read": {**stream, "rows_per_second": round(orders / stream["seconds"]) if stream["seconds"] else None},
        "import_share_of_floor": round(rate / floor_rate, 3) if rate and floor_rate else None,
        "checks": {"created_all": imported["created"] == orders,
                   "import_peak_rss_within_1_gib": imported["peak_rss_mb"] <= GIB_MB},
    }


def _rate(part: dict[str, Any]) -> str:
    return f"{part['rows_per_second']:>9,}" if part["rows_per_second"] is not None else f"{'—':>9}"


def _report(result: dict[str, Any]) -> str:
    imp, floor, stream = result["import"], result["calamine_floor"], result["streaming_read"]
    return "\n".join([
        f"orders import, {result['orders']:,} lines ({result['file_mb']} MB XLSX), {result['db']}:",
        f"  import (import_operations)   {imp['seconds']:>8.1f} s  {_rate(imp)} rows/s  "
        f"peak RSS {imp['peak_rss_mb']:>7.0f} MB  created {imp['created']:,}",
        f"  calamine read alone (floor)  {floor['seconds']:>8.1f} s  {_rate(floor)} rows/s  "
        f"peak RSS {floor['peak_rss_mb']:>7.0f} MB",
        f"  streaming read alone         {stream['seconds']:>8.1f} s  {_rate(stream)} rows/s  "
        f"peak RSS {stream['peak_rss_mb']:>7.0f} MB",
        f"  import rows/s ÷ floor rows/s = {result['import_share_of_floor']}; import peak RSS ≤ 1 GiB: "
        f"{'met' if result['checks']['import_peak_rss_within_1_gib'] else 'MISSED'}",
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(_child(argv[1:])))
        return 0
    p = argparse.ArgumentParser(prog="python -m benchmarks.orders_import", description=__doc__.split("\n")[0])
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--institutions", type=int, default=10_000)
    p.add_argument("--products", type=int, default=2_000)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON there")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sanjin-orders-import-") as work:
        result = run(args.orders, args.institutions, args.products, args.db, Path(work))
    print(_report(result))
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    return 0 if result["checks"]["created_all"] else 1


if __name__ == "__main__":
    sys.exit(main())
