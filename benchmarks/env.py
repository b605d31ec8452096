"""A benchmark's world: environment, a fresh database (SQLite file or PostgreSQL schema), the program, users.

Every benchmark process calls `prepare_process` before importing the product (like sanjin.demo's
_prepare_environment), then works in a `fresh_database` that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHENYANG = ROOT / "deploy" / "programs" / "shenyang-2025.yaml"
SLUG = "shenyang-2025"
DEFAULT_PG_URL = os.environ.get("SANJIN_BENCH_POSTGRES_URL",
                                os.environ.get("SANJIN_TEST_POSTGRES_URL",
                                               "postgresql+psycopg://postgres@127.0.0.1:5432/test"))


def prepare_process(home: Path) -> None:
    """Point the product at `home` and keep Prefect quiet, before the product or Prefect is imported.

    PREFECT_API_URL comes from the runner (its test-harness server); nothing here starts a server.
    """
    home.mkdir(parents=True, exist_ok=True)
    os.environ["SANJIN_HOME"] = str(home)
    os.environ["SANJIN_MAILER"] = "maildir"
    os.environ["SANJIN_MAILDIR"] = str(home / "maildir")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


def quiet_heartbeat() -> Any:
    """Prefect's sync flows wait ~1 s for a heartbeat thread at the end; the product's flows are async,
    the benchmarks' own flows too, but switch it off anyway (PREFECT_NOTES.md)."""
    from contextlib import nullcontext

    from prefect.settings import temporary_settings

    try:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
    except ImportError:  # pragma: no cover - older Prefect
        return nullcontext()
    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


@dataclass
class Database:
    kind: str  # sqlite | postgres
    url: str
    engine: Any  # sqlalchemy Engine
    schema: str | None = None


def _use_url(url: str) -> None:
    """Make the product's settings and shared engines point at `url` (as tests' database_url fixture does)."""
    from core import db
    from core.settings import get_settings

    os.environ["SANJIN_DATABASE_URL"] = url
    get_settings.cache_clear()
    for engine in db._ENGINES.values():
        engine.dispose()
    db._ENGINES.clear()


@contextmanager
def fresh_database(kind: str, home: Path, *, name: str = "sanjin", pg_url: str = DEFAULT_PG_URL,
                   migrate: bool = True, make_current: bool = True, keep: bool = False) -> Iterator[Database]:
    """An empty database with the product's schema: a new SQLite file under `home`, or a new PostgreSQL
    schema reached through `?options=-csearch_path%3D<schema>` and dropped on exit (unless `keep`: its URL is
    written to `home/<name>.url` for a later look, e.g. benchmarks.web_retime)."""
    from sqlalchemy import create_engine, text

    from core.db import make_engine, shared_engine

    schema = None
    admin = None
    if kind == "sqlite":
        path = home / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    elif kind == "postgres":
        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in pg_url else "?"
        url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    else:
        raise ValueError(f"unknown database kind {kind!r}")
    try:
        if make_current:
            _use_url(url)
            engine = shared_engine(url)
        else:
            engine = make_engine(url)
        if migrate:
            from core.migrate import upgrade

            upgrade(engine)
        if keep:
            (home / f"{name}.url").write_text(url, encoding="utf-8")
        yield Database(kind, url, engine, schema)
    finally:
        if make_current:
            _use_url(os.environ.get("SANJIN_BENCH_IDLE_URL", f"sqlite:///{home / 'idle.db'}"))
        else:
            engine.dispose()
        if admin is not None and not keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        if admin is not None:
            admin.dispose()


def benchmark_program_file(home: Path) -> Path:
    """Shenyang's program file with one change: batches have no size limit (`max_applications: null`).

    Shenyang cuts a batch at 200 applications; at 100,000 that is 500 batches, ~6,500 district gates
    and 500 list versions, not the "district gates, then the city gate" of issue #6. Jiangxi and
    Ningxia ship `max_applications: null` too. Every other rule, window and district is Shenyang's.
    """
    definition = yaml.safe_load(SHENYANG.read_text(encoding="utf-8"))
    definition["batching"]["max_applications"] = None
    path = home / "shenyang-2025-benchmark.yaml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def shanghai(month: int, day: int, hour: int = 9) -> datetime:
    from models.clock import SHANGHAI

    return datetime(2025, month, day, hour, tzinfo=SHANGHAI)


def setup_program(engine: Any, home: Path, when: datetime) -> Any:
    """Load the benchmark program, the manager and one reviewer per district; the database clock at `when`."""
    import os

    from core.clock_store import DatabaseClock
    from core.settings import get_settings
    from models.states import Role
    from sanjin.demo_data import DISTRICTS
    from tasks.programs import load_program
    from tasks.users import add_user

    os.environ["SANJIN_CLOCK"] = "database"  # a benchmark database, as a rehearsal's: its clock is simulated
    get_settings.cache_clear()
    clock = DatabaseClock(engine)
    clock.set(when)
    load_program(engine, benchmark_program_file(home), clock=clock, actor="manager")
    add_user(engine, "manager", Role.PROGRAM_MANAGER, display_name="市医保局价采处")
    for district in DISTRICTS:
        add_user(engine, reviewer(district), Role.DISTRICT_REVIEWER, districts=[district])
    return clock


def reviewer(district: str | None) -> str:
    return "manager" if district is None else f"reviewer-{district}"
