"""Database fixtures: every test that takes `engine` runs on SQLite and on PostgreSQL.

PostgreSQL is found at SANJIN_TEST_POSTGRES_URL (default: the local server, database `test`).
Without it those tests skip with the reason shown; with SANJIN_REQUIRE_POSTGRES=1 (CI) a missing
server is an error instead. Each test process works in its own schema so parallel runs and other
users of the `test` database never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text

from core.db import make_engine
from models.tables import metadata

# Test databases simulate time, as demo and rehearsal databases do (core/clock_store.py); a test of the
# refusal on a real-time installation removes the setting for itself.
os.environ["SANJIN_CLOCK"] = "database"
# Test databases are thrown away and their schemas reused: no record of audit heads outside them, unless a
# test of that record points the setting at a file of its own.
os.environ["SANJIN_AUDIT_HEADS_FILE"] = "off"

PG_URL = os.environ.get("SANJIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("SANJIN_REQUIRE_POSTGRES") == "1"


def _postgres_reason() -> str | None:
    try:
        probe = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("select 1"))
        probe.dispose()
        return None
    except Exception as exc:  # any failure to reach the server means "skip, and say why"
        return f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}"


def require_postgres() -> None:
    """Skip without a reachable server, or fail when CI demands PostgreSQL."""
    reason = _postgres_reason()
    if reason:
        if REQUIRE_PG:
            pytest.fail(reason + " (SANJIN_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


@contextmanager
def fresh_pg_schema(prefix: str) -> Iterator[Engine]:
    """An engine on a new, empty PostgreSQL schema, dropped afterwards.

    The schema rides in the URL (`options=-csearch_path=...`), so flows and subprocesses given
    only the URL land in it too.
    """
    require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_schema_engine() -> Iterator[Engine]:
    with fresh_pg_schema("t") as engine:
        metadata.create_all(engine)
        yield engine


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A clean database with the current schema, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "sanjin.db"
        eng = make_engine(f"sqlite:///{path}")
        metadata.create_all(eng)
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_schema_engine")
        _truncate_all(eng)
        yield eng


@pytest.fixture
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """SQLite only, for tests whose subject is not the database."""
    path = tmp_path_factory.mktemp("db") / "sanjin.db"
    eng = make_engine(f"sqlite:///{path}")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def database_url(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the product's settings (flows, CLI subprocesses) at the test database."""
    from core import db
    from core.settings import get_settings

    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("SANJIN_DATABASE_URL", url)
    get_settings.cache_clear()
    db._ENGINES.clear()
    db._ENGINES[url] = engine
    yield url
    get_settings.cache_clear()
    db._ENGINES.clear()
