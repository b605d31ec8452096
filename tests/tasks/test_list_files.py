"""The public files of a list: paged HTML, the XLSX as Excel reads it, safe cells, all-or-nothing publication."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from python_calamine import CalamineWorkbook
from sqlalchemy import Engine, func, select
from sqlmodel import Session

import tasks.lists.downloads
import tasks.lists.files
import tasks.lists.publication
from models.catalog import ListVersion
from models.states import ListKind
from tasks.lists.downloads import DownloadsFailed, start_downloads, write_downloads
from tasks.lists.files import html_rows, neutralize, neutralized, paginate
from tasks.lists.publication import Outcome, publish
from tasks.lists.xlsx_text import write_text_xlsx
from tests.factories import clock_at, make_institution, make_program, make_running_application, shanghai

SLUG = "shenyang-2025"
CLOCK = clock_at(2025, 10, 9, 10)
TRICKY = ["<b>&amp;</b>", "=SUM(1)", "+1", "-1", "@x", "\t=1", "\r=1", "a\rb", "a\nb", "_x0041_", "x\x01y", " lead",
          "trail ", "\u3000全角空格", "𠀋 astral", "", '"quoted"', "it's", "\ufffe", "a\x1f=1", "x" * 40_000]


def test_pages_hold_each_row_once_grouped_by_district_in_order_of_first_appearance() -> None:
    districts = ["和平区", "沈河区", "和平区", "铁西区", "沈河区", "和平区", "和平区"]
    rows = [(f"H{i:03d}", f"机构{i}", d) + ("",) * 6 for i, d in enumerate(districts)]
    pages = paginate(ListKind.INSTITUTIONS, rows, page_rows=2)
    assert [(p.number, p.group, p.first, p.last, p.group_count) for p in pages] == [
        (1, "和平区", 1, 2, 4), (2, "和平区", 3, 4, 4), (3, "沈河区", 1, 2, 2), (4, "铁西区", 1, 1, 1)]
    assert sorted(r for p in pages for r in p.rows) == sorted(rows)
    assert all(len(p.rows) <= 2 for p in pages)


def test_the_drug_list_is_paged_in_code_order_without_groups() -> None:
    rows = [(f"X{i:02d}",) + ("",) * 13 for i in range(5)]
    pages = paginate(ListKind.DRUGS, rows, page_rows=2)
    assert [(p.group, [r[0] for r in p.rows]) for p in pages] == [
        (None, ["X00", "X01"]), (None, ["X02", "X03"]), (None, ["X04"])]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6), st.sampled_from(TRICKY[:20])), max_size=6))
def test_every_formula_like_cell_is_neutralized_and_no_other(rows: list[tuple[str, str, str]]) -> None:
    assert neutralized(rows) == [tuple(map(neutralize, row)) for row in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.sampled_from(TRICKY[:20])), max_size=6))
def test_html_rows_escape_every_cell_as_the_templates_do(rows: list[tuple[str, str]]) -> None:
    expected = "".join(f"<tr><td>{n}</td><td>{escape(a)}</td><td>{escape(b)}</td></tr>\n"
                       for n, (a, b) in enumerate(rows, start=7))
    assert str(html_rows(rows, 7)) == expected


def read_openpyxl(path: Path) -> list[tuple[object, ...]]:
    workbook = openpyxl.load_workbook(path)
    rows = [tuple(c.value for c in row) for row in workbook.worksheets[0].iter_rows()]
    workbook.close()
    return rows


def test_the_xlsx_reads_back_exactly_as_the_file_xlsxwriter_writes(tmp_path: Path) -> None:
    header = ("编码", "名称", "备注")
    rows = [(f"K{i}", value, neutralize(value)) for i, value in enumerate(TRICKY)]
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    write_text_xlsx(ours, "机构名单", header, rows, title="定点机构名单")
    workbook = xlsxwriter.Workbook(str(theirs), {"constant_memory": True, "strings_to_formulas": False,
                                                 "strings_to_urls": False})
    sheet = workbook.add_worksheet("机构名单")
    sheet.write_string(0, 0, "定点机构名单")
    sheet.write_row(1, 0, header)
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row):  # write_row would stop at the first cell it truncates
            sheet.write_string(r, c, value)
    workbook.close()
    assert read_openpyxl(ours) == read_openpyxl(theirs)
    assert (CalamineWorkbook.from_path(str(ours)).get_sheet_by_index(0).to_python()
            == CalamineWorkbook.from_path(str(theirs)).get_sheet_by_index(0).to_python())
    book = openpyxl.load_workbook(ours)
    assert book.sheetnames == ["机构名单"] and book.worksheets[0].max_row == len(rows) + 2
    assert all(c.data_type == "s" for row in book.worksheets[0].iter_rows(min_row=2) for c in row)  # never a formula
    book.close()


def test_big_downloads_written_by_a_child_process_are_the_same_files(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.lists.downloads, "CHILD_MIN_ROWS", 2)
    rows = [(f"K{i}", value) for i, value in enumerate(TRICKY)]
    write_downloads(tmp_path / "here.csv", tmp_path / "here.xlsx", "名单", ("编码", "名称"), rows)
    job = start_downloads(tmp_path / "child.csv", tmp_path / "child.xlsx", "名单", ("编码", "名称"), rows)
    assert job.wait() == (tmp_path / "child.csv", tmp_path / "child.xlsx")
    assert read_openpyxl(tmp_path / "child.xlsx") == read_openpyxl(tmp_path / "here.xlsx")
    assert (tmp_path / "child.csv").read_bytes() == (tmp_path / "here.csv").read_bytes()
    assert not list(tmp_path.glob(".*"))  # the rows handed to the child are gone


def test_a_failing_child_fails_the_downloads_and_leaves_no_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.lists.downloads, "CHILD_MIN_ROWS", 1)
    job = start_downloads(tmp_path / "a.csv", tmp_path / "a.xlsx", "名单", ("编码",), [("K1",), (3,)])  # type: ignore[list-item]
    with pytest.raises(DownloadsFailed):
        job.wait()
    assert list(tmp_path.iterdir()) == []


def running(engine: Engine, names_by_district: dict[str, int]) -> None:
    program = make_program(engine, SLUG)
    for district, count in names_by_district.items():
        for i in range(count):
            inst = make_institution(engine, district=district, name=f"{district}药房{i}<&>")
            make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))


def test_the_published_html_is_an_entry_page_and_pages_of_bounded_size(engine: Engine, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.lists.files, "PAGE_ROWS", 2)
    monkeypatch.setattr(tasks.lists.downloads, "CHILD_MIN_ROWS", 1)  # the big-list path: downloads by a child
    running(engine, {"和平区": 3, "沈河区": 2})
    [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert (result.outcome, result.version) == (Outcome.PUBLISHED, 1)
    entry = result.files["html"].read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+-p\d+\.html)"', entry)
    assert links == [f"{SLUG}-institutions-v1-p{n}.html" for n in (1, 2, 3)]
    assert "按所属区县" in entry and "共 5 条" in entry and "<td>" + "和平区药房" not in entry
    pages = [(tmp_path / SLUG / link).read_text(encoding="utf-8") for link in links]
    assert [page.count("<tr><td>") for page in pages] == [2, 1, 2]
    assert "和平区　第1–2条（共 3 条）" in pages[0] and "沈河区　第1–2条（共 2 条）" in pages[2]
    assert all("&lt;&amp;&gt;" in page and "<&>" not in page for page in pages)
    assert 'href="shenyang-2025-institutions-v1-p2.html">下一页' in pages[0]
    rows = list(csv.reader(io.StringIO(result.files["csv"].read_bytes().decode("utf-8-sig"), newline="")))
    assert len(rows) == 6 and len(read_openpyxl(result.files["xlsx"])) == 7  # the title row, the header, 5 rows
    assert not [p for p in (tmp_path / SLUG).iterdir() if p.name.startswith(".")]  # no scratch left


def test_a_version_rendered_again_from_the_database_gives_the_same_files(engine: Engine, tmp_path: Path) -> None:
    running(engine, {"和平区": 3, "沈河区": 2})
    [first] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    folder = tmp_path / SLUG
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".html", ".csv")}
    for path in folder.glob(f"{SLUG}-institutions-v1*"):
        path.unlink()
    [again] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert (again.outcome, again.rendered) == (Outcome.UNCHANGED, (1,))
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".html", ".csv")} == before
    assert read_openpyxl(first.files["xlsx"])[2:] == read_openpyxl(again.files["xlsx"])[2:]


def test_a_failure_while_rendering_publishes_no_file_of_the_version(engine: Engine, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    running(engine, {"和平区": 3})
    real = tasks.lists.files._write_pages

    def pages_then_disk_full(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tasks.lists.files, "_write_pages", pages_then_disk_full)
    with pytest.raises(OSError):
        publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert list((tmp_path / SLUG).iterdir()) == []  # no page, no CSV/XLSX, no index pointing at them
    monkeypatch.setattr(tasks.lists.files, "_write_pages", real)
    [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert (result.outcome, result.rendered) == (Outcome.UNCHANGED, (1,))  # the version was kept: files now
    assert all(p.exists() for p in result.files.values())


def test_a_long_diff_section_lists_its_first_rows_and_says_so(engine: Engine, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.lists.publication, "DIFF_ROWS", 2)
    running(engine, {"和平区": 3})
    [result] = publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    page = result.files["diff"].read_text(encoding="utf-8")
    assert "首次发布：新增 3" in page and "新增（3）" in page
    assert page.count("<tr><td>") == 2 and "仅列出前 2 条，其余见本版名单" in page


def test_a_version_that_fails_to_be_stored_leaves_no_downloads_behind(engine: Engine, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The downloads start before the version's commit (in a child process): a failed commit discards them."""
    monkeypatch.setattr(tasks.lists.downloads, "CHILD_MIN_ROWS", 1)
    running(engine, {"和平区": 3})

    def storage_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(tasks.lists.publication, "publish_rows", storage_fails)
    with pytest.raises(OSError):
        publish(engine, SLUG, ["institutions"], clock=CLOCK, out_dir=tmp_path)
    assert list((tmp_path / SLUG).iterdir()) == []
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(ListVersion)).scalar_one() == 0


def test_a_published_sheet_is_laid_out_to_read_filter_and_print(tmp_path: Path) -> None:
    header = ("药品统一编码", "产品名称", "中选价(元)")
    rows = [("XC10AA0001A001010100483", "苯磺酸氨氯地平片（长名称的产品）", "12.50"), ("XC10AA0002", "<&>", "待定"),
            ("XC10AA0003", "片", "-0.5")]
    path = tmp_path / "drugs.xlsx"
    write_text_xlsx(path, "药品清单", header, rows, title="“三进”集采药品清单", number_columns=[2])
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    assert sheet["A1"].value == "“三进”集采药品清单" and sheet["A1"].font.b
    assert [c.value for c in sheet[2]] == list(header) and all(c.font.b for c in sheet[2])
    assert sheet.freeze_panes == "A3" and sheet.auto_filter.ref == "A2:C5"
    assert (sheet["C3"].value, sheet["C3"].number_format) == (12.5, "0.00")  # a number shown with 2 decimals
    assert (sheet["C4"].value, sheet["C4"].data_type) == ("待定", "s") and sheet["C5"].value == -0.5
    assert sheet["B4"].value == "<&>"
    widths = {c: sheet.column_dimensions[c].width for c in "ABC"}
    assert widths["A"] >= 23 and widths["B"] >= 30 and widths["C"] >= 10  # as wide as the longest cell
    assert sheet.page_setup.orientation == "landscape" and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert (sheet.page_setup.fitToHeight, sheet.print_title_rows) in (("0", "$2:$2"), (0, "$2:$2"))
    book.close()
