"""Bulk writes shared by every task: inserts (optionally skipping natural-key conflicts), audit rows,
and the SQL building blocks that let the database write rows derived from other rows.

At 100,000 rows the cost is in Python, not in the database: binding and type-processing every value,
and on PostgreSQL psycopg's executemany, which sends one statement per row (with RETURNING it cost
19 s per 100,000 outbox rows). So bulk writes here are single statements:
- rows computed in Python reach PostgreSQL as one JSON document (`json_populate_recordset`); SQLite's
  executemany is already fast and its summed rowcount is exact;
- rows derived from other rows (an audit row per moved application, a notice per institution) are
  `INSERT … SELECT`, with the values that are constant per statement (actor, action, states) bound once;
- a set of ids with per-id values (a gate decision) is one JSON parameter read as a table, never an
  IN list, so PostgreSQL's 65,535 bind-parameter limit never applies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, TypeVar
from typing import cast as typing_cast

from sqlalchemy import (
    JSON,
    ColumnDefault,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import BindParameter, ColumnElement, Label, Null
from sqlalchemy.sql.selectable import Select, Subquery
from sqlalchemy.types import TypeEngine
from sqlmodel import Session, SQLModel

from core.audit_chain import WRITTEN, advance_head, mark_audit_written, sealing_enabled, take_places, take_tail
from models.audit import (
    CONTENT_COLUMNS,
    AuditEvent,
    AuditLink,
    Same,
    audit_row,
    chain_links,
    chain_of,
    link_seals,
)
from models.base import AwareDateTime
from models.states import Role
from models.transitions import AuditRecord

AUDIT_COLUMNS = ("program_id", "entity", "entity_id", "action", "from_state", "to_state", "actor", "role", "reason",
                 "data", "at")
AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
LINK_TABLE: Table = AuditLink.__table__  # type: ignore[attr-defined]


K = TypeVar("K")  # what an id list holds: ids, codes


def table_of(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


def dialect_name(session: Session) -> str:
    name = session.get_bind().dialect.name
    if name not in ("postgresql", "sqlite"):  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {name}")
    return name


def _insert(session: Session, t: Table, conflict_key: Sequence[str] | None) -> Any:
    stmt: Any = pg_insert(t) if dialect_name(session) == "postgresql" else sqlite_insert(t)
    # SQLAlchemy keeps an INSERT's rowcount only when asked (it always does for UPDATE and DELETE).
    stmt = stmt.execution_options(preserve_rowcount=True)
    return stmt if conflict_key is None else stmt.on_conflict_do_nothing(index_elements=list(conflict_key))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot pass {type(value).__name__} to the database as JSON")


def _memoized(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, computed once per distinct value: 100,000 rows share one `now`, a few states."""
    seen: dict[tuple[type, Any], Any] = {}

    def once(value: Any) -> Any:
        try:
            key = (type(value), value)
            if key not in seen:
                seen[key] = process(value)
            return seen[key]
        except TypeError:  # unhashable (a JSON document): every row its own
            return process(value)

    return once


def _prepared(session: Session, t: Table, rows: Sequence[Mapping[str, Any]],
              ) -> tuple[list[str], list[list[Any]]] | None:
    """The rows' columns and values as the database driver takes them, bound by the columns' own types.

    This is what an executemany does per row and per value, done once per distinct value instead
    (`_memoized`). On PostgreSQL only the product's own types are applied (aware UTC times, enum
    values): psycopg, or the JSON document, takes the rest as they are. Scalar column defaults fill
    the columns the rows leave out. None for what this cannot do the same way (a default that is not
    a constant; on PostgreSQL, None in a JSON column, which SQLAlchemy stores as JSON null).
    """
    dialect = session.get_bind().dialect
    postgres = dialect.name == "postgresql"
    names = list(rows[0])
    defaults: dict[str, Any] = {}
    for c in t.columns:
        if c.name not in rows[0] and c.default is not None:
            if not c.default.is_scalar:
                return None
            defaults[c.name] = c.default.arg  # type: ignore[attr-defined]
    processors: list[Callable[[Any], Any] | None] = []
    for name in [*names, *defaults]:
        typ = t.c[name].type
        process: Callable[[Any], Any] | None
        if postgres:
            if isinstance(typ, JSON) and name in rows[0] and any(row[name] is None for row in rows):
                return None
            own = (isinstance(typ, TypeDecorator)
                   and type(typ).process_bind_param is not TypeDecorator.process_bind_param)
            process = partial(typ.process_bind_param, dialect=dialect) if own else None  # type: ignore[attr-defined]
        else:
            process = typ.dialect_impl(dialect).bind_processor(dialect)
        processors.append(None if process is None else _memoized(process))
    constants = [defaults[name] for name in defaults]
    values = [[row[n] for n in names] + constants for row in rows]
    for i, process in enumerate(processors):
        if process is not None:
            for v in values:
                v[i] = process(v[i])
    return [*names, *defaults], values


def _insert_prepared(session: Session, t: Table, columns: list[str], values: list[list[Any]],
                     conflict_key: Sequence[str] | None) -> int:
    """One statement on PostgreSQL (a JSON document read by `json_populate_recordset` as rows of `t`),
    one driver-level executemany on SQLite (whose summed rowcount is exact)."""
    quote = session.get_bind().dialect.identifier_preparer.quote
    if t.name == "auditevent":
        mark_audit_written(session.connection())  # raw SQL: no statement event sees it
    target = ", ".join(quote(c) for c in columns)
    conflict = "" if conflict_key is None else f" ON CONFLICT ({', '.join(map(quote, conflict_key))}) DO NOTHING"
    options = {"preserve_rowcount": True}  # SQLAlchemy keeps an INSERT's rowcount only when asked
    if dialect_name(session) == "postgresql":
        # json.dumps as SQLAlchemy's JSON type writes it, so a nested document's text is the same either way.
        doc = json.dumps([dict(zip(columns, v, strict=True)) for v in values], default=_json_value)
        sql = (f"INSERT INTO {quote(t.name)} ({target}) SELECT {target} "
               f"FROM json_populate_recordset(NULL::{quote(t.name)}, CAST(%(doc)s AS json)){conflict}")
        return int(session.connection().exec_driver_sql(sql, {"doc": doc}, execution_options=options).rowcount)
    sql = f"INSERT INTO {quote(t.name)} ({target}) VALUES ({', '.join('?' for _ in columns)}){conflict}"
    return int(session.connection().exec_driver_sql(sql, [tuple(v) for v in values],
                                                    execution_options=options).rowcount)


def insert_rows(session: Session, table: type[SQLModel] | Table, rows: Sequence[Mapping[str, Any]],
                conflict_key: Sequence[str] | None = None) -> int:
    """Insert rows (all with the same keys) in one go; with `conflict_key`, skip rows whose key exists.

    Returns how many rows were really inserted. Core, not the ORM: nothing enters the session.
    """
    if not rows:
        return 0
    t = table if isinstance(table, Table) else table_of(table)
    prepared = _prepared(session, t, rows)
    if prepared is not None:
        return _insert_prepared(session, t, *prepared, conflict_key)
    stmt = _insert(session, t, conflict_key)
    if conflict_key is None:
        session.connection().execute(stmt, list(rows))
        return len(rows)
    if dialect_name(session) == "sqlite":
        return int(session.connection().execute(stmt, list(rows)).rowcount)
    return len(session.connection().execute(stmt.returning(t.c.id), list(rows)).all())


def insert_columns(session: Session, t: Table, columns: Mapping[str, Sequence[Any]],
                 constants: Mapping[str, Any] | None = None, *, stored: Mapping[str, Sequence[Any]] | None = None
                 ) -> None:
    """Insert rows given column by column (plus values shared by every row), in the session's transaction.

    SQLAlchemy's executemany processes every parameter of every row in Python: 1.7 s of CPU for
    100,000 applications on SQLite against 0.6 s for the driver's own executemany, and on
    PostgreSQL 2.6 s of client CPU against 0.3 s for COPY. Values still go through each column type's bind
    processor (enums, aware times, JSON), once per column or once for a shared value; columns left
    out get their scalar Python defaults, as SQLAlchemy's insert would have given them.
    ``stored``: columns whose values are already what the database stores (an enum's value, the
    text ``json.dumps`` gives for a JSON column), because the caller knows them cheaper: most rows
    share one, or it has a fixed shape.
    """
    if t.name == "auditevent" and columns and sealing_enabled():
        n = len(next(iter({**columns, **(stored or {})}.values())))
        shared = dict(constants or {})
        given = {**columns, **(stored or {})}
        # One link, so its rows must share what the audit page filters on (see `_alike_runs`): the import's rows do
        # (constants). Rows that differ go in unsealed, left to the commit.
        alike = all(name in shared or len(set(given.get(name, ()))) <= 1 for name in LINK_SHARED)
        if n >= PRESEAL_ROWS and "program_id" in shared and alike:
            per_row = {**{k: list(v) for k, v in columns.items()}, **{k: list(v) for k, v in (stored or {}).items()}}
            _write_sealed(session, chain_of(shared.pop("program_id")), n, per_row, shared, set(stored or ()),
                          program_id=constants["program_id"] if constants else None)
            return
    _insert_columns(session, t, columns, constants, stored=stored)


def _insert_columns(session: Session, t: Table, columns: Mapping[str, Sequence[Any]],
                    constants: Mapping[str, Any] | None = None, *, stored: Mapping[str, Sequence[Any]] | None = None,
                    stored_constants: Mapping[str, Any] | None = None, sealed: bool = False) -> None:
    """`stored_constants`: values every row shares that are already what the database stores (as `stored`)."""
    columns = {**columns, **(stored or {})}
    raw = set(stored or ())
    if not columns:
        raise ValueError("no per-row column: the rows cannot be counted")
    conn = session.connection()
    if t.name == "auditevent" and not sealed:
        mark_audit_written(conn)  # COPY and raw SQL: no statement event sees them
    dialect = conn.dialect
    shared = dict(constants or {})
    fixed = dict(stored_constants or {})
    for c in t.columns:
        default = c.default
        if (c.name not in columns and c.name not in shared and c.name not in fixed and isinstance(default, ColumnDefault)
                and default.is_scalar):
            shared[c.name] = default.arg

    def processor(name: str) -> Callable[[Any], Any] | None:
        return typing_cast(Callable[[Any], Any] | None,
                           t.c[name].type.dialect_impl(dialect).bind_processor(dialect))

    lists: list[Iterable[Any]] = []
    for name, values in columns.items():
        process = None if name in raw else processor(name)
        lists.append(map(process, values) if process is not None else values)
    processed: dict[str, Any] = {}
    for name, value in shared.items():
        process = processor(name)
        processed[name] = process(value) if process is not None else value
    processed.update(fixed)
    prep = dialect.identifier_preparer

    def into(names: Iterable[str]) -> str:
        return f"{prep.format_table(t)} ({', '.join(prep.quote(n) for n in names)})"

    if dialect.name == "postgresql":
        rows = zip(*lists, *map(repeat, processed.values()), strict=False)  # repeat()s are endless, the columns not
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {into([*columns, *processed])} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elif dialect.name == "sqlite":
        # A value every row shares is written into the statement once instead of bound in every row: the driver
        # binds each `?` of each row, ≈ 0.014 s per shared column per 100,000 rows (an audit write shares ten).
        literals = {name: _sqlite_literal(value) for name, value in processed.items()}
        bound = [name for name, literal in literals.items() if literal is None]
        written = {name: literal for name, literal in literals.items() if literal is not None}
        if params := list(zip(*lists, *(repeat(processed[name]) for name in bound), strict=False)):
            slots = ", ".join(["?"] * (len(columns) + len(bound)) + list(written.values()))
            conn.exec_driver_sql(f"INSERT INTO {into([*columns, *bound, *written])} VALUES ({slots})", params)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect.name}")


def _sqlite_literal(value: Any) -> str | None:
    """`value` (as the column's bind processor gives it) as SQLite SQL text that stores exactly what binding it
    would — NULL, an integer, a string in quotes — or None to bind it (a float, bytes, a string holding NUL, which
    a statement's text cannot). A literal and a bound value get the same column affinity."""
    if value is None:
        return "NULL"
    if type(value) is int and -(1 << 63) <= value < 1 << 63:  # beyond 64 bits SQLite reads a literal as REAL;
        return int.__repr__(value)  # bound, the driver refuses it (OverflowError), as before
    if type(value) is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


def insert_ignoring_conflicts(
    session: Session, table: type[SQLModel], rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> int:
    """Insert rows, skipping those whose `key` already exists; returns how many were new.

    This is how a re-run writes nothing twice: the natural key is a unique constraint and a
    conflicting row is a no-op on both SQLite and PostgreSQL.
    """
    return insert_rows(session, table, rows, conflict_key=key)


def insert_from_select(session: Session, table: type[SQLModel] | Table, columns: Sequence[str], query: Select[Any],
                       conflict_key: Sequence[str] | None = None) -> int:
    """`INSERT INTO table (columns) SELECT …`, optionally skipping key conflicts; how many rows were new.

    The query must have a WHERE clause: SQLite cannot otherwise tell ON CONFLICT from a join's ON.
    """
    t = table if isinstance(table, Table) else table_of(table)
    stmt = _insert(session, t, conflict_key)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # PostgreSQL's default 4 MB of sort memory sent an ordered 100,000-row source (the import's
        # receipts, ~40 MB) through an on-disk merge. 64 MB per sort or hash, for this transaction only
        # (SET LOCAL), for the few bulk writers that run at a time.
        connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    # Not through session.execute: the ORM would treat a SELECT of columns it knows as its own.
    return int(connection.execute(stmt.from_select(list(columns), query)).rowcount)


# From this many rows on, a bulk write of audit rows seals them as it writes them (core/audit_chain.py); fewer are
# sealed by the commit. Either way the chain is the same; the threshold only keeps a transaction that writes a
# row or two from holding its chain's lock longer than its commit.
PRESEAL_ROWS = 500

def audit_forms(dialect_name: str, processors: Mapping[str, Callable[[Any], Any] | None], name: str,
                value: Any) -> tuple[Any, Any]:
    """(what is inserted, what the hash covers) for one value of an audit column.

    What the hash covers is the value as the database stores it and `verify_chain` reads it back: a string, an
    int or None; the JSON document's text; the time as UTC text (SQLite's own stored form; PostgreSQL formats it
    so in SQL), which on PostgreSQL is inserted as the aware time itself so no session time zone applies.
    """
    if value is None:
        return None, None
    if name == "data":
        doc = json.dumps(value)  # SQLAlchemy's JSON serializer: the text SQLite stores and PostgreSQL's json keeps
        return doc, doc
    if name == "at":
        if dialect_name == "postgresql":
            utc = value.astimezone(UTC)
            return utc, utc.strftime("%Y-%m-%d %H:%M:%S.%f")
        process = processors["at"]
        stored = process(value) if process is not None else value
        return stored, stored
    if name == "role":
        value = Role(value)
    if isinstance(value, Enum):
        value = value.value
    return value, value


_STORED_AS_IS = {type(None), str, int}  # values a column stores and the hash covers unchanged (not bool: 1 == True)


def _write_sealed(session: Session, chain: int, n: int, per_row: dict[str, list[Any]], shared: Mapping[str, Any],
                  stored: set[str], *, program_id: int | None, linked: bool = True) -> None:
    """Insert `n` audit rows of one chain already sealed: places, ids and hashes computed before the insert.

    `per_row` columns in `stored` are already the stored values (the JSON text of `data`); every other value
    goes through `audit_forms`, once per distinct shared value. `shared` holds the values every row has.
    `linked`: one format-3 link (the rows must share entity, actor and instant, see `_alike_runs`); otherwise a
    format-1 hash per row (`chain_links`), for rows too unlike to link and too many to leave to the commit.
    """
    conn = session.connection()
    dialect = conn.dialect
    processors = {"at": AUDIT_TABLE.c.at.type.dialect_impl(dialect).bind_processor(dialect)}
    shared = {**{c: None for c in CONTENT_COLUMNS if c not in per_row and c != "id"}, **shared,
              "program_id": program_id}
    insert_values: dict[str, list[Any]] = {}
    hashed: dict[str, Sequence[Any] | Same] = {}
    for name, values in per_row.items():
        if name in stored or (name not in ("data", "at", "role")
                              and set(map(type, values)) <= _STORED_AS_IS):
            insert_values[name] = hashed[name] = values
            continue
        memo: dict[Any, tuple[Any, Any]] = {}
        forms = []
        for v in values:
            key = (type(v), v) if not isinstance(v, dict | list) else None
            if key is None or key not in memo:
                form = audit_forms(dialect.name, processors, name, v)
                if key is None:
                    forms.append(form)
                    continue
                memo[key] = form
            forms.append(memo[key])
        insert_values[name] = [f[0] for f in forms]
        hashed[name] = [f[1] for f in forms]
    fixed: dict[str, Any] = {"chain": chain}  # what every row stores alike: written once, not per row (SQLite)
    for name, value in shared.items():
        fixed[name], as_hashed = audit_forms(dialect.name, processors, name, value)
        hashed[name] = Same(as_hashed)
    places = take_places(conn, chain, n)
    hashed["id"] = places.ids
    insert_values.update(id=places.ids, chain_seq=list(range(places.after_seq + 1, places.after_seq + n + 1)))
    if not linked:  # format 1: each row's own hash, no link row
        hashes = chain_links(places.previous, places.after_seq, [hashed[c] for c in CONTENT_COLUMNS])
        _insert_columns(session, AUDIT_TABLE, {}, stored={**insert_values, "chain_hash": hashes},
                        stored_constants=fixed, sealed=True)
        advance_head(conn, chain, places.after_seq + n, hashes[-1])
        return
    # Format 3, as `_audit_from_select_sealed`: the rows go in with their places and no hash, their link row after.
    link, locators = link_seals(places.previous, places.after_seq + 1, [hashed[c] for c in CONTENT_COLUMNS])
    _insert_columns(session, AUDIT_TABLE, {}, stored=insert_values, stored_constants=fixed, sealed=True)
    conn.execute(insert(LINK_TABLE).values(chain=chain, first_seq=places.after_seq + 1,
                                           last_seq=places.after_seq + n, hash=link, locators=locators))
    advance_head(conn, chain, places.after_seq + n, link)


def write_audit(session: Session, records: Iterable[AuditRecord]) -> int:
    """Audit records computed in Python, in one Core insert (per chain, sealed as written when there are many)."""
    rows = [audit_row(r) for r in records]
    if len(rows) < PRESEAL_ROWS or not sealing_enabled():
        return insert_rows(session, AuditEvent, rows)
    by_chain: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_chain.setdefault(chain_of(row["program_id"]), []).append(row)
    for chain, mine in sorted(by_chain.items()):
        if len(mine) < PRESEAL_ROWS:
            insert_rows(session, AuditEvent, mine)
            continue
        if len({row["program_id"] for row in mine}) != 1:  # chain 0 holds rows with program_id 0 and None alike:
            insert_rows(session, AuditEvent, mine)  # rare, left to the commit
            continue
        loose: list[dict[str, Any]] = []  # consecutive rows of short runs, written together
        for run in [*_alike_runs(mine), []]:  # the empty run writes the last loose rows
            if run and len(run) < PRESEAL_ROWS:
                loose += run
                continue
            if len(loose) >= PRESEAL_ROWS:  # e.g. a clock read per record: a hash each, as written
                _write_sealed(session, chain, len(loose), _audit_columns(loose), {}, set(),
                              program_id=loose[0]["program_id"], linked=False)
            elif loose:  # a handful: left to the commit, or sealed by the next link's `take_places` (chain order)
                insert_rows(session, AuditEvent, loose)
            loose = []
            if run:
                _write_sealed(session, chain, len(run), _audit_columns(run), {}, set(), program_id=run[0]["program_id"])
    return len(rows)


def _audit_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in AUDIT_COLUMNS if name != "program_id"}


LINK_SHARED = ("entity", "actor", "at")  # besides the program (the chain's): what a link's rows all have in common


def _alike_runs(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """`rows` cut into runs of consecutive rows with the same entity, actor and instant, in order.

    Why: the audit page's filter indexes leave out a link's rows (migration 0035) and find them through the link's
    first row, so a link's rows must all match any filter its first row matches, and share its place in the page's
    (at, id) order. Runs, not groups: the trail keeps the order the records were made in. Runs too short to link are
    sealed row by row (format 1): as they are written when they make many rows together, else by the commit.
    """
    run: list[dict[str, Any]] = []
    for row in rows:
        if run and any(row[name] != run[0][name] for name in LINK_SHARED):
            yield run
            run = []
        run.append(row)
    if run:
        yield run


def audit_from_select(session: Session, source: Select[Any], *, entity: str, action: str, from_state: str | None,
                      to_state: str | None, actor: str, role: Role, at: datetime, program_id: int | None,
                      data: Mapping[str, Any] | None = None) -> int:
    """One audit row per row of `source`, written by the database; returns how many.

    `source` selects `entity_id` and `reason`. Everything else is the same for every row of one
    transition, so it is bound once: this is `Machine.apply`'s record, for a whole group at a time.
    """
    if sealing_enabled():
        return _audit_from_select_sealed(session, source, program_id=program_id, shared={
            "entity": entity, "action": action, "from_state": from_state, "to_state": to_state, "actor": actor[:64],
            "role": role, "data": dict(data or {}), "at": at})
    src = source.subquery("moved")
    aud = table_of(AuditEvent)
    query = select(
        literal(program_id, Integer), literal(entity, String), cast(src.c.entity_id, String), literal(action, String),
        literal(from_state, String), literal(to_state, String), literal(actor[:64], String),
        literal(role.value, String), cast(src.c.reason, Text), literal(dict(data or {}), aud.c.data.type),
        literal(at, AwareDateTime()),
    )
    return insert_from_select(session, aud, AUDIT_COLUMNS, query)


def _audit_from_select_sealed(session: Session, source: Select[Any], *, program_id: int | None,
                              shared: dict[str, Any]) -> int:
    """`audit_from_select` with its rows sealed as one format-3 link (models/audit.py, LINK_MARK).

    The rows are written by the unsealed path's own `INSERT … SELECT`, with their chain and places (`row_number()`
    after the chain's tail, in the source's entity order) and no hash; then read back as stored, in the same
    transaction (`_read_linked`: usually one aggregate), so what is hashed is what was written. Their link (one sha256
    over the rows' canonical text, built column by column) goes into `auditlink`, and the head moves on: no audit
    row is updated, and nothing is copied first. Format 2 (session 12) numbered the rows into a temporary table,
    read them back, hashed them row by row and inserted them from it with their hashes: ≈ 0.33 s of CPU per
    100,000 rows more than the unsealed insert (benchmarks/README.md, "chain format 3").
    The head is taken before the insert, so a write of no rows still holds its chain's head to the commit.
    """
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")  # as insert_from_select: the numbering sorts
    src = source.subquery("moved")
    chain = chain_of(program_id)
    processors = {"at": AUDIT_TABLE.c.at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)}
    forms = {name: audit_forms(conn.dialect.name, processors, name, value)
             for name, value in {**shared, "program_id": program_id}.items()}
    after_seq, previous = take_tail(conn, chain)
    reason = _constant_reason(source)  # a reason every row shares is not read back per row
    order = (src.c.entity_id, src.c.reason)
    if postgres:
        data: Any = cast(literal(forms["data"][0], Text), AUDIT_TABLE.c.data.type)
        at: Any = literal(forms["at"][0], AwareDateTime())
    else:
        data, at = literal(forms["data"][0], Text), literal(forms["at"][0], String)
    text_of = {name: literal(forms[name][0], Integer if name == "program_id" else String)
               for name in ("program_id", "entity", "action", "from_state", "to_state", "actor", "role")}
    reason_of = cast(src.c.reason, Text) if reason is None else literal(reason[0], Text)
    query = select(text_of["program_id"], text_of["entity"], cast(src.c.entity_id, String), text_of["action"],
                   text_of["from_state"], text_of["to_state"], text_of["actor"], text_of["role"], reason_of, data, at,
                   literal(chain, Integer), literal(after_seq, Integer) + func.row_number().over(order_by=order)
                   ).order_by(*order)
    statement = insert(AUDIT_TABLE).from_select([*AUDIT_COLUMNS, "chain", "chain_seq"], query)
    marked = conn.info.get(WRITTEN, False)  # the rows below are sealed: they leave the commit nothing to probe for
    written = int(conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount)
    conn.info[WRITTEN] = marked
    read = _read_linked(conn, chain, after_seq, reason is None)
    # What is read back after the tail must be exactly what this statement wrote: a row found there that it did
    # not write (put after the head by hand) would otherwise be sealed into this write's link as if it were one.
    if (0 if read is None else read[0]) != written:
        raise RuntimeError(f"audit chain {chain}: {0 if read is None else read[0]} rows after place {after_seq}, "
                           f"this write wrote {written}")
    if read is None:
        # The head was taken with this transaction's earlier rows of the chain sealed onto it but not moved
        # (`take_tail` holds it for the rows that follow): with no rows to follow, it moves to them now.
        advance_head(conn, chain, after_seq, previous)
        return 0
    n, ids, entity_ids, reasons = read
    hashed: dict[str, Sequence[Any] | Same] = {name: Same(form[1]) for name, form in forms.items()}
    hashed.update(id=ids, entity_id=entity_ids, reason=reasons if reason is None else Same(reason[0]))
    digest, locators = link_seals(previous, after_seq + 1, [hashed[c] for c in CONTENT_COLUMNS])
    conn.execute(insert(LINK_TABLE).values(chain=chain, first_seq=after_seq + 1, last_seq=after_seq + n, hash=digest,
                                           locators=locators))
    advance_head(conn, chain, after_seq + n, digest)
    return n


_SEPARATOR = "\x1f"  # ASCII's unit separator: joins a read-back column's values into one string


def _read_linked(conn: Any, chain: int, after_seq: int, own_reasons: bool
                 ) -> tuple[int, Sequence[int], list[str], list[Any]] | None:
    """The rows a bulk write just put after place `after_seq` of `chain`, as stored, in chain order: how many, their
    ids, entity ids and (`own_reasons`) reasons; None if it wrote none.

    The usual case costs one aggregate, no Python object per row but the entity ids split from one string: the
    ids are consecutive in chain order (min and max of id − place equal) and come back as a `range`. RETURNING
    the rows instead cost 0.07-0.11 s per 100,000 on SQLite, fetching their tuples. Otherwise (ids another writer
    interleaved on PostgreSQL, reasons of their own, a separator inside an entity id) the rows are read one a row.
    """
    rows = "FROM auditevent WHERE chain = :chain AND chain_seq > :after"
    params = {"chain": chain, "after": after_seq}
    if not own_reasons:
        if conn.dialect.name == "postgresql":
            agg = ("SELECT count(*), min(id - chain_seq), max(id - chain_seq), "
                   f"string_agg(entity_id, chr(31) ORDER BY chain_seq) {rows}")
        else:  # group_concat keeps the order of the subquery's scan of (chain, chain_seq) (no ORDER BY in 3.40's)
            agg = ("SELECT count(*), min(id - chain_seq), max(id - chain_seq), group_concat(entity_id, char(31)) "
                   f"FROM (SELECT id, chain_seq, entity_id {rows} ORDER BY chain_seq)")
        n, low, high, joined = conn.execute(text(agg), params).one()
        if not n:
            return None
        entity_ids = joined.split(_SEPARATOR)
        if low == high and len(entity_ids) == n:
            first = after_seq + 1 + int(low)
            return int(n), range(first, first + int(n)), entity_ids, []
    got = conn.execute(text(f"SELECT id, entity_id, reason {rows} ORDER BY chain_seq"), params).cursor.fetchall()
    if not got:
        return None
    return (len(got), list(map(itemgetter(0), got)), list(map(itemgetter(1), got)),
            list(map(itemgetter(2), got)) if own_reasons else [])


def _constant_reason(source: Select[Any]) -> tuple[str | None] | None:
    """The reason every row of `source` has, if it selects a constant: a bound string or NULL (as one tuple)."""
    column = source.selected_columns["reason"]
    element = column.element if isinstance(column, Label) else column
    if isinstance(element, Null):
        return (None,)
    if isinstance(element, BindParameter) and element.callable is None and (
            element.value is None or type(element.value) is str):
        return (element.value,)
    return None


def json_rows(session: Session, name: str, columns: Sequence[tuple[str, TypeEngine[Any]]],
              rows: Sequence[Sequence[Any]]) -> Subquery:
    """Rows computed in Python as a table a statement can join, passed as ONE parameter (a JSON array).

    This is how a decision on 100,000 items reaches the database: no IN list (PostgreSQL caps a
    statement at 65,535 parameters), no temporary table, and a join on the primary key.
    """
    postgres = dialect_name(session) == "postgresql"
    if len(columns) == 1:  # a flat array: each element is the value itself, nothing to extract
        ((col, typ),) = columns
        doc = _json_doc(name, [r[0] for r in rows])
        if postgres:
            text_elements = func.json_array_elements_text(cast(doc, JSON)).table_valued("value", name=f"{name}_elements")
            return select(cast(text_elements.c.value, typ).label(col)).subquery(name)
        flat = func.json_each(doc).table_valued("value", name=f"{name}_elements")
        return select(type_coerce(flat.c.value, typ).label(col)).subquery(name)
    doc = _json_doc(name, rows if isinstance(rows, list) else list(rows))  # json writes tuples as arrays
    if postgres:
        # jsonb: the document is parsed once into a binary form whose array elements are read by
        # offset; `->>` on plain json re-scans each row's text once per column (a 100,000-row outbox
        # insert with eight columns, the reminders': 2.7 s -> 1.6 s).
        elements = func.jsonb_array_elements(cast(doc, JSONB)).table_valued("value", name=f"{name}_elements")
        cols = [cast(elements.c.value.op("->>")(literal_column(str(i))), typ).label(col)
                for i, (col, typ) in enumerate(columns)]
    else:
        elements = func.json_each(doc).table_valued("value", name=f"{name}_elements")
        cols = [type_coerce(func.json_extract(elements.c.value, f"$[{i}]"), typ).label(col)
                for i, (col, typ) in enumerate(columns)]
    return select(*cols).select_from(elements).subquery(name)


def _json_doc(name: str, values: list[Any]) -> Any:
    return bindparam(f"{name}_doc", json.dumps(values, ensure_ascii=False, default=_json_value), type_=Text)


def json_object(session: Session, pairs: Mapping[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """A JSON object built by the database, one per row (a notice's context, an audit row's data)."""
    build = func.json_build_object if dialect_name(session) == "postgresql" else func.json_object
    args: list[Any] = []
    for key, value in pairs.items():
        if not key.isidentifier():
            raise ValueError(f"JSON key {key!r} must be an identifier")
        args += [literal_column(f"'{key}'"), value]
    return build(*args)


def json_text(session: Session, value: str | None) -> ColumnElement[Any]:
    """A constant string inside `json_object` (PostgreSQL must know a parameter's type there)."""
    return cast(literal(value, Text), Text) if dialect_name(session) == "postgresql" else literal(value, Text)


def json_bool(session: Session, condition: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON true/false inside `json_object` (SQLite has no booleans: 1/0 would become numbers)."""
    if dialect_name(session) == "postgresql":
        return case((condition, literal_column("true")), else_=literal_column("false"))
    return func.json(case((condition, "true"), else_="false"))


# Below PostgreSQL's 65,535 bind parameters per statement (and SQLite's limit): long id lists go in slices.
ID_CHUNK = 5000


# Below this many new rows the planner's estimates are close enough; above it they may be badly stale.
BULK_ANALYZE_ROWS = 10_000


def refresh_statistics(session: Session, rows_written: int, *tables: type[SQLModel]) -> None:
    """After a bulk write on PostgreSQL, ANALYZE the tables in the same transaction.

    Until autovacuum gets to them (up to a minute or more), the planner still sees near-empty tables
    and may join 100,000 rows with nested loops: minutes instead of milliseconds for the next
    dashboard, laggard or list query. SQLite plans without row statistics, so it needs nothing.
    """
    if rows_written < BULK_ANALYZE_ROWS or dialect_name(session) != "postgresql":
        return
    for table in tables:
        session.connection().exec_driver_sql(f'ANALYZE "{table_of(table).name}"')


def chunked(ids: Sequence[K], size: int = ID_CHUNK) -> list[Sequence[K]]:
    """Slices of `ids` small enough for one `IN (...)` each."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


__all__ = [
    "AUDIT_COLUMNS",
    "ID_CHUNK",
    "audit_forms",
    "audit_from_select",
    "chunked",
    "dialect_name",
    "insert_columns",
    "insert_from_select",
    "insert_ignoring_conflicts",
    "insert_rows",
    "json_bool",
    "json_object",
    "json_rows",
    "json_text",
    "table_of",
    "write_audit",
]
