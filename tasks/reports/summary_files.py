"""The year-end summary as files: XLSX (one sheet, fit to print) and HTML, a row per district, city and total.

The sheet is laid out as every published spreadsheet is: a title row, the bold frozen header with an autofilter,
columns as wide as their content, counts as numbers, coverage as a percentage, amounts with 2 decimals, printed
landscape on A4 fitted to the page width with the header repeated on every page.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import xlsxwriter
from jinja2 import Environment, select_autoescape

from models.summary import SCOPE_HEADER, SUMMARY_COLUMNS, SUMMARY_TITLE
from tasks.lists.xlsx_text import column_width
from tasks.reports.summary import YearSummary

HEADER = (SCOPE_HEADER, *(h for _, h, _ in SUMMARY_COLUMNS))

_HTML = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string("""\
<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ summary.year }}年{{ title }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #444;
padding:.3em .6em}td.n{text-align:right}tr.city td,tr.city th{background:#f3f3f3}tr.total td,tr.total th{
font-weight:bold;background:#e6e6e6}</style>
</head><body>
<h1>{{ summary.name }}：{{ summary.year }}年{{ title }}</h1>
{% if edition %}<p>{{ edition }}</p>{% endif %}
<p>统计期间：{{ summary.year }}-01-01 至 {{ summary.year }}-12-31；覆盖率以 {{ summary.year }}-12-31 的定点医药机构名册
{%- if summary.register_as_of %}（{{ summary.register_as_of }} 版）{% else %}（尚未导入名册，以本项目申报机构计）{% endif %}为分母。</p>
<table>
<thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in summary.rows %}<tr class="{{ row.level }}"><th scope="row">{{ row.scope }}</th>{% for c in row.cells() %}<td class="n">{{ fmt(c, loop.index0) }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
<p>口径见系统说明（README“年度执行情况”）。</p>
</body></html>
""")


def _fmt(value: int | float | Decimal, index: int) -> str:
    kind = SUMMARY_COLUMNS[index][2]
    if kind == "share":
        return f"{float(value):.1%}"
    if kind == "money":
        return f"{Decimal(value):,.2f}"
    return str(value)


def summary_html(summary: YearSummary, edition: str = "") -> str:
    """The HTML page; `edition` (e.g. 第2版（2026-12-28生成）) names an issued version."""
    return _HTML.render(summary=summary, title=SUMMARY_TITLE, header=HEADER, fmt=_fmt, edition=edition)


def summary_xlsx(summary: YearSummary, edition: str = "") -> bytes:
    """The workbook's bytes (built in memory)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(f"{summary.year}年执行情况")
    title = book.add_format({"bold": True, "font_size": 14})
    head = book.add_format({"bold": True, "border": 1, "valign": "vcenter", "bg_color": "#EEEEEE"})
    styles = {level: {kind: book.add_format({"border": 1, "bold": level == "total",
                                             "bg_color": {"city": "#F3F3F3", "total": "#E6E6E6"}.get(level, "#FFFFFF"),
                                             **({"num_format": fmt} if fmt else {})})
                      for kind, fmt in (("label", ""), ("count", "0"), ("share", "0.0%"), ("money", "#,##0.00"))}
              for level in ("district", "city", "total")}
    sheet.write_string(0, 0, f"{summary.name}：{summary.year}年{SUMMARY_TITLE}{'　' + edition if edition else ''}",
                       title)
    sheet.write_row(1, 0, HEADER, head)
    for i, row in enumerate(summary.rows, start=2):
        style = styles[row.level]
        sheet.write_string(i, 0, row.scope, style["label"])
        for j, ((_, _, kind), value) in enumerate(zip(SUMMARY_COLUMNS, row.cells(), strict=True), start=1):
            sheet.write_number(i, j, float(value), style[kind])
    sheet.set_column(0, 0, max([column_width(r.scope) for r in summary.rows] + [column_width(SCOPE_HEADER)]) + 2)
    for j, (_, header, _kind) in enumerate(SUMMARY_COLUMNS, start=1):
        widest = max([len(_fmt(v, j - 1)) for v in (r.cells()[j - 1] for r in summary.rows)] + [0]) + 2
        sheet.set_column(j, j, max(widest, column_width(header) + 2))  # as wide as the header or the widest figure
    sheet.freeze_panes(2, 1)
    sheet.autofilter(1, 0, 1 + len(summary.rows), len(HEADER) - 1)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(1)
    book.close()
    return buffer.getvalue()


def write_summary(summary: YearSummary, out_dir: Path) -> dict[str, Path]:
    """Write `<slug>-<year>-summary.xlsx` and `.html` into `out_dir`; returns them by format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{summary.slug}-{summary.year}-summary"
    files = {"xlsx": out_dir / f"{stem}.xlsx", "html": out_dir / f"{stem}.html"}
    files["xlsx"].write_bytes(summary_xlsx(summary))
    files["html"].write_text(summary_html(summary), encoding="utf-8")
    return files


__all__ = ["HEADER", "summary_html", "summary_xlsx", "write_summary"]
