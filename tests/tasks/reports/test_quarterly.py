"""The quarterly statistics (seed 001 att. 3) cell by cell against a hand-computed example, on both databases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from models.enrollment import Application, Institution
from models.program import Program
from models.quarterly import Quarter, QuarterColumn, QuarterRow
from models.states import InstitutionKind as K
from tasks.reports.quarterly import quarterly_statistics
from tasks.reports.quarterly_files import HEADER, write_quarterly
from tests.factories import (
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_running_application,
    shanghai,
)

Q1 = Quarter(2026, 1)
P, PM, V, C = (QuarterColumn.PHARMACY, QuarterColumn.PRIVATE_MEDICAL, QuarterColumn.VILLAGE_CLINIC,
               QuarterColumn.COMMUNITY_STATION)
R = QuarterRow


def _join(engine: Engine, program: Program, kind: K, *when: int, left_on: str | None = None,
          district: str = "和平区") -> Institution:
    inst = make_institution(engine, kind=kind, district=district)
    app_id = make_running_application(engine, program, inst, running_at=shanghai(*when))
    if left_on is not None:
        with Session(engine) as session:
            session.execute(update(Application).where(Application.id == app_id).values(left_on=date.fromisoformat(left_on)))  # type: ignore[arg-type]
            session.commit()
    return inst


@pytest.fixture
def shenyang(engine: Engine) -> Program:
    """Joins of every kind around 2026Q1 and purchases of three drugs (README's example, hand-counted below)."""
    program = make_program(engine)
    a = _join(engine, program, K.CHAIN_PHARMACY, 2025, 11, 10, 9)  # prior quarter
    b = _join(engine, program, K.SINGLE_PHARMACY, 2026, 1, 15, 9)
    c = _join(engine, program, K.PRIVATE_CLINIC, 2026, 2, 1, 9)
    _join(engine, program, K.PRIVATE_HOSPITAL, 2026, 3, 31, 23)  # 23:00 Shanghai on the last day: Q1
    e = _join(engine, program, K.VILLAGE_CLINIC, 2026, 1, 5, 9)
    f = _join(engine, program, K.TOWNSHIP_HEALTH_CENTER, 2026, 2, 10, 9)  # → 村卫生室
    g = _join(engine, program, K.COMMUNITY_HEALTH_CENTER, 2025, 12, 1, 9)  # → 社区卫生站, prior quarter
    _join(engine, program, K.COMMUNITY_HEALTH_STATION, 2026, 4, 1, 0)  # 00:00 of Q2: not counted
    _join(engine, program, K.VILLAGE_CLINIC, 2025, 10, 1, 9, left_on="2026-02-01")  # left within Q1: not 累计
    enterprise = make_enterprise(engine)
    p1, p2, p3 = (make_product(engine, enterprise) for _ in range(3))
    for inst, product, qty, price, when in (
            (a, p1, 10, "12.50", (2025, 12, 10, 9)), (a, p1, 2, "12.50", (2026, 1, 10, 9)),
            (b, p2, 4, "10.00", (2026, 2, 10, 9)), (c, p1, 1, "12.50", (2026, 3, 1, 9)),
            (e, p3, 3, "5.00", (2026, 3, 31, 23, 30)), (g, p2, 10, "10.00", (2025, 11, 20, 9)),
            (f, p2, 1, "10.00", (2026, 4, 1, 8))):
        make_order(engine, program, inst, product, ordered_at=shanghai(*when), quantity=qty, unit_price=price)
    return program


def test_the_quarterly_table_is_counted_cell_by_cell_as_the_readme_says(engine: Engine, shenyang: Program) -> None:
    stats = quarterly_statistics(engine, "shenyang-2025", Q1)
    assert [t.scope for t in stats.tables] == ["辽宁省沈阳市"]  # Shenyang's districts name no city: one table
    table = stats.tables[0]
    expected: dict[QuarterRow, list[object]] = {   # 定点药店, 民营医疗机构, 村卫生室, 社区卫生站, 汇总
        R.INSTITUTIONS_NEW: [1, 2, 2, 0, 5],
        R.INSTITUTIONS_TOTAL: [2, 2, 2, 1, 7],
        R.VARIETIES_NEW: [1, 1, 1, 0, 1],  # 汇总 counts drugs, not column sums: only p3 is new to the region
        R.VARIETIES_TOTAL: [2, 1, 1, 1, 3],
        R.AMOUNT_NEW: [Decimal("65.00"), Decimal("12.50"), Decimal("15.00"), Decimal("0.00"), Decimal("92.50")],
        R.AMOUNT_TOTAL: [Decimal("190.00"), Decimal("12.50"), Decimal("15.00"), Decimal("100.00"), Decimal("317.50")],
    }
    for row, cells in expected.items():
        assert [table.cell(row, c) for c in (P, PM, V, C, None)] == cells, row


def test_a_quarter_with_no_activity_is_all_zeros(engine: Engine, shenyang: Program, tmp_path: Path) -> None:
    table = quarterly_statistics(engine, "shenyang-2025", Quarter(2025, 2)).tables[0]
    assert [cells for _, cells in table.rows()] == [[0] * 5, [0] * 5, [0] * 5, [0] * 5,
                                                    [Decimal("0.00")] * 5, [Decimal("0.00")] * 5]
    files = write_quarterly(quarterly_statistics(engine, "shenyang-2025", Quarter(2025, 2)), tmp_path)
    sheet = openpyxl.load_workbook(files["xlsx"]).worksheets[0]
    assert [sheet.cell(9, j).value for j in range(2, 7)] == [0, 0, 0, 0, 0]  # numbers, never blanks


def test_the_files_have_exactly_the_attachments_layout(engine: Engine, shenyang: Program, tmp_path: Path) -> None:
    files = write_quarterly(quarterly_statistics(engine, "shenyang-2025", Q1), tmp_path)
    sheet = openpyxl.load_workbook(files["xlsx"]).worksheets[0]
    assert sheet.cell(1, 1).value == "集采药品“三进”相关数据统计表"
    assert tuple(sheet.cell(3, j).value or "" for j in range(1, 7)) == HEADER == (
        "", "定点药店", "民营医疗机构", "村卫生室", "社区卫生站", "汇总")
    assert [sheet.cell(i, 1).value for i in range(4, 10)] == [
        "参加集采药品医药机构数量（新增）", "参加集采药品医药机构数量（累计）", "采购集采药品品种数量（新增）",
        "采购集采药品品种数量（累计）", "采购集采药品金额（新增）", "采购集采药品金额（累计）"]
    assert sheet.cell(9, 6).value == 317.5 and sheet.cell(9, 6).number_format == "#,##0.00"
    html = files["html"].read_text("utf-8")
    assert "参加集采药品医药机构数量（新增）" in html and "317.50" in html and "2026年第1季度" in html


def test_ningxia_reports_one_table_per_city_and_the_total(engine: Engine) -> None:
    program = make_program(engine, "ningxia-2025")
    _join(engine, program, K.CHAIN_PHARMACY, 2026, 2, 1, 9, district="兴庆区")  # 银川市
    _join(engine, program, K.VILLAGE_CLINIC, 2026, 2, 1, 9, district="金凤区")  # 银川市
    shizuishan = _join(engine, program, K.VILLAGE_CLINIC, 2026, 3, 1, 9, district="大武口区")  # 石嘴山市
    make_order(engine, program, shizuishan, make_product(engine, make_enterprise(engine)),
               ordered_at=shanghai(2026, 3, 2, 9), quantity=2, unit_price="5.00")
    stats = quarterly_statistics(engine, "ningxia-2025", Q1)
    tables = {t.scope: t for t in stats.tables}
    assert list(tables) == ["银川市", "石嘴山市", "吴忠市", "固原市", "中卫市", "宁夏回族自治区（合计）"]
    assert [tables["银川市"].cell(R.INSTITUTIONS_NEW, c) for c in (P, PM, V, C, None)] == [1, 0, 1, 0, 2]
    assert tables["石嘴山市"].cell(R.AMOUNT_NEW, None) == Decimal("10.00")
    assert tables["吴忠市"].cell(R.INSTITUTIONS_TOTAL, None) == 0
    total = tables["宁夏回族自治区（合计）"]
    assert (total.cell(R.INSTITUTIONS_NEW, None), total.cell(R.VARIETIES_TOTAL, None)) == (3, 1)


def test_the_quarterly_command_writes_both_files_and_refuses_a_badly_written_quarter(
        engine: Engine, shenyang: Program, database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from models.quarterly import QuarterError
    from sanjin.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["report", "quarterly", "shenyang-2025", "2026Q1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shenyang-2025-2026Q1-quarterly.html",
                                                          "shenyang-2025-2026Q1-quarterly.xlsx"]
    refused = runner.invoke(app, ["report", "quarterly", "shenyang-2025", "2026Q5", "--out", str(tmp_path)])
    assert isinstance(refused.exception, QuarterError) and "应写作 2026Q1" in str(refused.exception)
