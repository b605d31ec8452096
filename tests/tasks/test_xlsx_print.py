"""The published spreadsheets as a bureau prints them: LibreOffice (Debian's libreoffice-calc-nogui) turns each XLSX
into a PDF, and every printed page shows every column under the repeated header, on A4 landscape.

Before the print setup (issue #16) a list printed as 78 pages with its columns cut off; these tests fail on that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from models.quarterly import ColumnCounts, Quarter, QuarterColumn, table_of
from models.summary import SummaryRow, arrange
from tasks.lists.versions import DRUG_COLUMNS, INSTITUTION_COLUMNS
from tasks.lists.xlsx_text import write_text_xlsx
from tasks.reports.quarterly import QuarterlyStatistics
from tasks.reports.quarterly_files import HEADER, quarterly_xlsx
from tasks.reports.summary import YearSummary
from tasks.reports.summary_files import HEADER as SUMMARY_HEADER
from tasks.reports.summary_files import summary_xlsx

SOFFICE, PDFTOTEXT, PDFINFO = (shutil.which(t) for t in ("soffice", "pdftotext", "pdfinfo"))
pytestmark = pytest.mark.skipif(
    not (SOFFICE and PDFTOTEXT and PDFINFO),
    reason="LibreOffice (libreoffice-calc-nogui) or poppler-utils is not installed: `make browser` installs them "
           "with apt when run as root")
A4_LANDSCAPE = (841.89, 595.28)  # points


def _to_pdf(tmp_path: Path, *files: Path) -> list[Path]:
    """Every file converted by one headless LibreOffice with a profile of its own (never the user's)."""
    out = tmp_path / "pdf"
    assert SOFFICE is not None
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out), *map(str, files)],
                   check=True, capture_output=True, timeout=240)
    return [out / f"{f.stem}.pdf" for f in files]


def _pages(pdf: Path) -> list[str]:
    """The text of each page (pdftotext separates pages with a form feed)."""
    assert PDFTOTEXT is not None
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return text.split("\f")[:-1]


def _page_size(pdf: Path) -> tuple[float, float]:
    assert PDFINFO is not None
    info = subprocess.run([PDFINFO, str(pdf)], check=True, capture_output=True, text=True).stdout
    found = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert found, info
    return float(found[1]), float(found[2])


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _drug_rows(n: int) -> list[tuple[str, ...]]:
    return [(f"XC10AA{k:04d}A001010100483", f"苯磺酸氨氯地平片（第{k}号，较长的产品名称）", "片剂", "5mg", "28",
             "片", "盒", "铝塑泡罩包装", "某某制药股份有限公司", "某某医药集团有限公司", f"{k % 90 + 10}.50",
             f"国药准字H2020{k:04d}", "化学药", "否") for k in range(1, n + 1)]


def _institution_rows(n: int) -> list[tuple[str, ...]]:
    return [(f"H21010{k:06d}", f"沈阳市和平区第{k}社区卫生服务站（较长的单位名称）", "和平区", "社区卫生服务站",
             "民营", f"辽宁省沈阳市和平区南京北街{k}号", "024-23456789", "第1批", "三进") for k in range(1, n + 1)]


def test_the_published_lists_print_every_column_under_a_repeated_header_on_a4_landscape(tmp_path: Path) -> None:
    drugs, institutions = tmp_path / "drugs.xlsx", tmp_path / "institutions.xlsx"
    write_text_xlsx(drugs, "药品清单", DRUG_COLUMNS, _drug_rows(120), title="“三进”集采药品清单", number_columns=[10])
    write_text_xlsx(institutions, "机构名单", INSTITUTION_COLUMNS, _institution_rows(300), title="“三进”定点医药机构名单")
    drugs_pdf, institutions_pdf = _to_pdf(tmp_path, drugs, institutions)
    # Pages as LibreOffice 7.4 (Debian 12) prints them: 14 drug columns fitted to the width leave small rows.
    for pdf, header, rows, page_count, last_cell in (
            (drugs_pdf, DRUG_COLUMNS, 120, 2, "国药准字H20200120"),
            (institutions_pdf, INSTITUTION_COLUMNS, 300, 6, "H21010000300")):
        pages = _pages(pdf)
        width, height = _page_size(pdf)
        assert (round(width), round(height)) == tuple(round(x) for x in A4_LANDSCAPE), pdf.name
        # Fitted to the page width: one page across, so the pages are the rows' pages alone, each with every column.
        assert len(pages) == page_count, pdf.name
        for number, page in enumerate(pages, start=1):
            missing = [h for h in header if _flat(h) not in _flat(page)]
            assert not missing, (pdf.name, number, missing)  # no column cut, the header on every page
        assert last_cell in _flat(pages[-1])  # the last row's far-right columns made it onto paper
        assert sum(_flat(p).count("H2020" if pdf is drugs_pdf else "H21010") for p in pages) >= rows


def test_the_quarterly_workbook_prints_one_whole_table_per_page(tmp_path: Path) -> None:
    quarter = Quarter(2026, 1)
    counts = ColumnCounts(3, 12, 2, 9, Decimal("12345.60"), Decimal("9876543.21"))
    cities = ["银川市", "石嘴山市", "吴忠市", "固原市", "中卫市", "宁夏回族自治区（合计）"]
    tables = [table_of(city, quarter, dict.fromkeys(QuarterColumn, counts), counts) for city in cities]
    stats = QuarterlyStatistics("ningxia-2025", "宁夏集采药品“三进”工作", "宁夏回族自治区", quarter, tables)
    path = tmp_path / "quarterly.xlsx"
    path.write_bytes(quarterly_xlsx(stats, "第1版（2026-04-02生成）"))
    [pdf] = _to_pdf(tmp_path, path)
    pages = _pages(pdf)
    assert len(pages) == len(cities)  # a sheet per table, each on one page
    assert tuple(round(x) for x in _page_size(pdf)) == tuple(round(x) for x in A4_LANDSCAPE)
    for city, page in zip(cities, pages, strict=True):
        flat = _flat(page)
        assert city in flat and "集采药品“三进”相关数据统计表" in flat
        assert all(h in flat for h in HEADER if h), (city, page)
        assert "采购集采药品金额（累计）" in flat and "39,506,172.84" in flat  # 汇总's last cell: nothing cut


def test_the_year_end_summary_prints_every_column_on_each_page(tmp_path: Path) -> None:
    districts = [(f"第{k}区", "银川市" if k <= 80 else "石嘴山市") for k in range(1, 161)]
    rows = {name: SummaryRow(name, "district", 1200 + k, 900 + k, 900 + k, 40, 12000 + k, amount=Decimal("1234567.89"),
                             products=frozenset(range(k)))
            for k, (name, _) in enumerate(districts, start=1)}
    summary = YearSummary("ningxia-2025", "宁夏集采药品“三进”工作", "宁夏回族自治区", 2026,
                          arrange(districts, rows, "宁夏回族自治区"), "2026-06-01")
    path = tmp_path / "summary.xlsx"
    path.write_bytes(summary_xlsx(summary))
    [pdf] = _to_pdf(tmp_path, path)
    pages = _pages(pdf)
    assert len(pages) == 2  # 163 rows fitted to the width of A4 landscape
    assert tuple(round(x) for x in _page_size(pdf)) == tuple(round(x) for x in A4_LANDSCAPE)
    for page in pages:  # every column on every page: the first and the last header and the far-right figures
        flat = _flat(page)
        missing = [h for h in SUMMARY_HEADER if _flat(h) not in flat]
        assert not missing, (missing, page)
    assert "宁夏回族自治区（合计）" in _flat(pages[-1]) and "197,530,862.40" in _flat(pages[-1])  # 160 × 1,234,567.89
