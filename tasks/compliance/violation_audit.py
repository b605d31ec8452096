"""The audit rows of violations the pass opens or closes, written already sealed into the program's chain.

One row per violation selected, by one `INSERT … SELECT` from `violation` itself: the rows' per-row content (the
violation's id, its state, its evidence) is read once, in id order, to hash them (`models.audit.chain_links`,
the bulk writers' method, `core/bulk.py`), and the insert numbers the same rows in the same order and takes each
one's id, chain place and hash from two parameters. Nothing is read back or updated afterwards: sealing at commit
(`core.audit_chain.seal_audit`) read every row back and `UPDATE`d it, 6.7 of a 50 s first pass on PostgreSQL at
100,000 order lines.

The rows selected must stay the same between the read and the insert: the pass holds the program's lock
(`tasks.programs.lock_program`) and writes these violations in its own transaction; the insert's row count is
checked all the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from core.audit_chain import WRITTEN, advance_head, sealing_enabled, take_places
from core.bulk import AUDIT_COLUMNS, audit_forms
from models.audit import CONTENT_COLUMNS, AuditEvent, Same, chain_links, chain_of
from models.base import AwareDateTime
from models.operations import Violation
from models.states import Role

VIOLATION = Violation.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def audit_violations(conn: Connection, program_id: int, *, action: str, reason: str | None, now: datetime,
                     where: ColumnElement[bool], from_state: str | None,
                     to_state: ColumnElement[Any] | str) -> int:
    """One sealed audit row per violation matching `where` (`to_state`: a value, or a column of the violation)."""
    to_state_column = to_state if not isinstance(to_state, str) else literal(to_state, String)
    shared = {"program_id": program_id, "entity": "violation", "action": action, "from_state": from_state,
              "actor": "system", "role": Role.SYSTEM, "reason": reason, "at": now}
    if not sealing_enabled():  # benchmarks only (core.audit_chain.set_sealing): the commit seals nothing either
        return _unsealed(conn, shared, where, to_state_column)
    # The driver's tuples as they come: integer and text columns have no result processing to apply, and building
    # SQLAlchemy rows for 600,000 violations was ~1 s of the pass's CPU at 1,000,000 order lines.
    result = conn.execute(select(VIOLATION.c.id, type_coerce(to_state_column, String), cast(VIOLATION.c.evidence, Text))
                          .where(where).order_by(VIOLATION.c.id))
    rows = result.cursor.fetchall()
    result.close()
    n = len(rows)
    if n == 0:
        return 0
    dialect = conn.dialect
    processors = {"at": AUDIT.c.at.type.dialect_impl(dialect).bind_processor(dialect)}
    forms = {name: audit_forms(dialect.name, processors, name, value) for name, value in shared.items()}
    chain = chain_of(program_id)
    places = take_places(conn, chain, n)
    hashed: dict[str, Any] = {name: Same(form[1]) for name, form in forms.items()}
    hashed.update(id=places.ids, entity_id=[str(r[0]) for r in rows], to_state=[r[1] for r in rows],
                  data=[r[2] for r in rows])
    links = chain_links(places.previous, places.after_seq, [hashed[c] for c in CONTENT_COLUMNS])

    numbered = (select(VIOLATION.c.id, VIOLATION.c.evidence, to_state_column.label("to_state"),
                       cast(func.row_number().over(order_by=VIOLATION.c.id) - 1, Integer).label("k"))
                .where(where).subquery("numbered"))
    k = numbered.c.k
    digests = bindparam("sealed_hashes", "".join(links).encode("ascii"), type_=LargeBinary)
    if dialect.name == "postgresql":
        ids: Any = text("(CAST(:sealed_ids AS integer[]))[numbered.k + 1]").bindparams(
            bindparam("sealed_ids", places.ids, type_=ARRAY(Integer)))
        digest: Any = func.encode(func.substring(digests, k * 64 + 1, 64), "escape")
        at: Any = literal(forms["at"][0], AwareDateTime())
    else:  # SQLite: the head's insert holds the write lock, so the ids are contiguous (take_places)
        ids = literal(places.ids[0], Integer) + k
        digest = cast(func.substr(digests, k * 64 + 1, 64), Text)
        at = literal(forms["at"][0], String)

    def value(name: str) -> Any:
        return literal(forms[name][0], Integer if name == "program_id" else String)

    query = select(ids, value("program_id"), value("entity"), cast(numbered.c.id, String), value("action"),
                   value("from_state"), numbered.c.to_state, value("actor"), value("role"), value("reason"),
                   numbered.c.evidence, at, literal(chain, Integer), literal(places.after_seq + 1, Integer) + k,
                   digest)
    marked = conn.info.get(WRITTEN, False)  # the insert below is sealed: it leaves the commit nothing to probe for
    written = int(conn.execute(insert(AUDIT).from_select(["id", *AUDIT_COLUMNS, "chain", "chain_seq", "chain_hash"],
                                                         query).execution_options(preserve_rowcount=True)).rowcount)
    conn.info[WRITTEN] = marked
    if written != n:
        raise RuntimeError(f"violations moved while their audit rows were written: {written} of {n}")
    advance_head(conn, chain, places.after_seq + n, links[-1])
    return n


def _unsealed(conn: Connection, shared: dict[str, Any], where: ColumnElement[bool], to_state: ColumnElement[Any]) -> int:
    rows = select(
        literal(shared["program_id"]), literal("violation"), cast(VIOLATION.c.id, String), literal(shared["action"]),
        literal(shared["from_state"], String), to_state, literal("system"), literal(Role.SYSTEM.value),
        literal(shared["reason"], String), VIOLATION.c.evidence, literal(shared["at"], AUDIT.c.at.type),
    ).where(where)
    return int(conn.execute(insert(AUDIT).from_select(list(AUDIT_COLUMNS), rows)).rowcount)
