"""Figure 4's running-state pages re-timed against a database a `benchmarks.web` run left behind.

    .venv/bin/python -m benchmarks.web --institutions 100000 --db sqlite --work-dir /tmp/w [--keep for PostgreSQL]
    .venv/bin/python -m benchmarks.web_retime /tmp/w [--pages 'laggards|notices_reviewer'] [--requests 20]

For working on one slow page at a time: setting up 100,000 institutions takes minutes, timing a page seconds.
The pages, their users and their paths are figure 4's own (benchmarks.web.running_pages / running_exports);
the numbers are the same server time and CPU per request. Not a figure of its own: the README's figure-4
tables come from whole `benchmarks.web` runs, and say so where a row was re-timed this way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from benchmarks.env import SLUG, prepare_process


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="benchmarks.web_retime", description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", type=Path, help="the --work-dir of a finished benchmarks.web run")
    parser.add_argument("--pages", default="", help="regular expression over the pages' names (default: all)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--downloads", action="store_true", help="time the downloads too")
    args = parser.parse_args(argv)
    prepare_process(args.work_dir)
    os.environ.setdefault("PREFECT_API_URL", "http://127.0.0.1:9/api")
    os.environ["SANJIN_CLOCK"] = "database"
    url_file = args.work_dir / "web.url"
    url = url_file.read_text().strip() if url_file.exists() else f"sqlite:///{args.work_dir / 'web.db'}"
    os.environ["SANJIN_DATABASE_URL"] = url

    from sqlalchemy import func, select
    from sqlmodel import Session, col
    from starlette.testclient import TestClient

    from benchmarks.web import DatabaseCpu, ServerTimer, _signed_in, _time_page, running_exports, running_pages
    from core.clock_store import DatabaseClock
    from core.db import shared_engine
    from models.enrollment import Institution
    from web.app import create_app
    from web.settings import WebSettings

    engine = shared_engine(url)
    clock = DatabaseClock(engine)
    with Session(engine) as session:
        n = int(session.execute(select(func.count()).select_from(Institution)).scalar_one())
        largest = session.execute(select(col(Institution.district)).group_by(col(Institution.district))
                                  .order_by(func.count().desc()).limit(1)).scalar_one()
    timer = ServerTimer(create_app(engine, clock=clock, settings=WebSettings(secret_key="benchmark-secret-0123456789")),
                        DatabaseCpu(engine))
    clients: dict[str, Any] = {}

    def client(user: str) -> Any:
        if user not in clients:
            clients[user] = _signed_in(TestClient(timer, raise_server_exceptions=True, follow_redirects=False), user)
        return clients[user]

    wanted = re.compile(args.pages)
    out: dict[str, Any] = {"db": engine.dialect.name, "institutions": n, "slug": SLUG, "pages": {}}
    for name, user, path, expect in running_pages(client, largest, n, keep=lambda name: bool(wanted.search(name))):
        if wanted.search(name):
            out["pages"][name] = page = _time_page(client(user), timer, path, expect, args.requests)
            _print(name, page)
    if args.downloads:
        for name, user, path in running_exports(largest):
            for fmt in ("csv", "xlsx"):
                if wanted.search(f"export_{name}_{fmt}"):
                    url_ = f"{path}{'&' if '?' in path else '?'}format={fmt}"
                    out["pages"][f"export_{name}_{fmt}"] = page = _time_page(
                        client(user), timer, url_, "", args.requests, first_byte=True)
                    _print(f"export_{name}_{fmt}", page)
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return out


def _print(name: str, page: dict[str, Any]) -> None:
    from benchmarks.web import page_line

    print(f"{name:<36} {page_line(page)}", flush=True)


if __name__ == "__main__":
    main()
