"""Reading the bureau's upload files (XLSX streamed, XLS/ODS via python-calamine, CSV) into rows of text.

Everything comes back as the text the user typed, because identifiers must be validated as text:
Excel stores a phone number typed into a General cell as the float 13812345678.0, and
``str()`` of that, or of an 18-digit code (1.2345678901234568e+17), is not what anyone typed.
Validation and error messages key on 1-based spreadsheet row numbers, so blank rows are kept out
of the data but never renumber the rows after them.

python-calamine rather than openpyxl: LIMITS.md measures 0.84 s against 12.1 s for 100,000 rows. An XLSX too
large for calamine's whole-sheet copy (`WHOLE_SHEET_BYTES`), or read row by row, is read by
tasks.intake.xlsx_stream instead, which gives calamine's values a slice of rows at a time: calamine builds the
whole sheet first (~824 MB for a 1,000,000-line order export, issue #14).

The importers' shared vocabulary for refusing a file lives here too (RowError, ImportRejected and the
reading steps that raise it), so every upload reports the same problem the same way.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, cast

import python_calamine

from tasks.intake.upload_limits import UploadLimits, UploadTooLarge, check_rows_columns, check_size, check_zip
from tasks.intake.xlsx_stream import XlsxDamaged, open_sheet

__all__ = [
    "DataRow",
    "ImportRejected",
    "RowError",
    "RowWarning",
    "Sheet",
    "SpreadsheetError",
    "cell_text",
    "lost_digits_error",
    "normalize_header",
    "parse_upload",
    "read_table",
    "read_table_bytes",
    "read_upload",
]

_ZIP_MAGIC = b"PK\x03\x04"  # xlsx / xlsm / ods
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls
# Excel keeps 15 significant digits: an 18-digit USCC typed into a number cell has already lost
# its last digits inside the workbook, and no conversion can bring them back.
_EXACT_INT_LIMIT = 10**15


class SpreadsheetError(ValueError):
    """The file as a whole cannot be read (not a spreadsheet, damaged, empty); bilingual message."""


class DataRow(NamedTuple):
    """One non-blank data row; ``number`` is the row number Excel shows (the header is usually 1).

    A named tuple, not a frozen dataclass: an upload has 100,000 of them and it is 1.6× cheaper to build.
    """

    number: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Sheet:
    """The header row and the data rows of the first worksheet, all cells as stripped text.

    ``lossy`` holds (row number, column index) of numeric cells that were too long to be exact (or,
    in a CSV, written as 1.38123E+10): the importer reports them as errors instead of validating
    digits Excel already rounded away.
    """

    header: tuple[str, ...]
    header_row: int
    rows: list[DataRow]
    lossy: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    sheet_name: str | None = None


def normalize_header(text: str) -> str:
    """Fold the header variants Excel users produce: full-width （元）, line breaks, stray spaces.

    NFKC maps full-width brackets and letters to ASCII, and whitespace inside a header is never
    meaningful ("中选价\\n(元)" is a wrapped cell), so both are folded before headers are compared.
    """
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _float_text(value: float) -> str:
    """The digits a user typed for a float cell: integral values without '.0', never 1e+20 notation."""
    if not math.isfinite(value):
        return repr(value)
    if value.is_integer():
        return str(int(value))
    # repr() is the shortest text that round-trips, i.e. what was typed; Decimal undoes 1e-05.
    return format(Decimal(repr(value)), "f")


def cell_text(value: object) -> str:
    """Text of one calamine cell value as the user typed or saw it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value).strip()


# What Excel writes into a CSV for a long number shown in General format: the digits are gone.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE]\+\d+")


def _is_lossy(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and abs(value) >= _EXACT_INT_LIMIT


@dataclass
class SheetStream:
    """A sheet read row by row: the header now, the data rows as they are iterated.

    ``lossy`` fills as rows go by (a row's entries are in it once the row has been yielded). A million-row
    export read whole held its cells as Python objects twice (the reader's lists, then the text tuples),
    ~1.3 GB; an importer that takes the rows in chunks holds one chunk.
    """

    header: tuple[str, ...]
    header_row: int
    rows: Iterator[DataRow]
    lossy: set[tuple[int, int]]
    sheet_name: str | None = None


def _text_rows(raw_rows: Iterable[Sequence[object]], lossy: set[tuple[int, int]], *,
               from_csv: bool) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(Excel's row number, the cells as stripped text) of every non-blank row; lossy cells noted in `lossy`."""
    strip = str.strip
    for index, raw in enumerate(raw_rows):
        number = index + 1
        try:
            cells = tuple(map(strip, cast(Sequence[str], raw)))  # the usual row, all text: one C-level pass
        except TypeError:  # a number, date or boolean cell somewhere in the row
            cells = tuple(map(cell_text, raw))
            lossy.update((number, col) for col, value in enumerate(raw) if _is_lossy(value))
        else:
            if from_csv:
                lossy.update((number, col) for col, text in enumerate(cells)
                             if "+" in text and _SCIENTIFIC.fullmatch(text))
        if any(cells):
            yield number, cells


def _stream(raw_rows: Iterable[Sequence[object]], name: str, sheet_name: str | None, *,
            from_csv: bool = False) -> SheetStream:
    """Header = first non-blank row; later blank rows are dropped but keep their numbers."""
    lossy: set[tuple[int, int]] = set()
    rows = _text_rows(raw_rows, lossy, from_csv=from_csv)
    first = next(rows, None)
    if first is None:
        raise SpreadsheetError(f"文件“{name}”是空的，没有表头 / {name} is empty: no header row found")
    header_row, header = first
    lossy.clear()  # only the header row can have been read so far
    # Trailing empty header cells are formatting residue (a coloured column), not columns.
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    return SheetStream(header[:width], header_row, (DataRow(n, c) for n, c in rows), lossy, sheet_name)


def _build(
    raw_rows: Sequence[Sequence[object]], name: str, sheet_name: str | None, *, from_csv: bool = False
) -> Sheet:
    """The whole sheet at once (see `_stream`)."""
    stream = _stream(raw_rows, name, sheet_name, from_csv=from_csv)
    rows = list(stream.rows)
    return Sheet(header=stream.header, header_row=stream.header_row, rows=rows, lossy=frozenset(stream.lossy),
                 sheet_name=sheet_name)


def _open_worksheet(data: bytes, name: str) -> Any:
    try:
        workbook = python_calamine.load_workbook(io.BytesIO(data))
        metas = [m for m in workbook.sheets_metadata if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
        if not metas:
            raise SpreadsheetError(f"文件“{name}”中没有工作表 / {name} has no worksheet")
        visible = [m for m in metas if m.visible == python_calamine.SheetVisibleEnum.Visible]
        chosen = (visible or metas)[0]
        return workbook.get_sheet_by_name(chosen.name)
    except SpreadsheetError:
        raise
    except Exception as exc:  # calamine raises CalamineError, ZipError, XmlError, ... for damage
        raise SpreadsheetError(
            f"无法读取Excel文件“{name}”，文件可能已损坏或加密 / cannot read {name} as a spreadsheet: {exc}"
        ) from exc


def _damaged(name: str, exc: Exception) -> SpreadsheetError:
    return SpreadsheetError(
        f"无法读取Excel文件“{name}”，文件可能已损坏或加密 / cannot read {name} as a spreadsheet: {exc}")


def _out_of_range(name: str) -> SpreadsheetError:
    return SpreadsheetError(
        f"文件“{name}”中有超出范围的日期或时长单元格（例如格式为时长的极大数字），无法读取；请改为数字或文本格式后重新导出 / "
        f"{name} has a date or duration cell out of range (e.g. a huge number formatted as a duration); format it as "
        "a number or text and export again")


@contextmanager
def _calamine_values(name: str) -> Iterator[None]:
    """calamine turns a cell into a date or duration as it hands it over, and one out of range (a huge number or
    an infinity under a date or `[h]:mm` format) raises OverflowError — or, from its Rust date library, pyo3's
    PanicException, a BaseException — in the middle of the read: a refusal in words, never a traceback."""
    try:
        yield
    except (OverflowError, ValueError) as exc:
        raise _out_of_range(name) from exc
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        raise _out_of_range(name) from exc


def _streamed_rows(rows: Iterator[list[object]], name: str, limits: UploadLimits) -> Iterator[list[object]]:
    """The streamed sheet's rows, damage found on the way a SpreadsheetError, and the row and column limits held
    again as rows go by: the scan before reading (check_zip) sees only cells that carry a reference."""
    max_rows, max_columns = limits.max_rows, limits.max_columns
    try:
        for number, row in enumerate(rows, 1):
            if number > max_rows or len(row) > max_columns:
                check_rows_columns(number, len(row), name, limits)
            yield row
    except XlsxDamaged as exc:
        raise _damaged(name, exc) from exc
    except UploadTooLarge as exc:
        raise SpreadsheetError(str(exc)) from exc


def _open_streamed(data: bytes, name: str, limits: UploadLimits) -> tuple[str, Iterator[list[object]]] | None:
    """(sheet name, rows) of an XLSX read as a stream, or None for a zip that is not one (ODS, XLSB)."""
    try:
        sheet = open_sheet(data)
    except XlsxDamaged as exc:
        raise _damaged(name, exc) from exc
    if sheet is None:
        return None
    return sheet.name, _streamed_rows(sheet.rows, name, limits)


def _worksheet_rows(sheet: Any, name: str = "upload") -> Iterator[Sequence[object]]:
    """Rows as `to_python(skip_empty_area=False)` gives them: leading blank columns kept, so positions agree."""
    pad = [""] * sheet.start[1] if sheet.start else []
    with _calamine_values(name):
        for row in sheet.iter_rows():
            yield pad + row if pad else row


def _decodes_as(data: bytes, encoding: str) -> bool:
    """Whether the whole of `data` decodes, checked a megabyte at a time (no copy of the text is kept)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    step = 1 << 20
    try:
        for start in range(0, len(data), step):
            decoder.decode(data[start:start + step])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _csv_encoding(data: bytes, name: str) -> str:
    """As `_decode_csv` decides it, without holding the decoded text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for encoding in ("utf-8-sig", "gb18030"):
        if _decodes_as(data, encoding):
            return encoding
    raise SpreadsheetError(
        f"无法识别文件“{name}”的编码（应为UTF-8或GB18030） / {name} is neither UTF-8 nor GB18030 text"
    )


def _csv_rows(data: bytes, name: str) -> Iterator[list[str]]:
    """Rows decoded as they are read: the whole text at once (and the reader's copy of it) was ~6× the file."""
    encoding = _csv_encoding(data, name)
    head = data[:1 << 16].decode(encoding, errors="ignore")
    first_line = head[:head.find("\n")] if "\n" in head else head
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    try:
        yield from csv.reader(text, delimiter=delimiter)
    except csv.Error as exc:
        raise SpreadsheetError(f"CSV文件“{name}”格式错误 / {name} is not valid CSV: {exc}") from exc
    except UnicodeDecodeError as exc:  # UTF-16 is not checked whole beforehand: an odd byte count ends here
        raise SpreadsheetError(
            f"文件“{name}”是{encoding.upper()}文本，但有不完整或已损坏的字节（请另存为UTF-8的CSV） / {name} is "
            f"{encoding} text, damaged or cut short: save it as UTF-8 CSV") from exc


def stream_table_bytes(data: bytes, name: str = "upload", limits: UploadLimits | None = None) -> SheetStream:
    """Like `read_table_bytes`, row by row. A file damaged past its header raises SpreadsheetError while iterated."""
    limits = limits or UploadLimits.from_settings()
    if not data.strip():
        raise SpreadsheetError(f"文件“{name}”是空的 / {name} is empty")
    try:  # the same limits as a file read whole, checked before the reader sees it (a cell at XFD1048576 aborts it)
        check_size(len(data), name, limits)
        if data.startswith(_ZIP_MAGIC):
            check_zip(data, name, limits)
    except UploadTooLarge as exc:
        raise SpreadsheetError(str(exc)) from exc
    if data.startswith(_ZIP_MAGIC) and (streamed := _open_streamed(data, name, limits)) is not None:
        sheet_name, rows = streamed
        return _stream(rows, name, sheet_name)
    if data.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        sheet = _open_worksheet(data, name)
        return _stream(_worksheet_rows(sheet, name), name, sheet.name)
    if Path(name).suffix.lower() in {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}:
        raise SpreadsheetError(
            f"文件“{name}”扩展名是Excel，但内容不是Excel文件 / {name} has an Excel extension but is not a workbook"
        )
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpreadsheetError(f"文件“{name}”不是Excel或CSV文件 / {name} is neither a spreadsheet nor CSV")
    return _stream(_csv_rows(data, name), name, None, from_csv=True)


def _padded(rows: Iterable[list[object]]) -> list[list[object]]:
    """Rows as wide as calamine's grid: to the last column holding a value, blanks after it dropped."""
    out = []
    for row in rows:
        end = len(row)
        while end and row[end - 1] == "":
            end -= 1
        out.append(row[:end] if end < len(row) else row)
    width = max(map(len, out), default=0)
    return [row + [""] * (width - len(row)) if len(row) < width else row for row in out]


def _whole_grid(sheet: Any, name: str, limits: UploadLimits) -> list[list[object]]:
    """calamine's sheet as the rows `_padded(_streamed_rows(_worksheet_rows(sheet)))` gives, built by calamine.

    `to_python` makes the grid's lists in Rust: the rows one by one through Python generators cost ~0.9 s of CPU
    for 100,000 applications (figure 1), a third of the read. Its rows are all as wide as the grid, so the limits
    are checked once and `_padded` has nothing to do unless the grid's last column is blank throughout.
    """
    with _calamine_values(name):
        grid: list[list[object]] = sheet.to_python(skip_empty_area=False)
    width = len(grid[0]) if grid else 0
    try:
        if width > limits.max_columns:
            check_rows_columns(1, width, name, limits)
        if len(grid) > limits.max_rows:
            check_rows_columns(limits.max_rows + 1, width, name, limits)
    except UploadTooLarge as exc:
        raise SpreadsheetError(str(exc)) from exc
    if width and all(row[-1] == "" for row in grid):
        return _padded(grid)
    return grid


def _read_workbook(data: bytes, name: str) -> Sheet:
    try:
        workbook = python_calamine.load_workbook(io.BytesIO(data))
        metas = [m for m in workbook.sheets_metadata if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
        if not metas:
            raise SpreadsheetError(f"文件“{name}”中没有工作表 / {name} has no worksheet")
        visible = [m for m in metas if m.visible == python_calamine.SheetVisibleEnum.Visible]
        chosen = (visible or metas)[0]
        # skip_empty_area=False: keep leading blank rows so indexes are Excel's row numbers.
        worksheet = workbook.get_sheet_by_name(chosen.name)
        with _calamine_values(name):
            raw = worksheet.to_python(skip_empty_area=False)
    except SpreadsheetError:
        raise
    except Exception as exc:  # calamine raises CalamineError, ZipError, XmlError, ... for damage
        raise SpreadsheetError(
            f"无法读取Excel文件“{name}”，文件可能已损坏或加密 / cannot read {name} as a spreadsheet: {exc}"
        ) from exc
    return _build(raw, name, chosen.name)


def _decode_csv(data: bytes, name: str) -> str:
    """UTF-8 (BOM or not) first; GB18030 is what a Chinese Excel writes for "CSV (逗号分隔)"."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")  # Excel's "Unicode 文本"
        except UnicodeDecodeError as exc:  # an odd byte count, a lone surrogate: cut short or damaged
            raise SpreadsheetError(
                f"文件“{name}”是UTF-16文本，但第 {exc.start} 字节处不完整或已损坏（请另存为UTF-8的CSV） / {name} is "
                f"UTF-16 text, damaged or cut short at byte {exc.start}: save it as UTF-8 CSV") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SpreadsheetError(
            f"无法识别文件“{name}”的编码（应为UTF-8或GB18030） / {name} is neither UTF-8 nor GB18030 text"
        ) from exc


def _read_csv(data: bytes, name: str, limits: UploadLimits) -> Sheet:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpreadsheetError(f"文件“{name}”不是Excel或CSV文件 / {name} is neither a spreadsheet nor CSV")
    text = _decode_csv(data, name)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        check_rows_columns(text.count("\n") + 1 if len(text) > 4096 else 0, 0, name, limits)
        raw = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        check_rows_columns(len(raw), max(map(len, raw), default=0), name, limits)
    except csv.Error as exc:
        raise SpreadsheetError(f"CSV文件“{name}”格式错误 / {name} is not valid CSV: {exc}") from exc
    except UploadTooLarge as exc:
        raise SpreadsheetError(str(exc)) from exc
    return _build(raw, name, None, from_csv=True)


# A whole-sheet read of an XLSX whose worksheet XML unpacks to at most this is done by python-calamine (Rust):
# 0.6-0.8 s of CPU for 20,000 applications (19.5 MB of XML) against 2.4-3.4 s for the streamed reader, with the
# same values (tests/tasks/test_xlsx_stream.py). Larger sheets are streamed, so the reader's memory stays flat
# (issue #14: calamine holds the whole sheet, ~824 MB for a 1,000,000-line export). 128 MiB is ~130,000 rows of
# the application template: calamine's copy of such a sheet is well below the rows the importer keeps anyway.
WHOLE_SHEET_BYTES = 128 << 20


def _worksheet_bytes(data: bytes) -> int:
    """The unpacked size of the largest worksheet part of a zip (0 if none or not a readable zip)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return max((i.file_size for i in archive.infolist() if i.filename.startswith("xl/worksheets/")),
                       default=0)
    except (zipfile.BadZipFile, ValueError, OSError):
        return 0


def read_table_bytes(data: bytes, name: str = "upload", limits: UploadLimits | None = None) -> Sheet:
    """Parse an upload already in memory (the importer hashes the same bytes it parses), within the size limits."""
    limits = limits or UploadLimits.from_settings()
    if not data.strip():
        raise SpreadsheetError(f"文件“{name}”是空的 / {name} is empty")
    try:
        check_size(len(data), name, limits)
        if data.startswith(_ZIP_MAGIC):
            check_zip(data, name, limits)
    except UploadTooLarge as exc:
        raise SpreadsheetError(str(exc)) from exc
    if data.startswith(_ZIP_MAGIC) and _worksheet_bytes(data) <= WHOLE_SHEET_BYTES:
        sheet = _open_worksheet(data, name)
        return _build(_whole_grid(sheet, name, limits), name, sheet.name)
    if data.startswith(_ZIP_MAGIC) and (streamed := _open_streamed(data, name, limits)) is not None:
        sheet_name, streamed_rows = streamed
        return _build(_padded(streamed_rows), name, sheet_name)
    if data.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        return _read_workbook(data, name)
    if Path(name).suffix.lower() in {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}:
        raise SpreadsheetError(
            f"文件“{name}”扩展名是Excel，但内容不是Excel文件 / {name} has an Excel extension but is not a workbook"
        )
    return _read_csv(data, name, limits)


def read_table(path: Path) -> Sheet:
    """Read an XLSX/XLS or CSV file from disk; the format is taken from the content, not the name."""
    limits = UploadLimits.from_settings()
    try:
        check_size(path.stat().st_size, path.name, limits)
        data = path.read_bytes()
    except UploadTooLarge as exc:
        raise SpreadsheetError(str(exc)) from exc
    except OSError as exc:
        raise SpreadsheetError(f"无法打开文件“{path.name}” / cannot open {path}: {exc}") from exc
    return read_table_bytes(data, path.name, limits)


# --------------------------------------------------------------------------- reporting an upload's bad cells
# Shared by every importer (tasks.intake.declaration_import, tasks.intake.application_import, tasks.platform.files): the
# same file problem gets the same message and rule id whichever upload it is in.

_MAX_LISTED_ERRORS = 30


@dataclass(frozen=True)
class RowError:
    """One bad cell: ``row`` is the spreadsheet row number (0 for the file as a whole)."""

    row: int
    column: str
    value: str
    message: str
    rule: str = ""

    def __str__(self) -> str:
        where = f"第{self.row}行" if self.row else "文件"
        col = f" {self.column}" if self.column else ""
        val = f" “{self.value}”" if self.value else ""
        return f"{where}{col}{val}: {self.message}"


@dataclass(frozen=True)
class RowWarning(RowError):
    """Something a reviewer should look at that does not stop the import (stored in ``findings``)."""

    def finding(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "rule": self.rule,
                "message": self.message}


class ImportRejected(Exception):
    """The file was refused and nothing was written; ``errors`` lists every bad cell found."""

    def __init__(self, filename: str, errors: Sequence[RowError]) -> None:
        self.filename = filename
        self.errors: list[RowError] = sorted(errors, key=lambda e: (e.row, e.column))
        count = len(self.errors)
        lines = [str(e) for e in self.errors[:_MAX_LISTED_ERRORS]]
        if count > _MAX_LISTED_ERRORS:
            lines.append(f"…另有{count - _MAX_LISTED_ERRORS}处 / … and {count - _MAX_LISTED_ERRORS} more")
        super().__init__(
            f"{filename}: 发现{count}处错误，未导入任何数据 / {count} error(s), nothing was imported\n"
            + "\n".join(lines)
        )

    def __reduce__(self) -> tuple[type[ImportRejected], tuple[str, list[RowError]]]:
        # Prefect pickles task exceptions; the default would replay only the formatted text.
        return (type(self), (self.filename, self.errors))


def read_upload(path: Path) -> bytes:
    """The uploaded file's bytes (importers hash what they parse), or the file refused as unreadable or too large."""
    try:
        check_size(path.stat().st_size, path.name, UploadLimits.from_settings())  # before reading it into memory
        return path.read_bytes()
    except UploadTooLarge as exc:
        raise ImportRejected(path.name, [RowError(0, "", "", str(exc), "file.too_large")]) from exc
    except OSError as exc:
        raise ImportRejected(path.name, [RowError(0, "", "", f"无法打开文件 / cannot open the file: {exc}",
                                                  "file.unreadable")]) from exc


def parse_upload(data: bytes, filename: str) -> Sheet:
    """The upload as a sheet, or the file refused with the reader's bilingual reason."""
    try:
        return read_table_bytes(data, filename)
    except SpreadsheetError as exc:
        raise ImportRejected(filename, [RowError(0, "", "", str(exc), "file.unreadable")]) from exc


def lost_digits_error(row: int, column: str, value: str = "") -> RowError:
    """A cell in :attr:`Sheet.lossy`: reported instead of validated, since "check character wrong"
    would send people hunting for a typo while the cure is to format the column as text."""
    return RowError(
        row, column, value,
        "Excel把该单元格存成了数字，超过15位的数字已丢失精度；请将该列设为“文本”格式后重新填写 / "
        "Excel stored this cell as a number and lost digits beyond 15; format the column as Text and re-enter it",
        "cell.number_lost_digits",
    )
