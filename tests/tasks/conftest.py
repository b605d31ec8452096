"""Fixtures for the import tasks: a database with the Shenyang 2025 program loaded, and a clock inside its windows.

The `engine` fixture belongs to tests/conftest.py (SQLite and PostgreSQL) when that file provides
one; until then a SQLite file per test stands in, so these tests run either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel

from models.clock import SHANGHAI, FixedClock
from models.program_definition import ProgramDefinition, load_program_file, program_content_hash
from models.tables import (
    Application,
    AuditEvent,
    DeclarationItem,
    Enterprise,
    EnterpriseDeclaration,
    ImportRecord,
    Institution,
    Notice,
    Product,
    Program,
    metadata,
)

REPO = Path(__file__).resolve().parents[2]
SHENYANG_FILE = REPO / "deploy" / "programs" / "shenyang-2025.yaml"
INSIDE_WINDOWS = datetime(2025, 9, 12, 10, tzinfo=SHANGHAI)  # drug_list and enrollment both open

COUNTED: tuple[type[SQLModel], ...] = (
    Institution, Application, AuditEvent, Notice, ImportRecord, Enterprise, Product, EnterpriseDeclaration,
    DeclarationItem,
)


def _root_conftest_has_engine() -> bool:
    root = (REPO / "tests" / "conftest.py").resolve()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == root:
            return hasattr(module, "engine")
    return False


if not _root_conftest_has_engine():

    @pytest.fixture
    def engine(tmp_path: Path) -> Iterator[Engine]:
        from core.db import make_engine

        eng = make_engine(f"sqlite:///{tmp_path / 'imports.db'}")
        metadata.create_all(eng)
        yield eng
        eng.dispose()


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


MakeProgram = Callable[..., ProgramDefinition]


@pytest.fixture
def add_program(engine: Engine) -> MakeProgram:
    """Insert the Shenyang program (optionally with changed rules, under another slug) and return it."""

    def make(slug: str = "shenyang-2025", rules: Mapping[str, Any] | None = None) -> ProgramDefinition:
        data = load_program_file(SHENYANG_FILE).model_dump(mode="json")
        data = _merge(data, {"slug": slug, "rules": rules or {}})
        defn = ProgramDefinition.model_validate(data)
        with Session(engine) as session:
            existing = session.execute(select(Program).where(Program.slug == slug)).scalars().first()
            if existing is None:
                session.add(Program(
                    slug=defn.slug, name=defn.name, region=defn.region, region_code=defn.region_code,
                    definition=defn.model_dump(mode="json"), content_hash=program_content_hash(defn),
                ))
                session.commit()
        return defn

    return make


@pytest.fixture
def shenyang(add_program: MakeProgram) -> ProgramDefinition:
    return add_program()


@pytest.fixture
def clock_in_windows() -> FixedClock:
    return FixedClock(INSIDE_WINDOWS)


def table_counts(engine: Engine) -> dict[str, int]:
    """Row counts of every table an import writes, to prove a refused file wrote nothing."""
    with Session(engine) as session:
        return {
            m.__name__: int(session.execute(select(func.count()).select_from(m)).scalar_one())  # type: ignore[arg-type]
            for m in COUNTED
        }


@pytest.fixture
def db_counts(engine: Engine) -> Callable[[], dict[str, int]]:
    return lambda: table_counts(engine)
