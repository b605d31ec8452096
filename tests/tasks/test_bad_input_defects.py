"""The bad input of issue #18 that ended in a traceback, a crash or a silent loss: each is refused with a message
naming the file (and row and column) and writes nothing, or — for the "other holes" — does what a person expects."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import xlsxwriter
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.application_rules import parse_positive_int
from models.clock import FixedClock
from models.program_definition import ProgramFileError, load_program_file
from models.tables import AuditEvent, EnterpriseDeclaration, Institution
from models.validators import FieldError
from tasks.intake.application_import import import_applications
from tasks.intake.declaration_import import import_declaration
from tasks.intake.spreadsheets import ImportRejected, SpreadsheetError, read_table_bytes
from tasks.intake.upload_limits import UploadLimits, UploadTooLarge, check_zip
from tasks.platform.files import parse_volume
from tests.factories_files import (
    APPLICATION_HEADER,
    DECLARATION_HEADER,
    application_row,
    product_row,
    write_csv,
    write_xlsx,
)

ROOT = Path(__file__).resolve().parents[2]
LIMITS = UploadLimits(max_bytes=10_000_000, max_unpacked_bytes=50_000_000, max_rows=500_000, max_columns=200)


def xlsx_with_a_cell_at(row: int, col: int) -> bytes:
    """A 5 KB workbook whose one far cell made the reader allocate the whole grid (XFD1048576: 512 GiB, SIGABRT)."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, APPLICATION_HEADER)
    sheet.write(row, col, "x")
    book.close()
    return buf.getvalue()


def zip_bomb(unpacked_mb: int) -> bytes:
    """An XLSX-shaped archive whose one sheet unpacks to `unpacked_mb` MB of blanks (about 1,000 : 1)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
        block = b" " * (1 << 20)
        for _ in range(unpacked_mb):
            part.write(block)
    return buf.getvalue()


def test_a_cell_at_xfd1048576_is_refused_by_its_range_before_reading() -> None:
    data = xlsx_with_a_cell_at(1_048_575, 16_383)
    assert len(data) < 10_000
    with pytest.raises(SpreadsheetError, match=r"申请\.xlsx.*第 1048576 行.*SANJIN_IMPORT_MAX_ROWS"):
        read_table_bytes(data, "申请.xlsx", LIMITS)


def test_a_cell_beyond_the_column_limit_is_refused_and_one_within_both_limits_is_read() -> None:
    with pytest.raises(SpreadsheetError, match=r"第 16384 列.*SANJIN_IMPORT_MAX_COLUMNS"):
        read_table_bytes(xlsx_with_a_cell_at(5, 16_383), "wide.xlsx", LIMITS)
    sheet = read_table_bytes(xlsx_with_a_cell_at(9, 30), "ok.xlsx", LIMITS)
    assert len(sheet.rows) == 1 and sheet.rows[0].number == 10


def sheet_xml(cell: str, *, straddle: bool = False) -> bytes:
    """An XLSX-shaped archive whose sheet holds this cell element; `straddle`: blanks before it put the 1 MB
    boundary of the scan's reads inside its reference."""
    head = b'<worksheet><sheetData><row r="2">'
    padding = b" " * ((1 << 20) - len(head) - 8) if straddle else b""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", head + padding + cell.encode() + b"</row></sheetData></worksheet>")
    return buf.getvalue()


@pytest.mark.parametrize(("cell", "refused"), [
    ("<c r='ZZ5'><v>1</v></c>", r"第 702 列"),  # quoted with ', as a few writers do
    ('<c r="AB600001"><v>1</v></c>', r"第 600001 行"),  # a column within the limit, a row beyond it
    ('<row r="900000"><c><v>1</v></c></row>', r"第 900000 行"),  # a row's own number
    ('<c r="A499999"><v>1</v></c><c r="GR7"><v>1</v></c>', None),  # GR = 200: both within the limits
])
def test_every_reference_beyond_a_limit_is_found_in_one_pass_over_the_sheet(cell: str, refused: str | None) -> None:
    for straddle in (False, True):
        data = sheet_xml(cell, straddle=straddle)
        if refused is None:
            check_zip(data, "ok.xlsx", LIMITS)
            continue
        with pytest.raises(UploadTooLarge, match=refused):
            check_zip(data, "far.xlsx", LIMITS)


def test_a_compression_bomb_is_refused_from_the_zip_directory_at_once() -> None:
    data = zip_bomb(60)
    assert len(data) < 200_000
    with pytest.raises(SpreadsheetError, match=r"bomb\.xlsx.*解压后有 63 MB.*压缩炸弹"):
        read_table_bytes(data, "bomb.xlsx", LIMITS)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 engine: Engine, shenyang: object,
                                                                 clock_in_windows: FixedClock,
                                                                 db_counts: Callable[[], dict[str, int]]) -> None:
    from core.settings import get_settings

    path = write_csv(tmp_path / "大文件.csv", APPLICATION_HEADER, [application_row(n) for n in range(1, 40)])
    monkeypatch.setenv("SANJIN_IMPORT_MAX_BYTES", "1000")
    get_settings.cache_clear()
    before = db_counts()
    with pytest.raises(ImportRejected, match=r"大文件\.csv.*超过上限 0 MB|大文件\.csv.*MB"):
        import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    assert db_counts() == before
    get_settings.cache_clear()


def test_a_csv_with_more_rows_than_the_limit_is_refused() -> None:
    text = "单位名称\n" + "".join(f"机构{i}\n" for i in range(30))
    with pytest.raises(SpreadsheetError, match="第 31 行"):
        read_table_bytes(text.encode(), "rows.csv", UploadLimits(10_000_000, 50_000_000, max_rows=20, max_columns=200))


def test_a_utf16_csv_with_an_odd_byte_count_is_a_message_not_a_traceback() -> None:
    data = "单位名称,联系电话\n测试,1380\n".encode("utf-16")[:-1]
    with pytest.raises(SpreadsheetError, match=r"odd\.csv.*UTF-16.*不完整"):
        read_table_bytes(data, "odd.csv", LIMITS)


@pytest.mark.parametrize("parse", [lambda v: parse_volume(v, "年采购量"),
                                   lambda v: parse_positive_int(v, "承诺配备药品数量")])
def test_a_volume_of_ten_to_the_twentieth_is_a_cell_error(parse: Callable[[str], int]) -> None:
    with pytest.raises(FieldError) as caught:
        parse("100000000000000000000")
    assert caught.value.rule == "int.too_large" and "数值过大" in str(caught.value)
    assert parse("999999999") == 999_999_999


def test_a_program_file_with_february_30_names_the_line(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "programs" / "shenyang-2025.yaml").read_text(encoding="utf-8")
    assert "closes: 2025-08-15" in text
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace("closes: 2025-08-15", "closes: 2025-02-30", 1), encoding="utf-8")
    with pytest.raises(ProgramFileError, match=r"line 18.*不存在的日期 / no such date '2025-02-30'"):
        load_program_file(path)


# --------------------------------------------------------------------------- the other holes


def test_the_same_declaration_file_from_a_second_enterprise_is_its_own_declaration(
        engine: Engine, shenyang: object, clock_in_windows: FixedClock, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "品种明细表.xlsx", DECLARATION_HEADER, [product_row(1)])
    first = import_declaration(engine, "shenyang-2025", path, "甲制药有限公司", clock=clock_in_windows)
    second = import_declaration(engine, "shenyang-2025", path, "乙制药有限公司", clock=clock_in_windows)
    again = import_declaration(engine, "shenyang-2025", path, "乙制药有限公司", clock=clock_in_windows)
    assert not first.already_imported and not second.already_imported and again.already_imported
    with Session(engine) as session:
        assert len(session.exec(select(EnterpriseDeclaration)).all()) == 2


def test_a_resent_application_with_a_corrected_phone_updates_the_contact(
        engine: Engine, shenyang: object, clock_in_windows: FixedClock, tmp_path: Path) -> None:
    rows = [application_row(1), application_row(2)]
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, rows),
                        clock=clock_in_windows)
    rows[0]["联系电话"] = 13912345678
    result = import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "b.xlsx", APPLICATION_HEADER, rows),
                                 clock=clock_in_windows, actor="hp_reviewer")
    assert result.created == 0 and len(result.skipped) == 2
    with Session(engine) as session:
        phones = sorted(session.execute(select(Institution.phone)).scalars())
        audits = session.exec(select(AuditEvent).where(AuditEvent.entity == "institution")).all()
    assert phones == ["13800000002", "13912345678"]
    assert [(a.action, a.actor, a.data["changed"]) for a in audits] == [("update", "hp_reviewer", ["联系电话"])]
    assert "13912345678" not in str(audits[0].data), "the trail names the column, not the number"


def test_two_overlapping_application_files_imported_at_once_neither_deadlock_nor_leak(
        engine: Engine, shenyang: object, clock_in_windows: FixedClock, tmp_path: Path) -> None:
    first = write_xlsx(tmp_path / "一.xlsx", APPLICATION_HEADER, [application_row(n) for n in range(1, 41)])
    second = write_xlsx(tmp_path / "二.xlsx", APPLICATION_HEADER, [application_row(n) for n in range(21, 61)])
    results: dict[str, object] = {}

    def run(name: str, path: Path) -> None:
        try:
            results[name] = import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
        except Exception as exc:  # the test reports what escaped, whatever it is
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("一", first), ("二", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(isinstance(r, Exception) for r in results.values()), results
    created = sorted(r.created for r in results.values())  # type: ignore[attr-defined]
    assert created == [20, 40], "the overlap is imported once, by whichever came first"
    with Session(engine) as session:
        assert len(session.exec(select(Institution)).all()) == 60
