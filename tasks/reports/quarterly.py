"""Counting the quarterly statistics table (seed 001 att. 3) of a program, or of one city of it.

A few GROUP BY statements per table (by column, and by column and drug for the varieties): the rows that reach
Python are at most columns × drugs. The rules (which kind is which column, what 新增 and 累计 mean) are
models/quarterly.py's and the README's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, case, func, or_, select
from sqlmodel import Session

from core.bulk import table_of
from models.enrollment import Application, Batch, Institution
from models.operations import PurchaseOrder
from models.quarterly import COLUMN_OF_KIND, ColumnCounts, Quarter, QuarterColumn, QuarterlyTable
from models.quarterly import table_of as quarterly_table_of
from models.states import ApplicationState
from tasks.programs import get_program

# Applications whose institution took part once its batch ran (a rejected or withdrawn one never did).
JOINED = (ApplicationState.APPROVED, ApplicationState.RUNNING, ApplicationState.SUSPENDED,
          ApplicationState.DISQUALIFIED, ApplicationState.EXITED)


def _column(kind: Any) -> Any:
    return case({k: c.value for k, c in COLUMN_OF_KIND.items()}, value=kind)


def _institutions(session: Session, program_id: int, quarter: Quarter, where: list[Any]) -> dict[str, tuple[int, int]]:
    """Per column: institutions that first joined in the quarter, and those taking part at its end."""
    app, batch, inst = table_of(Application), table_of(Batch), table_of(Institution)
    last = quarter.last_day
    joined = (select(app.c.institution_id, func.min(batch.c.running_at).label("joined_at"),
                     func.max(case((or_(app.c.left_on.is_(None), app.c.left_on > last), 1), else_=0)).label("staying"))
              .join(batch, batch.c.id == app.c.batch_id)
              .where(app.c.program_id == program_id, app.c.state.in_(JOINED), batch.c.running_at.is_not(None),
                     batch.c.running_at < quarter.ends)
              .group_by(app.c.institution_id).subquery())
    column = _column(inst.c.kind).label("col")
    per = (select(column, inst.c.id.label("id")).where(*where).subquery())
    rows = session.execute(
        select(per.c.col, func.sum(case((joined.c.joined_at >= quarter.starts, 1), else_=0)),
               func.sum(joined.c.staying))
        .join_from(joined, per, per.c.id == joined.c.institution_id).group_by(per.c.col)).all()
    return {c: (int(n or 0), int(t or 0)) for c, n, t in rows}


def _orders(program_id: int, quarter: Quarter, where: list[Any]) -> Any:
    order, inst = table_of(PurchaseOrder), table_of(Institution)
    return (select(_column(inst.c.kind).label("col"), order.c.product_id, order.c.ordered_at, order.c.amount)
            .join(inst, inst.c.id == order.c.institution_id)
            .where(order.c.program_id == program_id, order.c.ordered_at < quarter.ends, *where).subquery())


def _varieties(session: Session, orders: Any, quarter: Quarter, by_column: bool) -> dict[str | None, tuple[int, int]]:
    """Per column (or over all, key None): drugs first bought in the quarter, and drugs bought by its end."""
    keys = [orders.c.col] if by_column else []
    first = (select(*keys, orders.c.product_id, func.min(orders.c.ordered_at).label("first_at"))
             .group_by(*keys, orders.c.product_id).subquery())
    outer_keys = [first.c.col] if by_column else []
    rows = session.execute(select(*outer_keys, func.sum(case((first.c.first_at >= quarter.starts, 1), else_=0)),
                                  func.count()).group_by(*outer_keys)).all()
    if not by_column:
        return {None: (int(rows[0][0] or 0), int(rows[0][1]))} if rows else {}
    return {c: (int(n or 0), int(t)) for c, n, t in rows}


def _amounts(session: Session, orders: Any, quarter: Quarter) -> dict[str, tuple[Decimal, Decimal]]:
    rows = session.execute(select(orders.c.col, func.sum(case((orders.c.ordered_at >= quarter.starts, orders.c.amount),
                                                              else_=0)), func.sum(orders.c.amount))
                           .group_by(orders.c.col)).all()
    return {c: (Decimal(n or 0).quantize(Decimal("0.01")), Decimal(t or 0).quantize(Decimal("0.01"))) for c, n, t in rows}


def quarterly_table(session: Session, program_id: int, quarter: Quarter, scope: str,
                    districts: Sequence[str] | None = None) -> QuarterlyTable:
    """The attachment's table for the program's institutions (of `districts` only, when given)."""
    inst = table_of(Institution)
    where = [inst.c.district.in_(list(districts))] if districts is not None else []
    institutions = _institutions(session, program_id, quarter, where)
    orders = _orders(program_id, quarter, where)
    varieties = _varieties(session, orders, quarter, by_column=True)
    amounts = _amounts(session, orders, quarter)
    zero = Decimal("0.00")
    per_column = {c: ColumnCounts(*institutions.get(c.value, (0, 0)), *varieties.get(c.value, (0, 0)),
                                  *amounts.get(c.value, (zero, zero))) for c in QuarterColumn}
    distinct = ColumnCounts(0, 0, *_varieties(session, orders, quarter, by_column=False).get(None, (0, 0)))
    return quarterly_table_of(scope, quarter, per_column, distinct)


@dataclass(frozen=True)
class QuarterlyStatistics:
    """A program's tables of one quarter: one per city where the program's districts name their city, then the total."""

    slug: str
    name: str
    region: str
    quarter: Quarter
    tables: list[QuarterlyTable]


def quarterly_statistics(engine: Engine, slug: str, quarter: Quarter) -> QuarterlyStatistics:
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        cities: dict[str, list[str]] = {}
        for d in defn.districts:
            if d.city:
                cities.setdefault(d.city, []).append(d.name)
        tables = [quarterly_table(session, program.id, quarter, city, names) for city, names in cities.items()]
        tables.append(quarterly_table(session, program.id, quarter, f"{defn.region}（合计）" if cities else defn.region))
    return QuarterlyStatistics(slug, program.name, defn.region, quarter, tables)


__all__ = ["JOINED", "QuarterlyStatistics", "quarterly_statistics", "quarterly_table"]
