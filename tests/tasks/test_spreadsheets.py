from __future__ import annotations

from datetime import date, datetime, time

import pytest
import xlsxwriter

from tasks.intake.spreadsheets import (
    ImportRejected,
    SpreadsheetError,
    cell_text,
    normalize_header,
    parse_upload,
    read_table,
    read_table_bytes,
    read_upload,
    stream_table_bytes,
)
from tests.factories_files import csv_bytes, write_xlsx


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (13812345678.0, "13812345678"),  # a phone typed into a General cell
        (12.5, "12.5"),
        (3.14, "3.14"),
        (1e-05, "0.00001"),  # never scientific notation
        (1e20, "100000000000000000000"),
        (28, "28"),
        (True, "TRUE"),
        (None, ""),
        ("  H21010200001 ", "H21010200001"),
        (date(2025, 9, 12), "2025-09-12"),
        (datetime(2025, 9, 12), "2025-09-12"),
        (datetime(2025, 9, 12, 8, 30), "2025-09-12 08:30:00"),
        (time(8, 30), "08:30:00"),
    ],
)
def test_cell_text_is_what_the_user_typed(value, text):
    assert cell_text(value) == text


def test_normalize_header_folds_full_width_and_line_breaks():
    assert normalize_header(" 中选价\n（元） ") == "中选价(元)"


def test_xlsx_numbers_come_back_as_typed_text_with_spreadsheet_row_numbers(tmp_path):
    path = write_xlsx(
        tmp_path / "t.xlsx", ["联系电话", "数量", "编码"],
        [[13812345678, 60, "XC10AA0001A001010100483"], ["", "", ""], [2423456789, 1.5, "X"]],
        leading_blank_rows=1, blank_rows_after=[0],
    )
    sheet = read_table(path)
    assert (sheet.header, sheet.header_row) == (("联系电话", "数量", "编码"), 2)
    assert [(r.number, r.cells) for r in sheet.rows] == [
        (3, ("13812345678", "60", "XC10AA0001A001010100483")),
        (6, ("2423456789", "1.5", "X")),
    ]
    assert sheet.lossy == frozenset()


def test_long_numbers_are_flagged_as_lossy(tmp_path):
    path = write_xlsx(tmp_path / "t.xlsx", ["统一社会信用代码"], [[122101020000007301]])
    sheet = read_table(path)
    assert sheet.lossy == frozenset({(2, 0)})


def test_first_visible_sheet_is_read_and_trailing_empty_headers_dropped(tmp_path):
    path = tmp_path / "two.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    hidden = workbook.add_worksheet("说明")
    hidden.write(0, 0, "填表说明")
    hidden.hide()
    data = workbook.add_worksheet("数据")
    data.activate()
    data.write_row(0, 0, ["a", "b", ""])
    data.write_row(1, 0, ["1", "2"])
    workbook.close()
    sheet = read_table(path)  # a hidden instructions sheet first is common in bureau templates
    assert (sheet.sheet_name, sheet.header) == ("数据", ("a", "b"))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_encodings(encoding):
    data = csv_bytes(["单位名称", "所属区县"], [["沈阳市和平区测试卫生院", "和平区"]], encoding)
    sheet = read_table_bytes(data, "x.csv")
    assert sheet.header == ("单位名称", "所属区县")
    assert sheet.rows[0].cells == ("沈阳市和平区测试卫生院", "和平区")


def test_tab_separated_unicode_text_as_excel_saves_it():
    data = "单位名称\t所属区县\r\n测试\t和平区\r\n".encode("utf-16")
    assert read_table_bytes(data, "x.txt").rows[0].cells == ("测试", "和平区")


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"", "empty.csv", "是空的"),
        (b"  \n \n", "blank.csv", "是空的"),
        (b"PK\x03\x04not a zip at all", "broken.xlsx", "无法读取"),
        (b"hello", "fake.xlsx", "不是Excel"),
        (b"\x00\x01\x02binary", "x.csv", "不是Excel或CSV"),
        (b",,,\n,,\n", "commas.csv", "没有表头"),
    ],
)
def test_unreadable_files_raise_a_clear_bilingual_error(data, name, words):
    with pytest.raises(SpreadsheetError) as caught:
        read_table_bytes(data, name)
    assert words in str(caught.value) and " / " in str(caught.value)


def test_empty_workbook(tmp_path):
    path = tmp_path / "empty.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet()
    workbook.close()
    with pytest.raises(SpreadsheetError, match="没有表头"):
        read_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpreadsheetError, match="无法打开"):
        read_table(tmp_path / "nope.xlsx")


def test_csv_cells_in_scientific_notation_are_flagged_as_lossy():
    data = csv_bytes(["联系电话", "中选价(元)"], [["1.38123E+10", "12.5"]], "utf-8")
    assert read_table_bytes(data, "x.csv").lossy == frozenset({(2, 0)})


def test_an_upload_that_cannot_be_read_is_refused_as_a_whole_file(tmp_path):
    with pytest.raises(ImportRejected) as missing:
        read_upload(tmp_path / "nope.xlsx")
    with pytest.raises(ImportRejected) as broken:
        parse_upload(b"PK\x03\x04not a zip at all", "broken.xlsx")
    for caught, words in ((missing, "无法打开"), (broken, "无法读取")):
        (error,) = caught.value.errors
        assert (error.row, error.rule) == (0, "file.unreadable") and words in error.message and " / " in error.message


def test_rows_mixing_text_and_numbers_come_back_as_text(tmp_path):
    path = write_xlsx(tmp_path / "m.xlsx", ["a", "b", "c"], [[" x ", 13812345678, ""], ["y", "z", " "]])
    assert [r.cells for r in read_table(path).rows] == [("x", "13812345678", ""), ("y", "z", "")]


@pytest.mark.parametrize(("text", "encoding"), [
    ("名称,编码\n甲,1.38123E+10\n\n乙,2\n", "utf-8"),
    ("\ufeff名称,编码\r\n甲,1\r\n", "utf-8"),
    ("名称\t编码\r\n甲\t1\r\n", "gb18030"),
    ("名称,编码\n甲,1\n", "utf-16"),
])
def test_an_export_read_row_by_row_is_the_same_sheet_as_read_whole(text: str, encoding: str) -> None:
    """Large exports are read as a stream (the operations import); the rows, numbers, header and lossy cells
    must be exactly what the whole-file reader gives."""
    data = text.encode(encoding)
    whole = read_table_bytes(data, "export.csv")
    stream = stream_table_bytes(data, "export.csv")
    rows = list(stream.rows)
    assert (stream.header, stream.header_row, rows, stream.lossy) == (
        whole.header, whole.header_row, whole.rows, set(whole.lossy))
