"""Counting the year-end summary (执行情况) of a program, per district, city and in total.

A handful of GROUP BY statements, each by district (purchases by district and drug, so varieties can be counted
distinct per city and in total): the rows that reach Python are at most districts × drugs. Per district:
- designated / covered / 覆盖率: coverage on 31 December against the register version of that day
  (tasks/reports/coverage.py); before any register, the program's applicants;
- participants (年末): institutions whose batch ran by the year's end and had not left by then; 年内新增: those
  whose first join fell in the year (the quarterly table's rule, tasks/reports/quarterly.py);
- orders, varieties, amount: purchase orders of this program placed in the year (Shanghai days), by the
  institution's district; varieties are distinct drugs (药品统一编码);
- violations: found in the year (detected_on), and open at the year's end (found by then, not closed by then),
  by the violation's district; an enterprise's or a product's have none (their own row);
- enforcement: ladders opened in the year, and of those the ones cured and the ones that reached suspension or
  disqualification (their state when the summary is made).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, case, func, or_, select
from sqlmodel import Session

from core.bulk import table_of
from models.clock import SHANGHAI
from models.enforcement import EnforcementCase, LadderState
from models.enrollment import Application, Batch, Institution
from models.operations import PurchaseOrder, Violation
from models.summary import NO_DISTRICT, SummaryRow, arrange, year_bounds
from tasks.programs import get_program
from tasks.reports.coverage import coverage
from tasks.reports.quarterly import JOINED

SEVERE = (LadderState.SUSPENDED, LadderState.DISQUALIFICATION_DUE, LadderState.DISQUALIFIED)


@dataclass(frozen=True)
class YearSummary:
    slug: str
    name: str
    region: str
    year: int
    rows: list[SummaryRow]
    register_as_of: str | None  # the register version divided by (None: applicants instead)


def _start(day: Any) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def _participants(session: Session, program_id: int, year: int) -> dict[str, tuple[int, int]]:
    """Per district: institutions taking part at the year's end, and those that first joined in the year."""
    app, batch, inst = table_of(Application), table_of(Batch), table_of(Institution)
    first, last = year_bounds(year)
    ends = _start(last + timedelta(days=1))
    joined = (select(app.c.institution_id, func.min(batch.c.running_at).label("joined_at"),
                     func.max(case((or_(app.c.left_on.is_(None), app.c.left_on > last), 1), else_=0)).label("staying"))
              .join(batch, batch.c.id == app.c.batch_id)
              .where(app.c.program_id == program_id, app.c.state.in_(JOINED), batch.c.running_at.is_not(None),
                     batch.c.running_at < ends)
              .group_by(app.c.institution_id).subquery())
    rows = session.execute(select(inst.c.district, func.sum(joined.c.staying),
                                  func.sum(case((joined.c.joined_at >= _start(first), 1), else_=0)))
                           .join(inst, inst.c.id == joined.c.institution_id).group_by(inst.c.district)).all()
    return {d: (int(s or 0), int(n or 0)) for d, s, n in rows}


def _purchases(session: Session, program_id: int, year: int) -> dict[str, tuple[int, Decimal, frozenset[int]]]:
    """Per district: orders placed in the year, their amount and the drugs bought (by district and drug)."""
    order, inst = table_of(PurchaseOrder), table_of(Institution)
    first, last = year_bounds(year)
    rows = session.execute(
        select(inst.c.district, order.c.product_id, func.count(), func.sum(order.c.amount))
        .join(inst, inst.c.id == order.c.institution_id)
        .where(order.c.program_id == program_id, order.c.ordered_at >= _start(first),
               order.c.ordered_at < _start(last + timedelta(days=1)))
        .group_by(inst.c.district, order.c.product_id)).all()
    out: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal("0.00"), set()])
    for district, product, n, amount in rows:
        cell = out[district]
        cell[0] += int(n)
        cell[1] += Decimal(amount or 0)
        cell[2].add(int(product))
    return {d: (n, a.quantize(Decimal("0.01")), frozenset(p)) for d, (n, a, p) in out.items()}


def _violations(session: Session, program_id: int, year: int) -> dict[str | None, tuple[int, int]]:
    """Per district (None: an enterprise's or a product's): found in the year, open at its end."""
    v = table_of(Violation)
    first, last = year_bounds(year)
    rows = session.execute(
        select(v.c.district,
               func.sum(case((v.c.detected_on >= first, 1), else_=0)),
               func.sum(case((or_(v.c.closed_on.is_(None), v.c.closed_on > last), 1), else_=0)))
        .where(v.c.program_id == program_id, v.c.detected_on <= last).group_by(v.c.district)).all()
    return {d: (int(f or 0), int(o or 0)) for d, f, o in rows}


def _cases(session: Session, program_id: int, year: int) -> dict[str | None, tuple[int, int, int]]:
    """Per district: enforcement ladders opened in the year; of them cured, and suspended or disqualified."""
    c = table_of(EnforcementCase)
    first, last = year_bounds(year)
    rows = session.execute(
        select(c.c.district, func.count(),
               func.sum(case((c.c.state == LadderState.CURED.value, 1), else_=0)),
               func.sum(case((c.c.state.in_([s.value for s in SEVERE]), 1), else_=0)))
        .where(c.c.program_id == program_id, c.c.opened_at >= _start(first),
               c.c.opened_at < _start(last + timedelta(days=1)))
        .group_by(c.c.district)).all()
    return {d: (int(n), int(cu or 0), int(s or 0)) for d, n, cu, s in rows}


def year_summary(engine: Engine, slug: str, year: int) -> YearSummary:
    """The program's summary of `year`, a row per district, a subtotal per city (where districts name one), the total."""
    _, last = year_bounds(year)
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        cover = coverage(session, program.id, last)
        participants = _participants(session, program.id, year)
        purchases = _purchases(session, program.id, year)
        violations = _violations(session, program.id, year)
        cases = _cases(session, program.id, year)
    designated = {r.key: (r.covered, r.total) for r in cover.by_district}
    rows: dict[str, SummaryRow] = {}
    for d in defn.districts:
        name = d.name
        covered, total = designated.get(name, (0, 0))
        staying, joined = participants.get(name, (0, 0))
        orders, amount, products = purchases.get(name, (0, Decimal("0.00"), frozenset()))
        found, still_open = violations.get(name, (0, 0))
        opened, cured, severe = cases.get(name, (0, 0, 0))
        rows[name] = SummaryRow(name, "district", total, covered, staying, joined, orders, amount, found, still_open,
                                opened, cured, severe, products)
    if None in violations or None in cases:  # an enterprise's or a product's: counted in the total, on a row of its own
        found, still_open = violations.get(None, (0, 0))
        opened, cured, severe = cases.get(None, (0, 0, 0))
        rows[NO_DISTRICT] = replace(SummaryRow(NO_DISTRICT, "district"), violations_found=found,
                                    violations_open=still_open, cases_opened=opened, cases_cured=cured,
                                    cases_severe=severe)
    ordered = arrange([(d.name, d.city) for d in defn.districts], rows, defn.region)
    return YearSummary(slug, program.name, defn.region, year, ordered,
                       cover.register_as_of.isoformat() if cover.register_as_of else None)


__all__ = ["YearSummary", "year_summary"]
