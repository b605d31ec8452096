"""Portable SQL pieces for the compliance pass: JSON evidence, exact money, elapsed seconds, kind categories.

SQLite stores NUMERIC as floating point, so money is compared in integer cents (`ROUND(x * 100)`) and shares in
basis points; elapsed time is whole seconds on SQLite (`strftime('%s')`) and exact on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Connection, Integer, String, Table, case, cast, func, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from core.bulk import BULK_ANALYZE_ROWS
from models.states import InstitutionCategory, InstitutionKind, category_of


class JsonObject(FunctionElement[Any]):
    """`json_object(k, v, …)` on SQLite, `json_build_object(k, v, …)` on PostgreSQL."""

    type = JSON()
    inherit_cache = True
    name = "json_obj"


@compiles(JsonObject, "sqlite")
def _json_obj_sqlite(element: JsonObject, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(JsonObject, "postgresql")
def _json_obj_pg(element: JsonObject, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


def evidence(fields: Mapping[str, ColumnElement[Any] | Any]) -> JsonObject:
    """A JSON object of named SQL values (dates and times as text, so both databases show them alike)."""
    args: list[Any] = []
    for key, value in fields.items():
        args.append(literal(key))
        args.append(value)
    return JsonObject(*args)


class SecondsBetween(FunctionElement[int]):
    """Seconds from `a` to `b` (timestamps)."""

    type = Integer()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "sqlite")
def _secs_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return (f"(CAST(strftime('%s', {compiler.process(b, **kw)}) AS INTEGER) - "
            f"CAST(strftime('%s', {compiler.process(a, **kw)}) AS INTEGER))")


@compiles(SecondsBetween, "postgresql")
def _secs_pg(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(b, **kw)} - {compiler.process(a, **kw)}))"


class ElapsedOver(FunctionElement[bool]):
    """More than `seconds` from `a` to `b` (timestamps; NULL if either is).

    PostgreSQL compares the interval `b - a` with the limit as an interval: `EXTRACT(EPOCH …)` is numeric there
    (PostgreSQL 14 on), built and compared per row — the late orders' filter runs over every order of a program,
    twice a pass. Intervals of a timestamp difference compare by their total microseconds: the same rows.
    """

    type = Boolean()
    inherit_cache = True
    name = "elapsed_over"


@compiles(ElapsedOver, "sqlite")
def _over_sqlite(element: ElapsedOver, compiler: SQLCompiler, **kw: Any) -> str:
    a, b, seconds = list(element.clauses)
    return f"({compiler.process(SecondsBetween(a, b), **kw)} > {compiler.process(seconds, **kw)})"


@compiles(ElapsedOver, "postgresql")
def _over_pg(element: ElapsedOver, compiler: SQLCompiler, **kw: Any) -> str:
    a, b, seconds = list(element.clauses)
    return (f"(({compiler.process(b, **kw)} - {compiler.process(a, **kw)}) > "
            f"make_interval(secs => {compiler.process(seconds, **kw)}))")


class MoneyAbove(FunctionElement[bool]):
    """Money `a` above money `b` (both stored as MONEY, NUMERIC(14, 2)), compared exactly.

    SQLite stores NUMERIC as floating point: compared in whole cents (`cents`). PostgreSQL's NUMERIC(14, 2) is
    exact and in whole cents as stored, so the columns compare as they are: the supply-price rule compared every
    order line's price in cents, a multiplication, a rounding and a cast per side per row (1,000,000 rows at
    1,000,000 lines: 0.42 → 0.19 s for the join alone, psql, same base, twice each).
    """

    type = Boolean()
    inherit_cache = True
    name = "money_above"


@compiles(MoneyAbove, "sqlite")
def _money_above_sqlite(element: MoneyAbove, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"({compiler.process(cents(a), **kw)} > {compiler.process(cents(b), **kw)})"


@compiles(MoneyAbove, "postgresql")
def _money_above_pg(element: MoneyAbove, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"({compiler.process(a, **kw)} > {compiler.process(b, **kw)})"


def cents(value: ColumnElement[Any]) -> ColumnElement[int]:
    """Exact money in integer cents on both databases."""
    return cast(func.round(value * 100), BigInteger)


def basis_points(share: Decimal) -> int:
    """A share as integer basis points (0.15 → 1500); finer shares than 0.01 % are refused."""
    bp = share * 10000
    if bp != bp.to_integral_value():
        raise ValueError(f"share {share} is finer than 0.01 %")
    return int(bp)


def kinds_of(category: InstitutionCategory) -> list[str]:
    """The institution kinds of a policy category, as stored."""
    return [k.value for k in InstitutionKind if category_of(k) is category]


def by_date(column: ColumnElement[Any], mapping: Mapping[date, Any], type_: Any = None) -> ColumnElement[Any]:
    """`CASE column WHEN d1 THEN v1 … END`: a Python-computed value per distinct date (calendar-dependent dues)."""
    if not mapping:
        return literal(None, type_)
    return case(*((column == k, literal(v, type_)) for k, v in mapping.items()), else_=literal(None, type_))


def text_of(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A value as text for evidence and keys."""
    return cast(value, String)


def refresh_statistics(conn: Connection, rows_written: int, table: Table, *, later: bool = False) -> None:
    """ANALYZE `table` on PostgreSQL once the pass has written enough rows into it (counted per connection).

    The pass writes payables and violations in one transaction and then reads them in the next statements. Planned
    from statistics taken while `violation` was empty, PostgreSQL probed it by sequential scan once per finding:
    a first pass over 100,000 order lines spent 600 s in three violation inserts. SQLite needs nothing.
    `later`: only count the rows; the statement that joins the table calls `flush_statistics` first.
    """
    if conn.dialect.name != "postgresql":
        return
    pending: dict[str, int] = conn.info.setdefault("compliance_unanalyzed", {})
    pending[table.name] = pending.get(table.name, 0) + rows_written
    if not later:
        flush_statistics(conn, table)


def flush_statistics(conn: Connection, table: Table) -> None:
    """ANALYZE `table` now if enough rows were written into it since its last ANALYZE (PostgreSQL), unless the
    connection defers it (`defer_statistics`)."""
    if conn.dialect.name != "postgresql" or table.name in conn.info.get(_DEFERRED, ()):
        return
    pending: dict[str, int] = conn.info.setdefault("compliance_unanalyzed", {})
    if pending.get(table.name, 0) >= BULK_ANALYZE_ROWS:
        conn.exec_driver_sql(f'ANALYZE "{table.name}"')
        pending[table.name] = 0


_DEFERRED = "compliance_deferred_analyze"


def defer_statistics(conn: Connection, table: Table, deferred: bool = True) -> None:
    """Keep this connection from analyzing `table` (only counting its rows) until called with `deferred=False`.

    ANALYZE takes a lock that a second ANALYZE of the table waits for until the first one's transaction ends:
    the compliance pass's coordinator, which commits only after its worker connections have, analyzes the
    shared `violation` table once they have ended (tasks/compliance/compliance_pass.py).
    """
    names: set[str] = conn.info.setdefault(_DEFERRED, set())
    if deferred:
        names.add(table.name)
    else:
        names.discard(table.name)


@contextmanager
def merge_joins(conn: Connection, wanted: bool = True) -> Iterator[None]:
    """PostgreSQL plans the statements inside without hash joins (for the rest of the pass, as set before).

    For statements whose inputs all come in order-id order by their keys (orders, deliveries, settlements, the
    pass's COMPLETION): merge joins stream them, where hash joins built a table of ~1,000,000 rows per join.
    """
    merge = wanted and conn.dialect.name == "postgresql"
    if merge:
        conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
    try:
        yield
    finally:
        if merge:
            conn.exec_driver_sql("SET LOCAL enable_hashjoin TO DEFAULT")
