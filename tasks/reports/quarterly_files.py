"""The quarterly statistics as files: XLSX (a sheet per table) and HTML, in exactly the attachment's layout.

Each table: the title 集采药品“三进”相关数据统计表, the scope and quarter, the header row (blank, 定点药店, 民营医疗机构,
村卫生室, 社区卫生站, 汇总) and the six rows; counts are numbers, amounts numbers with 2 decimals (元).
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import xlsxwriter
from jinja2 import Environment, select_autoescape

from models.quarterly import QUARTER_COLUMN_LABELS, TITLE, TOTAL_LABEL, QuarterColumn
from tasks.reports.quarterly import QuarterlyStatistics

HEADER = ("", *(QUARTER_COLUMN_LABELS[c] for c in QuarterColumn), TOTAL_LABEL)

_HTML = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string("""\
<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ title }} {{ stats.quarter }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
th,td{border:1px solid #444;padding:.3em .8em}td.n{text-align:right}caption{font-weight:bold;margin:.5em}</style>
</head><body>
<h1>{{ title }}</h1>
<p>{{ stats.name }} · {{ stats.quarter.label }}{% if edition %} · {{ edition }}{% endif %}</p>
{% for table in stats.tables %}
<table>
<caption>{{ table.scope }}</caption>
<thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for label, cells in table.rows() %}<tr><th scope="row">{{ label }}</th>{% for c in cells %}<td class="n">{{ fmt(c) }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{% endfor %}
<p>金额单位：元。统计口径见系统说明（README“季度统计表”）。</p>
</body></html>
""")


def _fmt(value: int | Decimal) -> str:
    return f"{value:,.2f}" if isinstance(value, Decimal) else str(value)


def quarterly_html(stats: QuarterlyStatistics, edition: str = "") -> str:
    """The HTML page; `edition` (e.g. 第2版，2026-04-20生成) names an issued version."""
    return _HTML.render(stats=stats, title=TITLE, header=HEADER, fmt=_fmt, edition=edition)


def quarterly_xlsx(stats: QuarterlyStatistics, edition: str = "") -> bytes:
    """The workbook's bytes, a sheet per table (built in memory: an issued version stores them)."""
    buffer = io.BytesIO()
    _write_xlsx(stats, buffer, edition)
    return buffer.getvalue()


def write_quarterly(stats: QuarterlyStatistics, out_dir: Path) -> dict[str, Path]:
    """Write `<slug>-<quarter>-quarterly.xlsx` and `.html` into `out_dir`; returns them by format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{stats.slug}-{stats.quarter}-quarterly"
    html = out_dir / f"{stem}.html"
    html.write_text(quarterly_html(stats), encoding="utf-8")
    xlsx = out_dir / f"{stem}.xlsx"
    xlsx.write_bytes(quarterly_xlsx(stats))
    return {"xlsx": xlsx, "html": html}


def _write_xlsx(stats: QuarterlyStatistics, target: io.BytesIO, edition: str) -> None:
    book = xlsxwriter.Workbook(target, {"in_memory": True})
    title = book.add_format({"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"})
    subtitle = book.add_format({"align": "center"})
    head = book.add_format({"bold": True, "border": 1, "align": "center", "valign": "vcenter", "bg_color": "#EEEEEE"})
    label = book.add_format({"border": 1})
    count = book.add_format({"border": 1, "num_format": "0"})
    money = book.add_format({"border": 1, "num_format": "#,##0.00"})
    used: set[str] = set()
    for table in stats.tables:
        name = table.scope[:31]
        while name in used:
            name = name[:29] + str(len(used))
        used.add(name)
        sheet = book.add_worksheet(name)
        sheet.merge_range(0, 0, 0, len(HEADER) - 1, TITLE, title)
        sheet.merge_range(1, 0, 1, len(HEADER) - 1, " · ".join(filter(None, (table.scope, stats.quarter.label, edition, "金额单位：元"))), subtitle)
        sheet.write_row(2, 0, HEADER, head)
        for i, (row_label, cells) in enumerate(table.rows(), start=3):
            sheet.write_string(i, 0, row_label, label)
            for j, value in enumerate(cells, start=1):
                if isinstance(value, Decimal):
                    sheet.write_number(i, j, float(value), money)
                else:
                    sheet.write_number(i, j, value, count)
        sheet.set_column(0, 0, 36)
        sheet.set_column(1, len(HEADER) - 1, 15)
        sheet.autofilter(2, 0, 2 + len(table.rows()), len(HEADER) - 1)
        sheet.freeze_panes(3, 1)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)
        sheet.repeat_rows(2)
    book.close()


__all__ = ["HEADER", "quarterly_html", "quarterly_xlsx", "write_quarterly"]
