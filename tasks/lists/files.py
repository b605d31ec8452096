"""A list version rendered as the public reads it: HTML pages, and the XLSX and CSV downloads.

The HTML is an entry page (the version's facts, the downloads, a table of contents) and pages of at
most PAGE_ROWS rows, the institution list by district: a single page of 100,000 rows was 26 MB, too
much for a browser, let alone a phone; the whole list is the XLSX and CSV download
(tasks.lists.downloads). Rows are built as strings, escaped only when a row holds a character that
needs it; a template loop paid a call per cell. Formula-like text cells are neutralised in the XLSX
and CSV, and shown as text in the HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlmodel import Session

from models.catalog import ListVersion
from models.clock import to_shanghai
from models.program import Program
from models.states import ListKind
from tasks.lists.downloads import FORMULA_STARTS, Downloads, neutralize, neutralized, start_downloads
from tasks.lists.versions import ListRows, columns_of, version_rows

__all__ = ["FORMULA_STARTS", "PAGE_ROWS", "TITLES", "html_rows", "neutralize", "neutralized", "paginate",
           "render_version", "start_version_downloads", "write_html"]

TITLES = {ListKind.DRUGS: "“三进”集采药品清单", ListKind.RECOMMENDED: "“三进”推荐药品清单",
          ListKind.INSTITUTIONS: "“三进”医药机构名单"}
PAGE_ROWS = 2_000
GROUPED_BY = {ListKind.INSTITUTIONS: "所属区县"}  # SPEC: the institution list is read by district
_HTML_SPECIAL = re.compile(r"[&<>\"']")


def html_rows(rows: Sequence[tuple[str, ...]], start: int | None = 1) -> Markup:
    """Table rows, numbered from `start` (None: not numbered), every cell escaped as Jinja would escape it."""
    out = []
    lead = "<tr><td>{}</td><td>" if start is not None else "<tr><td>"
    for number, row in enumerate(rows, 1 if start is None else start):
        if _HTML_SPECIAL.search("".join(row)):
            cells = "</td><td>".join([escape(v) for v in row])
        else:
            cells = "</td><td>".join(row)
        out.append(f"{lead.format(number)}{cells}</td></tr>\n")
    return Markup("".join(out))


@dataclass(frozen=True)
class Page:
    """One HTML page of a version: `rows` are numbered `first`…`last` within their group."""

    number: int
    group: str | None
    group_count: int
    first: int
    rows: Sequence[tuple[str, ...]]

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1


def paginate(kind: ListKind, rows: Sequence[tuple[str, ...]], page_rows: int | None = None) -> list[Page]:
    """Rows (in key order) cut into pages: per group in the order groups first appear, then by size."""
    groups: dict[str | None, list[tuple[str, ...]]] = {}
    column = GROUPED_BY.get(kind)
    if column is None:
        groups[None] = list(rows)
    else:
        at = columns_of(kind).index(column)
        for row in rows:
            groups.setdefault(row[at], []).append(row)
    page_rows = page_rows or PAGE_ROWS
    pages: list[Page] = []
    for group, members in groups.items():
        for start in range(0, len(members), page_rows):
            pages.append(Page(len(pages) + 1, group, len(members), start + 1, members[start:start + page_rows]))
    return pages


def stem_of(program: Program, version: ListVersion) -> str:
    return f"{program.slug}-{version.kind.value}-v{version.number}"


def page_name(stem: str, number: int) -> str:
    return f"{stem}-p{number}.html"


@cache
def _env() -> Environment:
    return Environment(loader=PackageLoader("notifications", "templates"), autoescape=select_autoescape(["html"]))


def start_version_downloads(kind: ListKind, rows: ListRows, folder: Path, stem: str = "list") -> Downloads:
    """The CSV and XLSX of a version's rows, started (a child process writes a big list's) into `folder`."""
    sheet = TITLES[kind][:31].replace("“", "").replace("”", "")  # Excel: at most 31 characters
    prices = [i for i, column in enumerate(rows.columns) if column.endswith("(元)")]  # numbers, 2 decimals
    return start_downloads(folder / f"{stem}.csv", folder / f"{stem}.xlsx", sheet, rows.columns, rows.ordered(),
                           TITLES[kind], prices)


def render_version(session: Session, program: Program, version: ListVersion, out_dir: Path,
                   rows: ListRows | None = None, downloads: Downloads | None = None) -> dict[str, Path]:
    """Write the files of one version; re-rendering an old version gives the same files.

    `rows` is the version's content when the caller holds it already (it just published it), and
    `downloads` the CSV and XLSX when the caller started them already (they keep their own names).
    Keys: html (the entry page), csv, xlsx, and page-1, page-2, … (written before the entry page).
    """
    assert version.id is not None
    if rows is None:
        rows = version_rows(session, version.id, columns_of(version.kind))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem_of(program, version)
    if downloads is None:
        downloads = start_version_downloads(version.kind, rows, out_dir, stem)
    try:
        paths = write_html(program, version, rows, out_dir)
    except BaseException:
        downloads.cancel()
        raise
    paths["csv"], paths["xlsx"] = downloads.wait()
    return paths


def write_html(program: Program, version: ListVersion, rows: ListRows, out_dir: Path) -> dict[str, Path]:
    """The entry page and its pages: keys html, page-1, page-2, …"""
    title = f"{program.name} {TITLES[version.kind]}（第{version.number}版）"
    return _write_pages(out_dir, stem_of(program, version), title, version, rows.columns, rows.ordered())


def _write_pages(out_dir: Path, stem: str, title: str, version: ListVersion, columns: tuple[str, ...],
                 ordered: Sequence[tuple[str, ...]]) -> dict[str, Path]:
    pages = paginate(version.kind, ordered)
    template = _env().get_template("published_list_page.html")
    paths: dict[str, Path] = {}
    entry, xlsx = quote(f"{stem}.html"), quote(f"{stem}.xlsx")
    for page in pages:
        path = out_dir / page_name(stem, page.number)
        neighbour = {n: quote(page_name(stem, n)) if 1 <= n <= len(pages) else None
                     for n in (page.number - 1, page.number + 1)}
        path.write_text(template.render(
            title=title, heading=page.group or "全部", page=page, columns=columns, entry=entry, xlsx=xlsx,
            prev=neighbour[page.number - 1], next=neighbour[page.number + 1],
            rows_html=html_rows(page.rows, page.first)), encoding="utf-8")
        paths[f"page-{page.number}"] = path
    groups: dict[str | None, dict[str, Any]] = {}
    for page in pages:
        group = groups.setdefault(page.group, {"name": page.group, "count": page.group_count, "pages": []})
        group["pages"].append({"href": quote(page_name(stem, page.number)), "first": page.first,
                               "last": page.last})
    paths["html"] = out_dir / f"{stem}.html"
    paths["html"].write_text(_env().get_template("published_list.html").render(
        title=title, version=version, count=len(ordered), published=f"{to_shanghai(version.published_at):%Y-%m-%d %H:%M}",
        group_label=GROUPED_BY.get(version.kind), groups=list(groups.values()), xlsx=xlsx,
        csv=quote(f"{stem}.csv"), diff=quote(f"{stem}-diff.html")), encoding="utf-8")
    return paths
