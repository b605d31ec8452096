"""Schema creation and upgrade through Alembic, callable from the CLI, tests and the demo."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "deploy" / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        # Config values go through configparser interpolation: a percent-encoded URL (a password,
        # `options=-csearch_path%3D...`) must have its `%` doubled or Alembic refuses it.
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema of `engine`'s database to `revision`."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_problem(engine: Engine) -> str | None:
    """Why this database cannot be served yet (never created, or older than the code), in both languages."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return None
    if current is None:
        from sqlalchemy import inspect

        if inspect(engine).has_table("program"):
            return None  # made by `metadata.create_all` (the tests' databases), not by Alembic: current by definition
        return ("数据库尚未建立，请先运行 `sanjin db upgrade` / the database has no schema yet: run `sanjin db upgrade` "
                f"first ({engine.url.render_as_string(hide_password=True)})")
    return (f"数据库结构版本为 {current}，程序需要 {head}，请先运行 `sanjin db upgrade` / the schema is at {current}, "
            f"the program needs {head}: run `sanjin db upgrade` first")
