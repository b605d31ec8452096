"""The provincial platform's export files and the CLI's single records, read and applied through one set of checks.

Imports are all-or-nothing per file and report every bad row at once, like the upload importers
(tasks.intake.declaration_import, tasks.intake.application_import), with the RowError/RowWarning/ImportRejected
of tasks.intake.spreadsheets. A CLI record goes through the very checks of a file row, so the two can
never disagree. The accounts, contracts and selections modules supply what a row means.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, select

from core.bulk import insert_ignoring_conflicts, table_of
from core.db import transaction
from models.application_rules import MAX_COUNT
from models.clock import Clock
from models.program import ImportRecord
from models.validators import FieldError, field_error, validate_insurance_institution_code, validate_required_text
from tasks.intake.spreadsheets import (
    ImportRejected,
    RowError,
    RowWarning,
    Sheet,
    SheetStream,
    lost_digits_error,
    normalize_header,
    parse_upload,
    read_upload,
)
from tasks.platform.context import INST, Ctx, chunks, flush_audit, program_context

__all__ = [
    "Applied",
    "Cells",
    "Inst",
    "PlatformImportResult",
    "RecordRejected",
    "column_positions",
    "import_platform",
    "institutions_by_code",
    "not_future",
    "one_record",
    "parse_code",
    "parse_date",
    "parse_dates",
    "parse_text",
    "parse_volume",
    "parse_year",
    "read_sheet",
    "record_import",
    "row_error",
    "row_warning",
    "running_institution",
]

T = TypeVar("T")


@dataclass
class PlatformImportResult:
    """What an accounts/contracts import did; ``already_imported``: these exact bytes came before."""

    rows: int
    changed: int
    unchanged: int = 0
    warnings: list[RowWarning] = field(default_factory=list)
    import_id: int | None = None
    already_imported: bool = False


class RecordRejected(ValueError):
    """A single record from the CLI (register_account, sign_contract) was refused; nothing changed."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(f"{e.column} “{e.value}”: {e.message}" for e in self.errors))


def row_error(row: int, column: str, value: str, rule: str, zh: str, en: str) -> RowError:
    return RowError(row, column, value, f"{zh} / {en}", rule)


def row_warning(row: int, column: str, value: str, rule: str, zh: str, en: str) -> RowWarning:
    return RowWarning(row, column, value, f"{zh} / {en}", rule)


def read_sheet(path: Path) -> tuple[bytes, Sheet]:
    data = read_upload(path)
    return data, parse_upload(data, path.name)


def column_positions(sheet: Sheet | SheetStream, filename: str, wanted: Sequence[str]) -> dict[str, int]:
    """Where each documented column is; any order, extra columns ignored, missing ones an error."""
    found = [normalize_header(h) for h in sheet.header]
    problems = [c for c in wanted if c not in found]
    twice = [c for c in wanted if found.count(c) > 1]
    if problems or twice:
        detail = "；".join(
            ([f"缺少列 missing: {'、'.join(problems)}"] if problems else [])
            + ([f"列重复 duplicated: {'、'.join(twice)}"] if twice else []))
        raise ImportRejected(filename, [RowError(
            sheet.header_row, "表头", "、".join(sheet.header),
            f"表头不正确：{detail}。应包含：{'、'.join(wanted)} / wrong header row: {detail}; "
            f"required columns: {', '.join(wanted)}", "header.mismatch")])
    return {c: found.index(c) for c in wanted}


class Cells:
    """The documented cells of one data row, with its parse errors collected, not raised."""

    def __init__(self, sheet: Sheet | SheetStream, number: int, cells: Sequence[str], columns: dict[str, int]) -> None:
        self.number = number
        self.errors: list[RowError] = []
        self._cells, self._columns, self._lossy = cells, columns, sheet.lossy

    def raw(self, column: str) -> str:
        i = self._columns[column]
        return self._cells[i] if i < len(self._cells) else ""

    def take(self, column: str, parse: Callable[[str, str], T]) -> T | None:
        raw = self.raw(column)
        if (self.number, self._columns[column]) in self._lossy:
            self.errors.append(lost_digits_error(self.number, column, raw))
            return None
        try:
            return parse(raw, column)
        except FieldError as exc:
            self.errors.append(RowError(self.number, column, raw, exc.message, exc.rule))
            return None


def _clean(value: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))


# A time of day after the date is ignored: an Excel date-time cell reads "2025-10-15 14:30:00".
_DATE = re.compile(r"(?:(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{4})(\d{2})(\d{2}))(?:T?\d{1,2}:\d{2}(?::\d{2})?)?")


def parse_date(raw: str, column: str) -> date:
    """YYYY-MM-DD as documented; also 2025/10/8 and 2025年10月8日, which Excel and people write."""
    text = _clean(raw)
    if not text:
        raise field_error(column, raw, "date.empty", f"{column}不能为空", f"{column} is required")
    m = _DATE.fullmatch(text)
    try:
        if m is None:
            raise ValueError
        y, mo, d = (m[1], m[2], m[3]) if m[1] else (m[4], m[5], m[6])
        return date(int(y), int(mo), int(d))
    except ValueError:
        raise field_error(column, raw, "date.invalid", f"{column}应为日期，格式 YYYY-MM-DD（如 2025-10-15）",
                    "must be a date YYYY-MM-DD, e.g. 2025-10-15") from None


_DATE_PLAIN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_dates(raws: Sequence[str]) -> list[date] | None:
    """:func:`parse_date` of a whole column when every cell is a plain YYYY-MM-DD, else None (the caller then parses
    cell by cell, where a bad cell raises its own error)."""
    plain = _DATE_PLAIN.fullmatch
    if not all(map(plain, raws)):
        return None
    try:
        return list(map(date.fromisoformat, raws))
    except ValueError:  # 2025-02-30: an error cell by cell
        return None


def parse_code(raw: str, column: str) -> str:
    return validate_insurance_institution_code(raw, column)


def parse_text(max_len: int) -> Callable[[str, str], str]:
    return lambda raw, column: validate_required_text(raw, column, max_len)


def parse_year(raw: str, column: str) -> int:
    m = re.fullmatch(r"(\d{4})(?:\.0+)?年?(?:度)?", _clean(raw))
    if m is None or not 2000 <= int(m[1]) <= 2100:
        raise field_error(column, raw, "year.invalid", f"{column}应为四位年份，如 2025", "must be a four-digit year, e.g. 2025")
    return int(m[1])


def parse_volume(raw: str, column: str) -> int:
    text = _clean(raw).replace(",", "")
    if not text:
        raise field_error(column, raw, "int.empty", f"{column}不能为空", f"{column} is required")
    m = re.fullmatch(r"(\d+)(?:\.0+)?", text)
    if m is None:
        raise field_error(column, raw, "int.invalid", f"{column}应为不小于0的整数", "must be a whole number ≥ 0")
    if len(m[1].lstrip("0")) > 9:  # 10^20 overflowed the integer column with a traceback (issue #18)
        raise field_error(column, raw, "int.too_large", f"{column}数值过大（不能超过{MAX_COUNT}）",
                          f"is too large (at most {MAX_COUNT})")
    return int(m[1])


def not_future(ctx: Ctx, row: int, column: str, day: date) -> RowError | None:
    if day <= ctx.today:
        return None
    return row_error(row, column, day.isoformat(), "date.future", f"{column}晚于今天（{ctx.today.isoformat()}）",
                     f"is after today ({ctx.today.isoformat()})")


def _previous_import(ctx: Ctx, kind: str, digest: str) -> PlatformImportResult | None:
    t = table_of(ImportRecord)
    row = ctx.session.execute(select(t.c.id, t.c.rows).where(
        t.c.kind == kind, t.c.program_id == ctx.program_id, t.c.sha256 == digest)).first()
    if row is None:
        return None
    return PlatformImportResult(rows=int(row.rows), changed=0, import_id=int(row.id), already_imported=True)


def record_import(ctx: Ctx, kind: str, digest: str, filename: str, rows: int, created: int,
                  actor: str) -> int | None:
    t = table_of(ImportRecord)
    insert_ignoring_conflicts(ctx.session, ImportRecord, [{
        "kind": kind, "program_id": ctx.program_id, "sha256": digest, "filename": filename[:300], "rows": rows,
        "created": created, "imported_by": actor[:64], "imported_at": ctx.now}], ["kind", "program_id", "sha256"])
    found = ctx.session.execute(select(t.c.id).where(
        t.c.kind == kind, t.c.program_id == ctx.program_id, t.c.sha256 == digest)).scalar()
    return int(found) if found is not None else None


@dataclass(frozen=True)
class Inst:
    id: int
    name: str
    proxy_parent_id: int | None
    special_designated: bool


def institutions_by_code(ctx: Ctx, codes: Sequence[str]) -> dict[str, Inst]:
    out: dict[str, Inst] = {}
    for chunk in chunks(sorted(set(codes))):
        for r in ctx.session.execute(select(INST.c.id, INST.c.insurance_code, INST.c.name, INST.c.proxy_parent_id,
                                            INST.c.special_designated).where(INST.c.insurance_code.in_(chunk))):
            out[r.insurance_code] = Inst(int(r.id), r.name, r.proxy_parent_id, bool(r.special_designated))
    return out


def running_institution(ctx: Ctx, row: int, code: str, insts: dict[str, Inst], running: set[int],
                        errors: list[RowError]) -> Inst | None:
    """The row's institution, or None after recording why it cannot be used.

    An unknown code or an institution not running in this program means the file is wrong (or
    early), not the system: an error, never a warning.
    """
    column = "机构医保编码"
    inst = insts.get(code)
    if inst is None:
        errors.append(row_error(row, column, code, "institution.unknown", "系统中没有该医保编码的机构",
                                "no institution with this insurance code"))
        return None
    if inst.id not in running:
        errors.append(row_error(row, column, code, "institution.not_running",
                                f"“{inst.name}”不是本项目（{ctx.slug}）正在运行的“三进”机构",
                                f"{inst.name} is not a running institution of {ctx.slug}"))
        return None
    return inst


L = TypeVar("L")
Applied = tuple[int, int, list[RowError], list[RowWarning]]  # changed, unchanged, errors, warnings


def import_platform(engine: Engine, slug: str, path: Path, kind: str, columns: Sequence[str],
                    parse: Callable[[Ctx, Cells], L | None], apply: Callable[[Ctx, list[L], str], Applied], *,
                    clock: Clock, actor: str) -> PlatformImportResult:
    """Read, parse every row, apply all-or-nothing, audit, and remember the file's bytes.

    The platform exports only ever move rows forward, so the same bytes again are skipped whole.
    """
    data, sheet = read_sheet(path)
    digest = hashlib.sha256(data).hexdigest()
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        if (previous := _previous_import(ctx, kind, digest)) is not None:
            return previous
        where = column_positions(sheet, path.name, columns)
        errors: list[RowError] = []
        lines: list[L] = []
        for r in sheet.rows:
            cells = Cells(sheet, r.number, r.cells, where)
            line = parse(ctx, cells)
            errors.extend(cells.errors)
            if line is not None:
                lines.append(line)
        if not sheet.rows:
            errors.append(row_error(sheet.header_row, "表头", "", "file.no_rows", "文件中没有数据行", "the file has no rows"))
        changed, unchanged, more, warnings = apply(ctx, lines, actor)
        errors.extend(more)
        if errors:
            raise ImportRejected(path.name, errors)
        flush_audit(ctx)
        import_id = record_import(ctx, kind, digest, path.name, len(sheet.rows), changed, actor)
        return PlatformImportResult(rows=len(sheet.rows), changed=changed, unchanged=unchanged, warnings=warnings,
                                    import_id=import_id)


def one_record(engine: Engine, slug: str, columns: Sequence[str], values: Sequence[str],
               parse: Callable[[Ctx, Cells], L | None], apply: Callable[[Ctx, list[L], str], Applied], *,
               clock: Clock, actor: str) -> PlatformImportResult:
    """A CLI record goes through the very checks of a file row, so the two can never disagree."""
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        cells = Cells(Sheet(tuple(columns), 0, []), 0, values, {c: i for i, c in enumerate(columns)})
        line = parse(ctx, cells)
        if line is None:
            raise RecordRejected(cells.errors)
        changed, unchanged, errors, warnings = apply(ctx, [line], actor)
        if errors:
            raise RecordRejected(errors)
        flush_audit(ctx)
        return PlatformImportResult(rows=1, changed=changed, unchanged=unchanged, warnings=warnings)
