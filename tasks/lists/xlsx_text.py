"""An XLSX sheet streamed as XML rows (text cells; prices as numbers): the public lists' spreadsheet at 100,000 rows.

xlsxwriter spends several microseconds of Python on each cell (type dispatch, bounds checks, escaping
each string on its own): the 900,000 cells of the institution list take it about 4 s on an idle
machine here (LIMITS.md: 5.5 s for 12 columns), most of the 5 s a whole publication may take; this
writer takes about 0.7 s. Every cell of a list is text, so a row can be one formatted
string, escaped only when something in it needs escaping. The package around the sheet (content
types, workbook, styles, theme, properties) is still xlsxwriter's own, written for the header row and
kept as is; only the rows of the sheet are streamed in, in the form xlsxwriter's constant_memory mode
writes them (inline strings), so Excel sees the file it knows. The layout (title, frozen bold header, widths,
autofilter, print setup) is xlsxwriter's too, set on that skeleton.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

SHEET = "xl/worksheets/sheet1.xml"
MAX_CHARS = 32_767  # Excel's limit of one cell, in UTF-16 units
# What forces the careful path for a row: markup characters, control characters (Excel writes them as
# _xHHHH_, and a literal _xHHHH_ must then be escaped itself), the two non-characters.
_NEEDS_CARE = re.compile(r"[&<>\x00-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_LITERAL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d+)?")  # a price as the lists write it; anything else stays text
_MONEY_STYLE = "<money style>"  # not a part name: the skeleton's way to say the style index


def write_text_xlsx(path: Path, sheet_name: str, header: Sequence[str], rows: Sequence[Sequence[str]], *,
                    title: str = "", number_columns: Sequence[int] = ()) -> None:
    """One sheet: a `title` row (when given), `header`, then `rows`, every cell a string but `number_columns`.

    Fit to publish and print: a bold header frozen below the title, column widths from the content, an
    autofilter over the data, landscape A4 fitted to the page width with the header repeated on every page.
    Cells of `number_columns` holding a plain decimal are numbers shown with 2 decimals (prices); any other
    value there stays text.
    """
    top = 2 if title else 1  # the header's row number
    parts = _skeleton(sheet_name, header, rows, title, number_columns)
    money = parts.pop(_MONEY_STYLE).decode()
    last = xl_col_to_name(max(len(header), 1) - 1) + str(len(rows) + top)
    letters = [xl_col_to_name(c) for c in range(len(header))]
    numbers = set(number_columns)
    # One template per row, every cell an inline string as xlsxwriter writes it; whitespace is always
    # preserved (harmless where there is none, and it spares looking at each cell's edges).
    template = "<row r=\"{0}\">" + "".join(
        (f"<c r=\"{letter}{{0}}\" s=\"{money}\"><v>{{{i + 1}}}</v></c>" if i in numbers else
         f"<c r=\"{letter}{{0}}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{{{i + 1}}}</t></is></c>")
        for i, letter in enumerate(letters)) + "</row>"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in parts.items():  # in xlsxwriter's order, [Content_Types].xml first
            if name != SHEET:
                archive.writestr(name, data)
                continue
            head, tail = data.decode().split("</sheetData>", 1)
            head = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last}"/>', head, count=1)
            with archive.open(SHEET, "w", force_zip64=True) as sheet:
                sheet.write(head.encode())
                chunk: list[str] = []
                for number, row in enumerate(rows, start=top + 1):
                    if (len(row) != len(letters) or _NEEDS_CARE.search(joined := "".join(row))
                            or len(joined) > MAX_CHARS // 2
                            or (numbers and not all(_NUMBER.fullmatch(row[i]) for i in numbers))):
                        chunk.append(_careful_row(number, letters, row, numbers, money))
                    else:
                        chunk.append(template.format(number, *row))
                    if len(chunk) == 2_000:
                        sheet.write("".join(chunk).encode())
                        chunk.clear()
                sheet.write(("".join(chunk) + "</sheetData>" + tail).encode())


def _careful_row(number: int, letters: Sequence[str], row: Sequence[str], numbers: Collection[int] = (),
                 money: str = "0") -> str:
    cells = []
    for i, (letter, value) in enumerate(zip(letters, row, strict=False)):
        if i in numbers and _NUMBER.fullmatch(value):
            cells.append(f"<c r=\"{letter}{number}\" s=\"{money}\"><v>{value}</v></c>")
            continue
        cells.append(f"<c r=\"{letter}{number}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">"
                     f"{escape_cell(value)}</t></is></c>")
    return f"<row r=\"{number}\">{''.join(cells)}</row>"


def escape_cell(value: str) -> str:
    """A cell's text as Excel stores it: cut to Excel's limit, control characters as _xHHHH_, markup escaped."""
    if len(value) > MAX_CHARS // 2 and len(value.encode("utf-16-le")) // 2 > MAX_CHARS:
        value = value.encode("utf-16-le")[:MAX_CHARS * 2].decode("utf-16-le", errors="ignore")
    value = _LITERAL_ESCAPE.sub(r"_x005F\1", value)
    value = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", value)
    value = value.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def column_width(text: str) -> int:
    """About how many characters wide `text` shows: a CJK or full-width character is two."""
    return len(text) + sum(1 for ch in text if ch >= "\u2e80")


def _widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column as wide as its header or its longest cell (by characters), within 8 and 50."""
    columns = list(itertools.zip_longest(*rows, fillvalue="")) if rows else [() for _ in header]
    return [min(max(column_width(name), column_width(str(max(column, key=len, default=""))), 6) + 2, 50)
            for name, column in zip(header, columns, strict=False)] + [8] * (len(header) - len(columns))


def _skeleton(sheet_name: str, header: Sequence[str], rows: Sequence[Sequence[str]], title: str,
              number_columns: Sequence[int]) -> dict[str, bytes]:
    """xlsxwriter's own package for a sheet holding the title and header rows, with its layout and print setup.

    The money style's index (the cells of number columns refer to it) is returned under _MONEY_STYLE.
    """
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "constant_memory": True})
    sheet = workbook.add_worksheet(sheet_name)
    bold = workbook.add_format({"bold": True, "border": 1, "bg_color": "#EEEEEE", "text_wrap": True,
                                "valign": "vcenter"})
    money = workbook.add_format({"num_format": "0.00"})
    top = 1 if title else 0  # the header's row index
    for i, width in enumerate(_widths(header, rows)):
        sheet.set_column(i, i, width, money if i in number_columns else None)
    if title:
        sheet.write_string(0, 0, title, workbook.add_format({"bold": True, "font_size": 14}))
    sheet.write_row(top, 0, list(header), bold)
    sheet.freeze_panes(top + 1, 0)
    if header:
        sheet.autofilter(top, 0, top + len(rows), len(header) - 1)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # one page wide, as many long as it takes
    sheet.repeat_rows(top)
    workbook.close()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    parts[_MONEY_STYLE] = str(money.xf_index or 0).encode()
    return parts


def stream_text_xlsx(sheet_name: str, header: Sequence[str], chunks: Iterator[Sequence[Sequence[str]]], *,
                     title: str = "") -> Iterator[bytes]:
    """write_text_xlsx's sheet as bytes while its rows are read, chunk by chunk (a web download's first
    bytes leave before the last row is read). Widths come from the first chunk; the row count, which
    the autofilter and its defined name need, is known at the end, so the workbook part is written last
    (a package's parts may come in any order; [Content_Types].xml still comes first)."""
    top = 2 if title else 1
    first = list(next(chunks, []))
    parts = _skeleton(sheet_name, header, first, title, ())
    parts.pop(_MONEY_STYLE)
    letters = [xl_col_to_name(c) for c in range(len(header))]
    template = "<row r=\"{0}\">" + "".join(
        f"<c r=\"{letter}{{0}}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{{{i + 1}}}</t></is></c>"
        for i, letter in enumerate(letters)) + "</row>"
    out = _Drain()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in parts.items():
            if name not in (SHEET, "xl/workbook.xml"):
                archive.writestr(name, data)
        yield out.take()
        head, tail = parts[SHEET].decode().split("</sheetData>", 1)
        head = re.sub(r'<dimension ref="[^"]*"/>', "", head, count=1)  # optional; the count is not known yet
        number = top
        with archive.open(SHEET, "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            for chunk in itertools.chain([first], chunks):
                text = []
                for row in chunk:
                    number += 1
                    joined = "".join(row)
                    text.append(_careful_row(number, letters, row) if len(row) != len(letters)
                                or _NEEDS_CARE.search(joined) or len(joined) > MAX_CHARS // 2
                                else template.format(number, *row))
                sheet.write("".join(text).encode())
                yield out.take()
            last = str(max(number, top + 1))
            sheet.write(("</sheetData>" + re.sub(r'(<autoFilter ref="[A-Z]+\d+:[A-Z]+)\d+', rf"\g<1>{last}", tail)
                         ).encode())
        workbook = re.sub(r"(_xlnm\._FilterDatabase[^>]*>[^<]*!\$[A-Z]+\$\d+:\$[A-Z]+\$)\d+", rf"\g<1>{last}",
                          parts["xl/workbook.xml"].decode())
        archive.writestr("xl/workbook.xml", workbook)
    yield out.take()


class _Drain(io.RawIOBase):
    """A write-only stream zipfile writes into (it then writes data descriptors: no seeking back); the
    bytes written so far are taken out as they are sent."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data
