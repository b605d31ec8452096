"""What the two upload importers share: their result, refusals, the program lookup and the file's receipt.

Both importers (tasks.intake.declaration_import, tasks.intake.application_import) are all-or-nothing per file.
District staff fix a file and send it again, so one upload must report every bad cell at once
(row, column, value, bilingual message) and write nothing while any is left; a file that was
half imported could not simply be sent again. The same bytes sent twice are recognised by their
sha256 (ImportRecord) and create nothing the second time. The importers are plain functions on
an Engine; the flows wrap them as Prefect tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from core.bulk import insert_ignoring_conflicts, table_of
from models.program import ImportRecord, Program
from models.program_definition import ProgramDefinition
from tasks.intake.spreadsheets import ImportRejected, RowError, RowWarning, Sheet, lost_digits_error

__all__ = [
    "HEADER_COLUMN",
    "ImportResult",
    "ProgramNotFound",
    "ProgramRow",
    "file_error",
    "header_problem",
    "load_program",
    "lossy_errors",
    "previous_import",
    "record_import",
    "set_created",
    "unnamed_cells",
    "without_shadowed",
]

HEADER_COLUMN = "表头"  # the column named by errors about the header row


# --------------------------------------------------------------------------- results and errors


class ProgramNotFound(LookupError):
    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"项目“{slug}”不存在 / no program with slug {slug!r}")

    def __reduce__(self) -> tuple[type[ProgramNotFound], tuple[str]]:
        return (type(self), (self.slug,))


@dataclass
class ImportResult:
    """What one import did; ``already_imported`` means these exact bytes were imported before."""

    rows: int
    created: int
    skipped: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    import_id: int | None = None
    already_imported: bool = False
    declaration_id: int | None = None


# --------------------------------------------------------------------------- shared helpers


def file_error(filename: str, message: str, *, row: int = 0, column: str = "", value: str = "",
               rule: str = "file") -> ImportRejected:
    return ImportRejected(filename, [RowError(row, column, value, message, rule)])


@dataclass(frozen=True)
class ProgramRow:
    id: int
    name: str
    definition: ProgramDefinition


def load_program(session: Session, slug: str) -> ProgramRow:
    t = table_of(Program)
    row = session.execute(select(t.c.id, t.c.name, t.c.definition).where(t.c.slug == slug)).first()
    if row is None:
        raise ProgramNotFound(slug)
    return ProgramRow(int(row.id), row.name, ProgramDefinition.model_validate(row.definition))


def previous_import(session: Session, kind: str, program_id: int, digest: str) -> ImportResult | None:
    """The result to return when these exact bytes were imported into this program before."""
    t = table_of(ImportRecord)
    row = session.execute(
        select(t.c.id, t.c.rows).where(t.c.kind == kind, t.c.program_id == program_id, t.c.sha256 == digest)
    ).first()
    if row is None:
        return None
    return ImportResult(rows=int(row.rows), created=0, import_id=int(row.id), already_imported=True)


def record_import(
    session: Session, kind: str, program_id: int, digest: str, filename: str, rows: int, actor: str, now: datetime
) -> int | None:
    """The ImportRecord row, or None when a concurrent import of the same bytes committed first."""
    t = table_of(ImportRecord)
    inserted = insert_ignoring_conflicts(
        session, ImportRecord,
        [{"kind": kind, "program_id": program_id, "sha256": digest, "filename": filename[:300],
          "rows": rows, "created": 0, "imported_by": actor[:64], "imported_at": now}],
        ["kind", "program_id", "sha256"],
    )
    if not inserted:
        return None
    found = session.execute(
        select(t.c.id).where(t.c.kind == kind, t.c.program_id == program_id, t.c.sha256 == digest)
    ).scalar_one()
    return int(found)


def set_created(session: Session, import_id: int, created: int) -> None:
    t = table_of(ImportRecord)
    session.execute(update(t).where(t.c.id == import_id).values(created=created))


def header_problem(expected: Iterable[str], found: Sequence[str], detail: str) -> str:
    shown = "、".join(f or "（空）" for f in found) or "（无）"
    return (
        f"表头不正确：{detail}。应为：{'、'.join(expected)}；实际为：{shown} / "
        f"wrong header row: {detail}. expected: {', '.join(expected)}; found: {', '.join(found)}"
    )


def unnamed_cells(sheet: Sheet, width: int) -> list[RowError]:
    """Data typed right of the last header would be silently lost; it is an error instead."""
    errors: list[RowError] = []
    for r in sheet.rows:
        for col in range(width, len(r.cells)):
            if r.cells[col]:
                errors.append(RowError(
                    r.number, f"第{col + 1}列", r.cells[col],
                    "该列没有表头，数据无法识别 / this column has no header: the value cannot be imported",
                    "cell.no_header",
                ))
    return errors


def lossy_errors(sheet: Sheet, names: Sequence[str]) -> list[RowError]:
    """Cells whose digits Excel already rounded away; see :func:`without_shadowed`."""
    return [lost_digits_error(number, names[col] if col < len(names) else f"第{col + 1}列")
            for number, col in sorted(sheet.lossy)]


def without_shadowed(errors: list[RowError]) -> list[RowError]:
    """Drop validator errors on cells that lost digits: "check character wrong" would send people
    hunting for a typo, while the cure is to format the column as text."""
    lossy = {(e.row, e.column) for e in errors if e.rule == "cell.number_lost_digits"}
    return [e for e in errors if e.rule == "cell.number_lost_digits" or (e.row, e.column) not in lossy]
