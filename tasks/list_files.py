"""A list version rendered as the public reads it: an HTML page, XLSX and CSV (UTF-8 with BOM for Excel)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import xlsxwriter
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import Session

from models.catalog import ListVersion
from models.program import Program
from models.states import ListKind
from tasks.lists import DRUG_COLUMNS, INSTITUTION_COLUMNS, version_entries

TITLES = {ListKind.DRUGS: "“三进”集采药品清单", ListKind.RECOMMENDED: "“三进”推荐药品清单",
          ListKind.INSTITUTIONS: "“三进”医药机构名单"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    """A cell that a spreadsheet would run as a formula is prefixed with an apostrophe (CSV/XLSX injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _env() -> Environment:
    return Environment(loader=PackageLoader("notifications", "templates"), autoescape=select_autoescape(["html"]))


def render_version(session: Session, program: Program, version: ListVersion, out_dir: Path) -> dict[str, Path]:
    """Write the three files of one version; re-rendering an old version gives the same files."""
    assert version.id is not None
    columns = INSTITUTION_COLUMNS if version.kind == ListKind.INSTITUTIONS else DRUG_COLUMNS
    entries = [entry for _, entry in sorted(version_entries(session, version.id).items())]
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{program.slug}-{version.kind.value}-v{version.number}"
    paths = {"html": out_dir / f"{stem}.html", "csv": out_dir / f"{stem}.csv", "xlsx": out_dir / f"{stem}.xlsx"}
    title = f"{program.name} {TITLES[version.kind]}（第{version.number}版）"
    paths["html"].write_text(_env().get_template("published_list.html").render(
        title=title, columns=columns, entries=entries, version=version, program=program), encoding="utf-8")
    with paths["csv"].open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([neutralize(e.get(c)) for c in columns] for e in entries)
    workbook = xlsxwriter.Workbook(str(paths["xlsx"]), {"constant_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet(TITLES[version.kind][:31].replace("“", "").replace("”", ""))
    sheet.write_row(0, 0, columns)
    for r, entry in enumerate(entries, start=1):
        for c, column in enumerate(columns):
            sheet.write_string(r, c, neutralize(entry.get(column)))
    workbook.close()
    return paths
