"""The register of designated institutions (定点医药机构名册) a bureau exports from its insurance system.

All-or-nothing per file, like the platform's exports (tasks.intake.operations_import): every bad row is reported
with row, column, value and reason, and nothing is written. Each import is the register's version of the day
(`as_of` = the clock's date); a second, different file the same day replaces that day's version, the same bytes
again change nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import Session

from core.bulk import insert_rows, table_of
from core.db import serialize, transaction
from models.application_rules import parse_kind
from models.clock import Clock
from models.program import ImportRecord
from models.register import RegisterEntry, parse_status
from models.validators import field_error
from tasks.intake.operations_import import Parsed, parse_rows
from tasks.intake.spreadsheets import ImportRejected, RowError
from tasks.platform.context import program_context
from tasks.platform.files import (
    column_positions,
    parse_code,
    parse_date,
    parse_text,
    read_sheet,
    record_import,
    row_error,
)

COLUMNS = ("机构医保编码", "单位名称", "所属区县", "机构类别", "定点状态", "定点日期")
RECORD_KIND = "register"


@dataclass
class RegisterImportResult:
    as_of: date
    rows: int
    created: int
    replaced: int = 0  # rows of an earlier import the same day that this one replaced
    already_imported: bool = False


def _district(districts: set[str]) -> Any:
    def parse(raw: str, column: str) -> str:
        text = "".join(raw.split())
        if text not in districts:
            raise field_error(column, raw, "district.unknown", f"{column}“{text}”不是本项目的区县",
                              "is not a district of this program")
        return text
    return parse


def _checked(rows: Parsed, today: date, errors: list[RowError]) -> None:
    seen: dict[str, int] = {}
    for number, v in rows:
        if (first := seen.setdefault(v["机构医保编码"], number)) != number:
            errors.append(row_error(number, "机构医保编码", v["机构医保编码"], "register.duplicate",
                                    f"机构医保编码与第{first}行重复", f"the same insurance code as row {first}"))
        if v["定点日期"] > today:
            errors.append(row_error(number, "定点日期", v["定点日期"].isoformat(), "date.future",
                                    f"定点日期晚于今天（{today.isoformat()}）", f"is after today ({today.isoformat()})"))


def import_register(engine: Engine, slug: str, path: Path, *, clock: Clock,
                    actor: str = "system") -> RegisterImportResult:
    """Import the program's register as today's version; ImportRejected (every bad row) and nothing written."""
    data, sheet = read_sheet(path)
    digest = hashlib.sha256(data).hexdigest()
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        serialize(session, f"import:register:{ctx.program_id}")  # as applications: an overlapping file waits
        t, entries = table_of(ImportRecord), table_of(RegisterEntry)
        previous = session.execute(select(t.c.rows).where(
            t.c.kind == RECORD_KIND, t.c.program_id == ctx.program_id, t.c.sha256 == digest)).first()
        if previous is not None:
            return RegisterImportResult(ctx.today, int(previous.rows), 0, already_imported=True)
        where = column_positions(sheet, path.name, COLUMNS)
        errors: list[RowError] = []
        if not sheet.rows:
            errors.append(row_error(sheet.header_row, "表头", "", "file.no_rows", "文件中没有数据行", "the file has no rows"))
        parsers = {"机构医保编码": parse_code, "单位名称": parse_text(200),
                   "所属区县": _district({d.name for d in ctx.defn.districts}),
                   "机构类别": lambda raw, column: parse_kind(raw, column), "定点状态": lambda raw, column: parse_status(raw, column),
                   "定点日期": parse_date}
        parsed = parse_rows(sheet, where, parsers, errors)
        _checked(parsed, ctx.today, errors)
        if errors:
            raise ImportRejected(path.name, errors)
        same_day = (entries.c.program_id == ctx.program_id, entries.c.as_of == ctx.today)
        replaced = session.execute(select(func.count()).select_from(entries).where(*same_day)).scalar_one()
        session.execute(delete(entries).where(*same_day))
        import_id = record_import(ctx, RECORD_KIND, digest, path.name, len(sheet.rows), 0, actor)
        created = insert_rows(session, RegisterEntry, [
            {"program_id": ctx.program_id, "as_of": ctx.today, "insurance_code": v["机构医保编码"], "name": v["单位名称"],
             "district": v["所属区县"], "kind": v["机构类别"], "status": v["定点状态"], "designated_on": v["定点日期"],
             "import_id": import_id} for _, v in parsed])
        session.execute(update(t).where(t.c.id == import_id).values(created=created))
        return RegisterImportResult(ctx.today, len(sheet.rows), created, int(replaced or 0))


def register_versions(engine: Engine, program_id: int) -> list[tuple[date, int]]:
    """The register's versions of a program: (import date, institutions), oldest first."""
    entries = table_of(RegisterEntry)
    with Session(engine) as session:
        return [(d, int(n)) for d, n in session.execute(
            select(entries.c.as_of, func.count()).where(entries.c.program_id == program_id)
            .group_by(entries.c.as_of).order_by(entries.c.as_of))]


__all__ = ["COLUMNS", "RegisterImportResult", "import_register", "register_versions"]
