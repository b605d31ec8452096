"""Policy: the streaming reader's plain-form path (a slice read by regular expressions, issue #14) gives exactly the
rows ElementTree gives for the same sheet (values, types, blank rows, gaps, damage refused with the same message),
and an export in the plain form never reaches ElementTree."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import xlsxwriter
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tasks.intake import xlsx_stream
from tasks.intake.xlsx_stream import open_sheet
from tests.tasks.test_xlsx_stream import SHARED, STYLES, assert_same_as_calamine, package

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_X14AC = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"


@contextmanager
def _tree_only() -> Iterator[None]:
    """The reader as it was before the plain form: every slice through ElementTree."""
    with mock.patch.object(xlsx_stream._Plain, "rows", lambda self, body, values, part_name: None):
        yield


def _read(data: bytes) -> tuple[str, Any]:
    """("rows", every row as (type, value) pairs) or (the error's type, the rows before it, its message)."""
    sheet = open_sheet(data)
    assert sheet is not None
    rows: list[list[tuple[str, object]]] = []
    try:
        for row in sheet.rows:
            rows.append([(type(v).__name__, v) for v in row])
    except Exception as exc:  # compared, whatever it is
        return type(exc).__name__, (rows, str(exc))
    return "rows", rows


def assert_plain_reads_as_the_tree(data: bytes, slice_bytes: int) -> tuple[str, Any]:
    with mock.patch.object(xlsx_stream, "_SLICE", slice_bytes):
        fast = _read(data)
        with _tree_only():
            tree = _read(data)
    assert fast == tree
    return fast


_PLAIN_TEXTS = st.lists(st.sampled_from(["a", "中", "0", " ", "\t", "\n", "_x000D_", "_x005F_", "_x", ">", '"', "'"]),
                       max_size=6).map("".join)
# What XML or ElementTree treat otherwise: entities, a CR, "]]>" (refused), a control character (refused).
_ODD_TEXTS = st.sampled_from(["&amp;", "a&lt;b", "&#20013;", "a\rb", "]]>", "\x01"])
_NUMBERS = st.sampled_from(["1", "2.50", "1e3", "45945", "45945.5", "0.5", "-0", "1E-3", "", "12345678901234567"])
_PLAIN_CELL = st.one_of(
    st.tuples(st.just("inline"), _PLAIN_TEXTS),
    st.tuples(st.just("preserve"), _PLAIN_TEXTS),
    st.tuples(st.just("shared"), st.sampled_from(["0", "1", "2", "3", "4", ""])),
    st.tuples(st.just("number"), _NUMBERS, st.sampled_from(["", "0", "1", "2", "3", "4", "9"])),
    st.tuples(st.just("number"), st.sampled_from(["abc", " 7 ", "1_0", "inf"]), st.just("")),  # kept as text
    st.tuples(st.just("n"), _NUMBERS),
    st.tuples(st.just("str"), _PLAIN_TEXTS),
    st.tuples(st.just("empty"), st.sampled_from(["", "1"])),
    st.tuples(st.just("closed"), st.sampled_from(["", "t", "2"])),
)
_ODD_CELL = st.one_of(
    st.tuples(st.just("inline"), _ODD_TEXTS),
    st.tuples(st.just("str"), _ODD_TEXTS),
    st.tuples(st.just("shared"), st.sampled_from(["5", "-1", "x"])),  # -1 is the last string, as int() reads it
    st.tuples(st.just("n"), st.sampled_from(["abc", "zwölf"])),  # refused: typed a number, not one
    st.tuples(st.just("bool"), st.sampled_from(["0", "1"])),
    st.tuples(st.just("formula"), _NUMBERS),
    st.tuples(st.just("rich"), _PLAIN_TEXTS),
)
_CELL = st.one_of(*[_PLAIN_CELL] * 8, _ODD_CELL)
# Excel's row attributes (x14ac:dyDescent is refused where the sheet does not declare the prefix), and an unusual
# order ElementTree reads all the same.
_ROW_ATTRS = st.sampled_from(["", "", "", ' spans="1:7"', ' spans="1:7" ht="20" customHeight="1"', ' hidden="1"',
                              ' spans="1:3" x14ac:dyDescent="0.25"', ' customHeight="1" spans="1:2"'])


def _letters(col: int) -> str:
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def _cell_xml(ref: str, cell: tuple[str, ...]) -> str:
    kind = cell[0]
    if kind == "inline":
        return f'<c r="{ref}" t="inlineStr"><is><t>{cell[1]}</t></is></c>'
    if kind == "preserve":
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{cell[1]}</t></is></c>'
    if kind == "shared":
        return f'<c r="{ref}" t="s"><v>{cell[1]}</v></c>'
    if kind == "number":
        style = f' s="{cell[2]}"' if cell[2] else ""
        return f'<c r="{ref}"{style}><v>{cell[1]}</v></c>'
    if kind == "n":
        return f'<c r="{ref}" t="n"><v>{cell[1]}</v></c>'
    if kind == "str":
        return f'<c r="{ref}" t="str"><v>{cell[1]}</v></c>'
    if kind == "empty":
        return f'<c r="{ref}"{" s=" + chr(34) + cell[1] + chr(34) if cell[1] else ""}/>'
    if kind == "closed":
        attr = {"": "", "t": ' t="inlineStr"', "2": ' s="2"'}[cell[1]]
        return f'<c r="{ref}"{attr}></c>'
    if kind == "bool":
        return f'<c r="{ref}" t="b"><v>{cell[1]}</v></c>'
    if kind == "formula":
        return f'<c r="{ref}"><f>1+1</f><v>{cell[1]}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><r><t>{cell[1]}</t></r><r><t>!</t></r></is></c>'


@st.composite
def _sheets(draw: st.DrawFn) -> tuple[str, bool]:
    """Sheet XML: rows with gaps and blank rows, cells at their columns with gaps, repeats and disorder."""
    rows = []
    number = 0
    width = draw(st.sampled_from([None, 1, 3, 7]))  # a table: every row as wide, its cells A, B, C, …
    for _ in range(draw(st.integers(1, 8))):
        number += draw(st.sampled_from([1] * 12 + [2, 5, 0]))  # 0: a row after itself, refused as damaged
        attrs = draw(_ROW_ATTRS)
        cells = draw(st.lists(_CELL, min_size=width or 0, max_size=width or 6))
        cols = list(range(len(cells)))
        if width is None and draw(st.integers(0, 3)) == 0:
            cols = draw(st.lists(st.integers(0, 30), min_size=len(cells), max_size=len(cells)))
        body = "".join(_cell_xml(f"{_letters(c)}{number}", cell) for c, cell in zip(cols, cells, strict=True))
        form = draw(st.sampled_from(["open", "open", "open", "closed"]))
        rows.append(f'<row r="{number}"{attrs}/>' if form == "closed" and not body
                    else f'<row r="{number}"{attrs}>{body}</row>')
    return "".join(rows), draw(st.sampled_from([True, True, True, False]))


def _package(sheet_data: str, x14ac: bool) -> bytes:
    data = package(sheet_data, shared=SHARED, styles=STYLES)
    if not x14ac:
        return data
    # The sheet declares the prefix Excel writes row heights' descents with.
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                part = part.replace(f'xmlns="{_MAIN}">'.encode(), f'xmlns="{_MAIN}" xmlns:x14ac="{_X14AC}">'.encode(), 1)
            target.writestr(info.filename, part)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(_sheets(), st.sampled_from([60, 300, 1 << 18]))
@example(('<row r="1"><c r="A1" t="inlineStr"><is><t>订单</t></is></c><c r="B1" s="1"><v>45945</v></c>'
          '<c r="D1" t="s"><v>1</v></c></row><row r="3"/><row r="4" spans="1:2"><c r="B4" t="str"><v>x</v></c>'
          '<c r="A4"><v>2.5</v></c></row>', False), 1 << 18)
@example(('<row r="1" x14ac:dyDescent="0.25"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row>', False), 1 << 18)
@example(('<row r="1"><c r="A1" t="s"><v>7</v></c></row>', True), 1 << 18)
@example(('<row r="1" r="2"><c r="A1" t="s"><v>1</v></c></row>', True), 1 << 18)
@example(('<row r="1"><c r="A1" s="1" t="n"><v>45945</v></c><c r="B1" t="n" s="1"><v>45945</v></c></row>', True), 60)
@example(('<row r="2"><c r="A2" t="inlineStr"><is><t>a\rb</t></is></c></row>', True), 1 << 18)
def test_a_sheet_reads_the_same_with_and_without_the_plain_form(sheet: tuple[str, bool], slice_bytes: int) -> None:
    assert_plain_reads_as_the_tree(_package(*sheet), slice_bytes)


def test_the_odd_cells_read_the_same_and_as_calamine_reads_them() -> None:
    sheet_data = ''.join([
        '<row r="1" spans="1:6"><c r="A1" t="inlineStr"><is><t xml:space="preserve"> 行内_x000A_文本 </t></is></c>',
        '<c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" s="1"><v>45945</v></c>',
        '<c r="E1" s="4"><v>1.25</v></c><c r="F1" t="n"><v>1e3</v></c></row>',
        '<row r="2"/><row r="4"><c r="C4"><v>abc</v></c><c r="B4" t="str"><v>公式</v></c><c r="E4" s="2"/></row>',
        '<row r="5"><c r="A5" t="s"><v>0</v></c><c r="B5" t="s"><v></v></c><c r="C5" t="s"><v>3</v></c></row>',
    ])
    data = package(sheet_data, shared=SHARED, styles=STYLES)
    assert assert_plain_reads_as_the_tree(data, 1 << 18)[0] == "rows"
    assert_same_as_calamine(data)


def test_a_plain_export_is_read_without_elementtree(tmp_path: Path) -> None:
    """xlsxwriter's constant-memory export (the benchmark's and many platforms') and a shared-string one with
    numbers, dates and blank cells: no slice is parsed into a tree, and the rows are calamine's."""
    path = tmp_path / "orders.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    for k in range(2_000):
        sheet.write_row(k, 0, [f"PO{k:08d}", "H21010200001", "国药控股沈阳有限公司", "12.5", "2025-10-15 08:00"])
    book.close()
    shared = tmp_path / "shared.xlsx"
    book = xlsxwriter.Workbook(str(shared))
    sheet = book.add_worksheet()
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for k in range(2_000):
        sheet.write_row(k, 0, [f"PO{k % 50}", 10 + k, 12.5])
        sheet.write_number(k, 4, 45945.25, when)
    book.close()
    real = xlsx_stream.fromstring

    def parts_only(text: bytes) -> Any:
        assert not text.startswith(b"<_w"), "a slice of the sheet was parsed as a tree"
        return real(text)

    for data in (path.read_bytes(), shared.read_bytes()):
        with mock.patch.object(xlsx_stream, "fromstring", parts_only):
            fast = _read(data)
        with _tree_only():
            assert fast == _read(data)
        assert fast[0] == "rows" and len(fast[1]) == 2_000
        assert_same_as_calamine(data)


_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_ROWS = ('<row r="1"><c r="A1" t="inlineStr"><is><t>订单</t></is></c><c r="B1" t="s"><v>1</v></c></row>'
         '<row r="2"><c r="A2"><v>2.5</v></c><c r="B2" t="inlineStr"><is><t>沈阳</t></is></c></row>')


def _with_worksheet(xml: str) -> bytes:
    """The package's sheet part replaced by `xml` (a worksheet written unusually but readably)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package(_ROWS, shared=SHARED, styles=STYLES))) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = xml.encode() if info.filename == "xl/worksheets/sheet1.xml" else source.read(info)
            target.writestr(info.filename, part)
    return out.getvalue()


@pytest.mark.parametrize("worksheet", [
    # the default namespace declared again on an element that closes before <sheetData>
    f'<worksheet xmlns="{_MAIN}"><sheetViews xmlns="{_MAIN}"><sheetView workbookViewId="0"/></sheetViews>'
    f'<sheetData>{_ROWS}</sheetData></worksheet>',
    # a prefix declared on the root and again (same name) on an element before <sheetData>
    f'<worksheet xmlns="{_MAIN}" xmlns:r="{_R_NS}"><sheetPr xmlns:r="{_R_NS}"/><sheetData>{_ROWS}</sheetData>'
    '</worksheet>',
    # a prefix declared by an earlier sibling with another value than the one in scope
    f'<worksheet xmlns="{_MAIN}" xmlns:r="{_R_NS}"><sheetPr xmlns:r="urn:other"/><sheetData>{_ROWS}</sheetData>'
    '</worksheet>',
], ids=["default-namespace-again", "prefix-again", "prefix-other-value"])
def test_namespaces_declared_on_closed_elements_read_the_same_on_both_paths(worksheet: str) -> None:
    """Only the namespaces in scope at <sheetData> wrap a slice: before, every declaration seen was repeated on the
    wrapper, so ElementTree refused a prefix declared twice while the regular expressions read the rows."""
    data = _with_worksheet('<?xml version="1.0" encoding="UTF-8"?>' + worksheet)
    assert assert_plain_reads_as_the_tree(data, 1 << 18)[0] == "rows"
    assert_same_as_calamine(data)


def test_an_attribute_written_twice_on_sheetdata_reads_the_same_on_both_paths() -> None:
    """<sheetData> carries nothing a reader uses, so a malformed attribute on it refuses neither path (calamine
    reads such a sheet too)."""
    data = _with_worksheet(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}">'
                           f'<sheetData a="1" a="1">{_ROWS}</sheetData></worksheet>')
    assert assert_plain_reads_as_the_tree(data, 1 << 18)[0] == "rows"
    assert_same_as_calamine(data)


def _prefixed(rows: str, prefix: str) -> str:
    for tag in ("row", "c", "v", "is", "t"):
        rows = rows.replace(f"<{tag} ", f"<{prefix}:{tag} ").replace(f"<{tag}>", f"<{prefix}:{tag}>")
        rows = rows.replace(f"</{tag}>", f"</{prefix}:{tag}>")
    return rows


@pytest.mark.parametrize("worksheet", [
    f'<worksheet xmlns="{_MAIN}"><sheetData xmlns:z="urn:z">' + _ROWS.replace("<row ", '<row z:a="1" ')
    + '</sheetData></worksheet>',
    f'<x:worksheet xmlns:x="{_MAIN}"><x:sheetData xmlns:z="urn:z">'
    + _prefixed(_ROWS, "x").replace("<x:row ", '<x:row z:a="1" ') + '</x:sheetData></x:worksheet>',
    # <sheetData> re-declaring the default namespace the root declared, and a prefix twice on it
    f'<worksheet xmlns="{_MAIN}"><sheetData xmlns="{_MAIN}" xmlns:z="urn:z">'
    + _ROWS.replace("<row ", '<row z:a="1" ') + '</sheetData></worksheet>',
], ids=["default", "prefixed", "redeclared"])
def test_a_namespace_declared_on_sheetdata_itself_is_in_scope_on_both_paths(worksheet: str) -> None:
    """<sheetData> is written bare on each slice, so its own declarations go on the slice's wrapper (a row using
    its prefix was refused as damaged once the tag lost them)."""
    data = _with_worksheet('<?xml version="1.0" encoding="UTF-8"?>' + worksheet)
    assert assert_plain_reads_as_the_tree(data, 1 << 18)[0] == "rows"
    assert_same_as_calamine(data)
