"""The year-end summary (001 §三(四): 执行情况 by 2026-12-31) against hand-counted figures, per district and city."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.enforcement import EnforcementCase, LadderState
from models.enrollment import Application, Institution
from models.operations import Violation
from models.program import Program
from models.register import DesignationStatus, RegisterEntry
from models.states import ApplicationState
from models.states import InstitutionKind as K
from models.summary import NO_DISTRICT, SummaryRow
from tasks.reports.summary import YearSummary, year_summary
from tasks.reports.summary_files import HEADER, write_summary
from tests.factories import (
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_running_application,
    shanghai,
)

SLUG = "ningxia-2025"


def _join(engine: Engine, program: Program, district: str, *when: int, kind: K = K.VILLAGE_CLINIC,
          left_on: date | None = None) -> Institution:
    inst = make_institution(engine, kind=kind, district=district)
    app_id = make_running_application(engine, program, inst, running_at=shanghai(*when))
    if left_on is not None:  # left the program: exited, no longer taking part
        with Session(engine) as session:
            session.execute(update(Application).where(Application.id == app_id).values(  # type: ignore[arg-type]
                left_on=left_on, state=ApplicationState.EXITED))
            session.commit()
    return inst


def _register(engine: Engine, program: Program, entries: list[tuple[str, str, DesignationStatus]]) -> None:
    with Session(engine) as session:
        for code, district, status in entries:
            session.add(RegisterEntry(program_id=program.id or 0, as_of=date(2026, 6, 1), insurance_code=code,
                                      name=f"机构{code}", district=district, kind=K.VILLAGE_CLINIC, status=status,
                                      designated_on=date(2025, 1, 1)))
        session.commit()


def _violation(session: Session, program: Program, district: str | None, found: date, closed: date | None,
               n: int) -> int:
    row = Violation(program_id=program.id or 0, rule=ViolationRule.LATE_PAYMENT,
                    subject_type=SubjectType.INSTITUTION if district else SubjectType.ENTERPRISE,
                    subject_id=n, object_key=f"V{n}", district=district, detected_on=found,
                    detected_at=shanghai(found.year, found.month, found.day, 9), closed_on=closed,
                    state=ViolationState.CLOSED if closed else ViolationState.OPEN)
    session.add(row)
    session.flush()
    return row.id or 0


@pytest.fixture
def ningxia(engine: Engine) -> Program:
    """Two cities' districts with joins around 2026, purchases, violations and ladders (counted in the test)."""
    program = make_program(engine, SLUG)
    a = _join(engine, program, "兴庆区", 2025, 11, 10, 9, kind=K.CHAIN_PHARMACY)  # before the year: stays
    b = _join(engine, program, "兴庆区", 2026, 3, 1, 9)  # new in the year
    c = _join(engine, program, "金凤区", 2026, 5, 1, 9, kind=K.PRIVATE_CLINIC, left_on=date(2026, 9, 1))  # left
    _join(engine, program, "大武口区", 2027, 1, 1, 0)  # 00:00 of the next year: not counted
    e = _join(engine, program, "大武口区", 2026, 12, 31, 23)  # 23:00 on 31 December: counted
    _register(engine, program, [(a.insurance_code, "兴庆区", DesignationStatus.ACTIVE),
                                (b.insurance_code, "兴庆区", DesignationStatus.ACTIVE),
                                ("H64010499991", "兴庆区", DesignationStatus.ACTIVE),
                                ("H64010499992", "兴庆区", DesignationStatus.ACTIVE),
                                ("H64010499993", "兴庆区", DesignationStatus.SUSPENDED),  # not designated
                                (c.insurance_code, "金凤区", DesignationStatus.ACTIVE),
                                ("H64010699991", "金凤区", DesignationStatus.ACTIVE),
                                (e.insurance_code, "大武口区", DesignationStatus.ACTIVE),
                                ("H64020299991", "大武口区", DesignationStatus.ACTIVE)])
    enterprise = make_enterprise(engine)
    p1, p2, p3 = (make_product(engine, enterprise) for _ in range(3))
    for inst, product, qty, price, when in (
            (a, p1, 10, "12.50", (2025, 12, 31, 23, 59)),  # the year before
            (a, p1, 2, "12.50", (2026, 1, 1, 0, 0)),  # 25.00
            (b, p2, 4, "10.00", (2026, 6, 10, 9)),  # 40.00
            (c, p1, 1, "12.50", (2026, 7, 1, 9)),  # 12.50, 金凤区
            (e, p3, 3, "5.00", (2026, 12, 31, 23, 30)),  # 15.00, 大武口区
            (e, p1, 2, "12.50", (2027, 1, 1, 8))):  # the year after
        make_order(engine, program, inst, product, ordered_at=shanghai(*when), quantity=qty, unit_price=price)
    with Session(engine) as session:
        v1 = _violation(session, program, "兴庆区", date(2026, 3, 1), None, 1)  # found, still open
        _violation(session, program, "兴庆区", date(2025, 12, 1), date(2026, 2, 1), 2)  # found before, closed in year
        v3 = _violation(session, program, "金凤区", date(2026, 8, 1), date(2027, 1, 10), 3)  # open at year end
        _violation(session, program, None, date(2026, 4, 1), None, 4)  # an enterprise's
        for violation, district, state, opened in ((v1, "兴庆区", LadderState.SUSPENDED, (2026, 3, 2)),
                                                   (v3, "金凤区", LadderState.CURED, (2026, 8, 2))):
            session.add(EnforcementCase(program_id=program.id or 0, violation_id=violation, subject_type=SubjectType.INSTITUTION,
                                        subject_id=1, district=district, state=state, opened_at=shanghai(*opened, 9)))
        session.commit()
    return program


def _row(summary: YearSummary, scope: str) -> SummaryRow:
    return next(r for r in summary.rows if r.scope == scope)


def test_the_summary_is_counted_per_district_city_and_in_total_as_the_readme_says(engine: Engine,
                                                                                   ningxia: Program) -> None:
    summary = year_summary(engine, SLUG, 2026)
    scopes = [r.scope for r in summary.rows]
    assert scopes[:4] == ["兴庆区", "西夏区", "金凤区", "永宁县"] and "银川市（小计）" in scopes
    assert scopes[-2:] == [NO_DISTRICT, "宁夏回族自治区（合计）"]
    assert scopes.index("银川市（小计）") < scopes.index("大武口区") < scopes.index("石嘴山市（小计）")
    # designated, covered, share, participants, joined, orders, varieties, amount, found, open, cases, cured, severe
    expected = {
        "兴庆区": [4, 2, 0.5, 2, 1, 2, 2, Decimal("65.00"), 1, 1, 1, 0, 1],
        "金凤区": [2, 0, 0.0, 0, 1, 1, 1, Decimal("12.50"), 1, 1, 1, 1, 0],
        "大武口区": [2, 1, 0.5, 1, 1, 1, 1, Decimal("15.00"), 0, 0, 0, 0, 0],
        "银川市（小计）": [6, 2, 2 / 6, 2, 2, 3, 2, Decimal("77.50"), 2, 2, 2, 1, 1],  # p1 bought in two districts: once
        NO_DISTRICT: [0, 0, 0.0, 0, 0, 0, 0, Decimal("0.00"), 1, 1, 0, 0, 0],
        "宁夏回族自治区（合计）": [8, 3, 3 / 8, 3, 3, 4, 3, Decimal("92.50"), 3, 3, 2, 1, 1],
    }
    for scope, cells in expected.items():
        assert _row(summary, scope).cells() == cells, scope
    assert _row(summary, "西夏区").cells() == [0, 0, 0.0, 0, 0, 0, 0, Decimal("0.00"), 0, 0, 0, 0, 0]  # zeros, not gaps
    assert summary.register_as_of == "2026-06-01"


def test_the_summary_files_have_a_row_per_scope_with_numbers_fit_to_print(engine: Engine, ningxia: Program,
                                                                          tmp_path: Path) -> None:
    files = write_summary(year_summary(engine, SLUG, 2026), tmp_path)
    assert sorted(p.name for p in files.values()) == ["ningxia-2025-2026-summary.html", "ningxia-2025-2026-summary.xlsx"]
    book = openpyxl.load_workbook(files["xlsx"])
    sheet = book.worksheets[0]
    assert "2026年集采药品“三进”行动执行情况" in str(sheet["A1"].value)
    assert tuple(c.value for c in sheet[2]) == HEADER and all(c.font.b for c in sheet[2])
    total = [c.value for c in sheet[sheet.max_row]]
    assert total[0] == "宁夏回族自治区（合计）" and total[1:4] == [8, 3, 0.375] and total[8] == 92.5
    assert sheet.cell(sheet.max_row, 4).number_format == "0.0%" and sheet.cell(sheet.max_row, 9).number_format == "#,##0.00"
    assert sheet.freeze_panes == "B3" and sheet.auto_filter.ref == f"A2:N{sheet.max_row}"
    assert sheet.page_setup.orientation == "landscape" and sheet.print_title_rows == "$2:$2"
    html = files["html"].read_text("utf-8")
    assert "宁夏回族自治区（合计）" in html and "92.50" in html and "37.5%" in html and "2026-06-01 版" in html
