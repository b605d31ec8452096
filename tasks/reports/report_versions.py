"""Issued report versions as stored: listing them, and writing any one's files again exactly as it was sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

from core.bulk import table_of
from models.reports import ReportKind, ReportVersion
from tasks.programs import get_program


@dataclass(frozen=True)
class StoredVersion:
    """An issued version as the list shows it (its files stay in the database)."""

    id: int
    kind: ReportKind
    period: str
    version: int
    generated_at: datetime
    generated_by: str
    content_hash: str
    file_stem: str


def stored_versions(engine: Engine, slug: str) -> list[StoredVersion]:
    """Every issued version of the program, by kind, period and version (no file bytes read)."""
    v = table_of(ReportVersion)
    with Session(engine) as session:
        program, _ = get_program(session, slug)
        rows = session.execute(select(v.c.id, v.c.kind, v.c.period, v.c.version, v.c.generated_at, v.c.generated_by,
                                      v.c.content_hash, v.c.file_stem).where(v.c.program_id == program.id)
                               .order_by(v.c.kind, v.c.period, v.c.version)).all()
    return [StoredVersion(int(r.id), ReportKind(r.kind), r.period, int(r.version), r.generated_at, r.generated_by,
                          r.content_hash, r.file_stem) for r in rows]


def write_stored_files(engine: Engine, version_id: int, out_dir: Path) -> dict[str, Path]:
    """A stored version's files, exactly as issued, under their versioned names."""
    with Session(engine) as session:
        return write_version_files(session, version_id, out_dir)


def write_version_files(session: Session, version_id: int, out_dir: Path | None) -> dict[str, Path]:
    """The stored version's files under their versioned names (nothing when no directory is given)."""
    if out_dir is None:
        return {}
    v = table_of(ReportVersion)
    stem, xlsx, html = session.execute(select(v.c.file_stem, v.c.xlsx, v.c.html).where(v.c.id == version_id)).one()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"xlsx": out_dir / f"{stem}.xlsx", "html": out_dir / f"{stem}.html"}
    files["xlsx"].write_bytes(xlsx)
    files["html"].write_text(html, encoding="utf-8")
    return files


__all__ = ["StoredVersion", "stored_versions", "write_stored_files", "write_version_files"]
