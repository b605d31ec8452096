"""The streaming XLSX reader gives the importers exactly the values python-calamine gave (issue #14).

Every workbook here is generated (openpyxl and xlsxwriter write real Excel packages; a few parts are written by
hand for what those libraries never produce) and read both ways: the streamed rows must equal calamine's cell
for cell, value and type, so no import reads a date, a code or a number differently than before.
"""

from __future__ import annotations

import io
import random
import tracemalloc
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from sqlalchemy import delete, func, select
from sqlmodel import Session

from models.operations import PurchaseOrder
from models.program import ImportRecord
from tasks.intake import spreadsheets, xlsx_stream
from tasks.intake.number_formats import CellFormat, custom_format
from tasks.intake.operations_import import COLUMNS, OperationsKind, import_operations
from tasks.intake.spreadsheets import ImportRejected, SpreadsheetError, read_table_bytes, stream_table_bytes
from tasks.intake.upload_limits import UploadLimits
from tasks.intake.xlsx_stream import open_sheet
from tests.factories import clock_at, make_enterprise, make_institution, make_product, make_program

CLOCK = clock_at(2025, 12, 20, 9)
LIMITS = UploadLimits(max_bytes=10_000_000, max_unpacked_bytes=50_000_000, max_rows=500_000, max_columns=200)


def _calamine(data: bytes) -> list[list[object]]:
    """The rows the importers were given before: calamine's first visible worksheet, leading columns kept."""
    return [list(r) for r in spreadsheets._worksheet_rows(spreadsheets._open_worksheet(data, "t.xlsx"))]


def _streamed(data: bytes) -> list[list[object]]:
    sheet = open_sheet(data)
    assert sheet is not None
    return list(sheet.rows)


def _typed(rows: list[list[object]]) -> list[list[tuple[str, object]]]:
    """Rows as (type, value) pairs, trailing blanks and blank rows at the end dropped (only calamine's grid width
    differs there, and no importer sees it: a missing cell reads "")."""
    out = []
    for row in rows:
        cells = list(row)
        while cells and cells[-1] == "":
            cells.pop()
        out.append([(type(v).__name__, v) for v in cells])
    while out and not out[-1]:
        out.pop()
    return out


def assert_same_as_calamine(data: bytes) -> list[list[tuple[str, object]]]:
    expected = _typed(_calamine(data))
    assert _typed(_streamed(data)) == expected
    return expected


def _openpyxl_bytes(book: Any) -> bytes:
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_tricky_cells_written_by_excel_libraries_read_as_calamine_reads_them() -> None:
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "填表说明"
    notes.sheet_state = "hidden"  # a hidden instructions sheet first: the first visible sheet is the data
    notes["A1"] = "说明"
    sheet = book.create_sheet("订单")
    sheet["C3"] = "订单编号"  # leading blank rows and columns keep Excel's row and column numbers
    rows: list[list[object]] = [
        ["000123", 13812345678, 123456789012345678, 1e20, 12.5, 0.1 + 0.2, -0.0, 1e-05],
        [" 空格 ", True, False, "=1/0", "=A1", "#N/A", "", None],
        [datetime(2025, 10, 15, 14, 30), date(2025, 10, 15), time(8, 30), timedelta(hours=30), 45945,
         datetime(2025, 10, 15, 23, 59, 59, 999600), datetime(1900, 2, 28), 0.5],
    ]
    for r, row in enumerate(rows, start=4):
        for c, value in enumerate(row, start=3):
            if value is not None:
                sheet.cell(row=r, column=c, value=value)
    sheet.cell(row=6, column=7).number_format = "yyyy年m月d日"
    sheet.cell(row=6, column=10).number_format = "[h]:mm:ss"
    sheet.cell(row=5, column=4).number_format = "@"  # a number in a text-formatted column stays a number
    sheet.cell(row=4, column=6).number_format = "0.00"
    sheet["C8"] = CellRichText(["富", TextBlock(InlineFont(b=True), "文本"), " 单元格 "])
    sheet["C9"] = "合并"
    sheet.merge_cells("C9:E10")  # calamine gives the value in the first cell only
    sheet["Z12"] = "远处"
    sheet["C14"] = "a\nb\tc"
    rows_read = assert_same_as_calamine(_openpyxl_bytes(book))
    assert rows_read[3][2:4] == [("str", "000123"), ("float", 13812345678.0)]
    assert rows_read[5][2] == ("datetime", datetime(2025, 10, 15, 14, 30))
    assert rows_read[7][2] == ("str", "富文本 单元格 ")


def test_dates_times_and_durations_by_number_format_match_calamine_to_the_millisecond() -> None:
    """Random serials under date, time, duration and plain formats (built-in and custom, 1900 system)."""
    rng = random.Random(14)
    formats = ["General", "0.00", "@", "yyyy-mm-dd", "yyyy/m/d h:mm", "h:mm:ss", "mm:ss", "[h]:mm", "[mm]:ss",
               "yyyy年m月d日", "[$-804]aaaa", 'm"月"d"日"', "h:mm AM/PM", "[Red]0.00", '"Y"0', "0_ ;[Red]\\-0\\ ",
               "#,##0.00_);(#,##0.00)", "[>=100][Magenta]General", "d-mmm-yy", "ss.0", "A/P", "*-yyyy"]
    values = [0, 1, 59, 60, 61, 0.999999999, 1.5, 45945.999994213, 45945.0000058, 2958465.5]
    values += [rng.uniform(0, 60000) for _ in range(150)] + [round(rng.uniform(0, 1), 9) for _ in range(50)]
    book = openpyxl.Workbook()
    sheet = book.active
    for c, fmt in enumerate(formats, start=1):
        for r, value in enumerate(values, start=1):
            cell = sheet.cell(row=r, column=c, value=value)
            cell.number_format = fmt
    rows = assert_same_as_calamine(_openpyxl_bytes(book))
    kinds = {t for row in rows for t, _ in row}
    assert {"float", "date", "datetime", "time", "timedelta"} <= kinds


def test_the_1904_date_system_is_honoured() -> None:
    book = openpyxl.Workbook()
    book.epoch = CALENDAR_MAC_1904
    sheet = book.active
    sheet["A1"] = datetime(2025, 10, 15, 8, 0)
    sheet["A2"] = date(2025, 10, 15)
    assert assert_same_as_calamine(_openpyxl_bytes(book))[0] == [("datetime", datetime(2025, 10, 15, 8, 0))]


@pytest.mark.parametrize(("code", "kind"), [
    ("yyyy-mm-dd", CellFormat.DATETIME), ("0.00", CellFormat.OTHER), ("[h]:mm:ss", CellFormat.TIMEDELTA),
    ('"Y: "0.00"m"', CellFormat.OTHER), ("H:MM:SS;@", CellFormat.DATETIME), ("\\Y000000", CellFormat.OTHER),
    ("[Blue]\\+[h]:mm;[Red]\\-[h]:mm", CellFormat.TIMEDELTA), ("[>=100][Magenta].00", CellFormat.OTHER),
    ("#,##0.00\\ _M\"H\"_)", CellFormat.OTHER), ("ha/p\\\\m", CellFormat.DATETIME), ("General", CellFormat.OTHER),
])
def test_custom_number_formats_are_classified_as_calamine_classifies_them(code: str, kind: CellFormat) -> None:
    assert custom_format(code) is kind


# --------------------------------------------------------------------------- parts no Excel library writes

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def package(sheet_data: str, *, shared: list[str] = (), styles: str = "", prefix: str = "",  # type: ignore[assignment]
            sheets: str = '<sheet name="数据" sheetId="1" r:id="rId1"/>') -> bytes:
    """A minimal XLSX around hand-written sheet XML (`prefix` writes every SpreadsheetML tag as `x:`-prefixed)."""
    p = f"{prefix}:" if prefix else ""
    ns = f'xmlns{":" + prefix if prefix else ""}="{_MAIN}"'
    rels = ('<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'sharedStrings" Target="/xl/sharedStrings.xml"/>'
            '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'styles" Target="styles.xml"/>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                   '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><{p}workbook {ns} xmlns:r="{_R}"><{p}sheets>'
                   + sheets.replace("<sheet", f"<{p}sheet") + f"</{p}sheets></{p}workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                   f'openxmlformats.org/package/2006/relationships">{rels}</Relationships>')
        z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><{p}sst {ns}>'
                   + "".join(f"<{p}si>{s}</{p}si>" for s in shared) + f"</{p}sst>")
        z.writestr("xl/styles.xml", f'<?xml version="1.0"?><{p}styleSheet {ns}>{styles}</{p}styleSheet>')
        z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {ns}>'
                   f'<{p}dimension ref="A1:F9"/><{p}sheetData>{sheet_data}</{p}sheetData></{p}worksheet>')
    return buf.getvalue()


SHARED = ["<t>订单编号</t>", "<t>a_x000D_b_x005F_x0041_</t>", "<r><t>富</t></r><r><rPr><b/></rPr>"
          '<t xml:space="preserve"> 文本 </t></r><rPh sb="0" eb="1"><t>フ</t></rPh>', "<t/>", "<t>&lt;&amp;&gt;</t>"]
STYLES = ('<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/>'
          '<numFmt numFmtId="165" formatCode="0.000_ "/></numFmts><cellXfs count="5"><xf numFmtId="0"/>'
          '<xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="46"/></cellXfs>')
CELLS = (
    '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>1</v></c><c r="C2" t="s"><v>2</v></c>'
    '<c r="D2" t="s"><v>3</v></c><c r="E2" t="s"><v>4</v></c></row>'
    '<row r="3" spans="1:6" ht="20" customHeight="1"><c r="A3" t="inlineStr"><is><t>行内_x000A_文本</t></is></c>'
    '<c r="B3" t="str"><f>A3&amp;""</f><v>公式 &amp; 文本</v></c><c r="C3" t="b"><v>1</v></c>'
    '<c r="D3" t="b"><v>0</v></c><c r="E3" t="e"><v>#DIV/0!</v></c><c r="F3"><f>1+1</f></c></row>'
    '<row r="4"/>'
    '<row r="5"><c r="A5" s="1"><v>45945</v></c><c r="B5" s="2"><v>45945.5</v></c><c r="C5" s="3"><v>0.5</v></c>'
    '<c r="D5" s="4"><v>1.25</v></c><c r="E5" s="9"><v>45945</v></c><c r="F5" s="1"><v>0.25</v></c></row>'
    '<row><c><v>1</v></c><c><v>2.50</v></c><c t="n"><v>1e3</v></c><c><v>abc</v></c><c><v> 7 </v></c></row>'
    '<row r="8"><c r="B8" t="d"><v>2025-10-15T08:30:00</v></c><c r="C8" t="d"><v>2025-10-15</v></c>'
    '<c r="D8" t="d"><v>12:30:00</v></c><c r="F8" s="0"/></row>'
    '<row r="9"><c r="C9" t="s"><v></v></c><c r="D9"><v></v></c><c r="E9" t="inlineStr"><v>ignored</v>'
    '<is><r><t>行</t></r><r><t>内</t></r></is></c></row>'
)


@pytest.mark.parametrize("prefix", ["", "x"])
def test_hand_written_parts_inline_and_rich_strings_escapes_types_and_missing_references(prefix: str) -> None:
    rows = assert_same_as_calamine(package(CELLS, shared=SHARED, styles=STYLES, prefix=prefix))
    assert rows[1][:3] == [("str", "订单编号"), ("str", "a\rb_x0041_"), ("str", "富 文本 ")]
    assert rows[4][0] == ("date", date(2025, 10, 15)) and rows[5][:2] == [("float", 1.0), ("float", 2.5)]


def test_a_hidden_first_sheet_and_a_chart_sheet_are_passed_over() -> None:
    data = package(CELLS, shared=SHARED, styles=STYLES,
                   sheets='<sheet name="说明" sheetId="2" state="hidden" r:id="rId1"/>'
                          '<sheet name="数据" sheetId="1" r:id="rId1"/>')
    sheet = open_sheet(data)
    assert sheet is not None and sheet.name == "数据"
    assert stream_table_bytes(data, "t.xlsx", LIMITS).sheet_name == read_table_bytes(data, "t.xlsx", LIMITS).sheet_name


def test_rows_cut_across_slices_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sheet is parsed a slice at a time; a slice of a few hundred bytes cuts nearly every row's neighbours."""
    rows = "".join(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>PO{r:06d}</t></is></c><c r="B{r}"><v>{r}.5</v>'
                   f'</c><c r="C{r}" t="s"><v>{r % 5}</v></c></row>' + (f'<row r="{r + 1}"/>' if r % 7 == 0 else "")
                   for r in range(1, 400, 2))
    data = package(rows, shared=SHARED, styles=STYLES)
    whole = _streamed(data)
    monkeypatch.setattr(xlsx_stream, "_SLICE", 150)
    assert _streamed(data) == whole
    assert_same_as_calamine(data)


@pytest.mark.parametrize(("sheet_data", "words"), [
    ('<row r="1"><c r="A1" t="s"><v>99</v></c></row>', "shared string"),
    ('<row r="1"><c r="A1" t="s"><v>-1</v></c></row>', "shared string"),  # int() read it as the last string
    ('<row r="1"><c r="A1" t="n"><v>zwölf</v></c></row>', "not a number"),
    ('<row r="1"><c r="A1" t="q"><v>1</v></c></row>', "cell type"),
    ('<row r="3"><c r="A3"><v>1</v></c></row><row r="2"><c r="A2"><v>1</v></c></row>', "row 2 after row 3"),
    ('<row r="1"><c r="A1"><v>1</v></row>', "mismatched tag"),
])
def test_a_damaged_sheet_is_refused_with_the_readers_message_not_a_traceback(sheet_data: str, words: str) -> None:
    data = package('<row r="1"><c r="A1" t="s"><v>0</v></c></row>' + sheet_data.replace('r="1"', 'r="5"')
                   .replace('"A1"', '"A5"'), shared=SHARED)
    with pytest.raises(SpreadsheetError, match=f"无法读取Excel文件“坏.xlsx”.*{words}"):
        list(stream_table_bytes(data, "坏.xlsx", LIMITS).rows)


def test_rows_without_references_are_held_to_the_row_limit_while_read() -> None:
    """The scan before reading counts references; a sheet that gives none is stopped by the rows themselves."""
    data = package("".join("<row><c><v>1</v></c></row>" for _ in range(30)))
    limits = UploadLimits(max_bytes=10_000_000, max_unpacked_bytes=50_000_000, max_rows=20, max_columns=200)
    with pytest.raises(SpreadsheetError, match=r"第 21 行.*SANJIN_IMPORT_MAX_ROWS"):
        list(stream_table_bytes(data, "长.xlsx", limits).rows)
    assert len(read_table_bytes(data, "长.xlsx", LIMITS).rows) == 29


def test_a_sheet_read_whole_by_calamine_is_held_to_the_row_and_column_limits() -> None:
    """The grid calamine builds is checked as the rows streamed one by one were: the first row past a limit named."""
    data = package("".join("<row><c><v>1</v></c><c><v>2</v></c><c><v>3</v></c></row>" for _ in range(30)))
    rows = UploadLimits(max_bytes=10_000_000, max_unpacked_bytes=50_000_000, max_rows=20, max_columns=200)
    with pytest.raises(SpreadsheetError, match=r"第 21 行.*SANJIN_IMPORT_MAX_ROWS"):
        read_table_bytes(data, "长.xlsx", rows)
    columns = UploadLimits(max_bytes=10_000_000, max_unpacked_bytes=50_000_000, max_rows=500_000, max_columns=2)
    with pytest.raises(SpreadsheetError, match=r"第 3 列.*SANJIN_IMPORT_MAX_COLUMNS"):
        read_table_bytes(data, "宽.xlsx", columns)
    assert [r.cells for r in read_table_bytes(data, "好.xlsx", LIMITS).rows][:1] == [("1", "2", "3")]


def test_an_ods_is_still_read_by_calamine() -> None:
    assert open_sheet(b"PK\x03\x04 not a zip") is None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    assert open_sheet(buf.getvalue()) is None


def _export(path: Path, rows: int) -> bytes:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["订单编号", "机构医保编码", "药品统一编码", "配送企业", "采购数量", "采购单价(元)", "下单时间"])
    for k in range(rows):
        sheet.write_row(k + 1, 0, [f"PO{k:08d}", f"H2101{k % 997:07d}", f"XA01BAB{k % 89:06d}", "国药控股沈阳有限公司",
                                   10 + k % 90, 12.34, f"2025-10-{1 + k % 28:02d} 08:{k % 60:02d}"])
    book.close()
    return path.read_bytes()


def test_memory_does_not_grow_with_the_rows_read(tmp_path: Path) -> None:
    """60,000 rows held at once are ~35 MB of Python objects; streamed, the reader holds a slice (~12 MB)."""
    data = _export(tmp_path / "big.xlsx", 60_000)
    sheet = stream_table_bytes(data, "big.xlsx", LIMITS)
    tracemalloc.start()
    try:
        count = sum(1 for _ in sheet.rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 60_000
    assert peak < 20_000_000, f"peak {peak / 1e6:.1f} MB while streaming"
    assert_same_as_calamine(_export(tmp_path / "small.xlsx", 3_000))


# --------------------------------------------------------------------------- the import sees no difference

def count(engine: Any, model: type) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _calamine_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read every XLSX with python-calamine, as before the streaming reader."""
    monkeypatch.setattr(spreadsheets, "open_sheet", lambda data: None)


def test_a_bad_orders_export_is_refused_with_the_same_rows_columns_and_values_as_before(
        engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leading blank rows, a blank row inside, a date-formatted order time, numbers where text is expected, a code
    with leading zeros and a lost-digits number: every error names the same row, column and value either way."""
    make_program(engine)
    inst = make_institution(engine)
    product = make_product(engine, make_enterprise(engine))
    path = tmp_path / "订单.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("订单")
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.write_row(2, 1, COLUMNS[OperationsKind.ORDERS])  # header on row 3, from column B
    good = ["PO-1", inst.insurance_code, product.drug_code, "国药控股沈阳有限公司", 10, 12.5]
    sheet.write_row(3, 1, good)
    sheet.write_datetime(3, 7, datetime(2025, 12, 1, 9, 30), when)
    sheet.write_row(5, 1, ["PO-2", "00" + inst.insurance_code, product.drug_code, "配送企业", "十", "12.5",
                           "2025-12-02 10:00"])  # row 5 left blank
    sheet.write_row(6, 1, ["PO-3", 123456789012345678, product.drug_code, "配送企业", 2.5, -1])
    sheet.write_datetime(6, 7, datetime(2026, 12, 1, 9, 30), when)
    sheet.write_row(7, 1, ["PO-1", inst.insurance_code, 8613800000000, "", 0, "12.50", "昨天"])
    book.close()
    with pytest.raises(ImportRejected) as streamed:
        import_operations(engine, "shenyang-2025", "orders", path, clock=CLOCK)
    _calamine_only(monkeypatch)
    with pytest.raises(ImportRejected) as before:
        import_operations(engine, "shenyang-2025", "orders", path, clock=CLOCK)
    assert streamed.value.errors == before.value.errors
    assert [(e.row, e.column, e.value) for e in streamed.value.errors] == [
        (6, "机构医保编码", "00" + inst.insurance_code), (6, "采购数量", "十"),
        (7, "机构医保编码", "123456789012345696"), (7, "采购单价(元)", "-1"), (7, "采购数量", "2.5"),
        (8, "下单时间", "昨天"), (8, "药品统一编码", "8613800000000"), (8, "配送企业", ""), (8, "采购数量", "0")]
    assert next(e.rule for e in streamed.value.errors if e.row == 7) == "cell.number_lost_digits"
    assert count(engine, PurchaseOrder) == 0


def test_a_good_orders_export_creates_the_same_orders_either_way(engine: Any, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    make_program(engine)
    inst = make_institution(engine)
    product = make_product(engine, make_enterprise(engine))
    path = tmp_path / "orders.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    when = book.add_format({"num_format": "yyyy/m/d h:mm"})
    sheet.write_row(0, 0, COLUMNS[OperationsKind.ORDERS])
    for k in range(1, 41):
        sheet.write_row(k, 0, [f"PO-{k:03d}", inst.insurance_code, product.drug_code, "配送企业", k, 12.5 + k / 100])
        sheet.write_datetime(k, 6, datetime(2025, 12, 1, 9, k), when)
    book.close()
    streamed = import_operations(engine, "shenyang-2025", "orders", path, clock=CLOCK)
    with Session(engine) as session:
        orders = [(o.order_no, o.quantity, o.unit_price, o.ordered_at) for o in
                  session.execute(select(PurchaseOrder).order_by(PurchaseOrder.order_no)).scalars()]
        session.execute(delete(PurchaseOrder))
        session.execute(delete(ImportRecord))
        session.commit()
    _calamine_only(monkeypatch)
    before = import_operations(engine, "shenyang-2025", "orders", path, clock=CLOCK)
    with Session(engine) as session:
        again = [(o.order_no, o.quantity, o.unit_price, o.ordered_at) for o in
                 session.execute(select(PurchaseOrder).order_by(PurchaseOrder.order_no)).scalars()]
    assert (streamed.rows, streamed.created) == (before.rows, before.created) == (40, 40)
    assert orders == again and orders[4][3].minute == 5


OUT_OF_RANGE = [("4", "12345678901234567"), ("4", "1e300"), ("4", "inf"), ("4", "nan"), ("1", "nan"), ("1", "-inf"),
                ("1", "1e300")]


@pytest.mark.parametrize(("style", "text"), OUT_OF_RANGE)
def test_a_date_or_duration_cell_out_of_range_streams_as_its_number_for_the_row_checks(style: str, text: str) -> None:
    """A huge number, an infinity or NaN under `[h]:mm:ss` or a date format: calamine raised (or panicked) on it;
    the streamed read gives the cell as the same number without its format, which the importer's column check
    then reports with its row and column."""
    def cells(style: str) -> list[Any]:
        data = package(f'<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" s="{style}"><v>{text}'
                       '</v></c></row>', shared=SHARED, styles=STYLES)
        return [row.cells for row in stream_table_bytes(data, "时长.xlsx", LIMITS).rows]

    assert cells(style) == cells("0")


@pytest.mark.parametrize(("style", "text"), [("4", "12345678901234567"), ("1", "-inf"), ("4", "nan")])
def test_a_date_or_duration_cell_out_of_range_read_by_calamine_is_refused_in_words(style: str, text: str) -> None:
    """The whole-sheet read (applications, registers) goes through calamine: the file is refused, never a
    traceback or a Rust panic."""
    data = package(f'<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" s="{style}"><v>{text}</v>'
                   '</c></row>', shared=SHARED, styles=STYLES)
    try:
        rows = read_table_bytes(data, "时长.xlsx", LIMITS).rows
    except SpreadsheetError as exc:
        assert "超出范围的日期或时长" in str(exc) and "out of range" in str(exc)
    else:  # calamine read NaN as a zero duration: a value, not a crash
        assert text == "nan" and rows


def test_a_sheet_declaring_a_multi_byte_encoding_is_refused_in_words_not_a_traceback() -> None:
    """A sheet part declared GB2312 (some converters write one): the reader cannot take it, and said so with a bare
    ValueError that reached the user as a traceback."""
    data = package('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', shared=SHARED)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(b'encoding="UTF-8"', b'encoding="GB2312"')
            dst.writestr(item, body)
    with pytest.raises(SpreadsheetError, match=r"无法读取Excel文件“国标\.xlsx”.*multi-byte"):
        list(stream_table_bytes(out.getvalue(), "国标.xlsx", LIMITS).rows)
