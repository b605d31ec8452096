"""The audit rows of what a compliance pass opens and closes: one row per rule, action and state, not per violation.

Why not one row per violation (as until session 10): opening and closing a violation is the system's reading of
the platform's data, not an action of a person — issue #18 asks for every action of a person, the seeds ask for
no audit of findings, and the violation row itself keeps what was found (rule, subject, evidence, detected_at)
and how it ended (state, closed_on, closed_reason). At provincial scale the per-violation rows were 600,000
sealed inserts into `auditevent` and its eight indexes, plus an id drawn per row: ≈ 9 of PostgreSQL's 31 s of
statement CPU in a first pass over 1,000,000 order lines, against a plain-SQL floor of 7.5 s (issue #14).

What stays in the audit trail (issue #14: "everything in the audit trail"): for each rule of each pass, one row
per (action, resulting state) — `violation_opened` → open, `violation_opened` → closed (cured before first seen),
`violation_closed` → closed with the rule's reason — whose `data` names the violations (`ids`, as inclusive id
ranges), how many, and a sha256 over their id, state and evidence as the database stored them. The row is sealed
into the program's chain with the pass's commit (`core.audit_chain.seal_audit`), so a finding whose evidence is
edited afterwards no longer matches its sealed digest (`batch_digest` recomputes it). The audit page shows the
batch under the entity 违规 with the rule as its id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Text, cast, func, insert, literal, or_, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from models.audit import AuditEvent
from models.operations import Violation
from models.states import Role

VIOLATION = Violation.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def audit_violations(conn: Connection, program_id: int, rule: str, *, action: str, reason: str | None,
                     now: datetime, where: ColumnElement[bool], from_state: str | None,
                     to_state: ColumnElement[Any] | str) -> int:
    """One audit row per resulting state for the violations matching `where`; how many violations they name.

    `to_state`: a value, or a column of the violation. Call before an UPDATE that changes what `where` selects.
    """
    to_state_column = to_state if not isinstance(to_state, str) else literal(to_state, String)
    result = conn.execute(select(*audited_columns(to_state_column)).where(where).order_by(VIOLATION.c.id))
    return audit_rows(conn, program_id, rule, action=action, reason=reason, now=now, from_state=from_state,
                      rows=raw_rows(result))


def audited_columns(to_state: ColumnElement[Any] = VIOLATION.c.state) -> tuple[ColumnElement[Any], ...]:
    """What an audit row's digest covers of each violation: its id, resulting state and the line the digest reads
    (`_line`: id, state and evidence as stored), built by the database. Also the RETURNING of the reconciler's
    INSERT, so the rows it opens are audited as written, not read back.

    The line is concatenated by the database, not formatted per row in Python: at 1,000,000 order lines a first
    pass digests 595,770 violations, and an f-string, an encode and a hash update per violation were ~0.5 s of
    the process's CPU while the database waited (`audit_rows` now joins a chunk of lines and hashes it at once).
    """
    state = type_coerce(to_state, String)
    line = (cast(VIOLATION.c.id, Text) + literal("\t", Text) + type_coerce(to_state, Text) + literal("\t", Text)
            + func.coalesce(cast(VIOLATION.c.evidence, Text), literal("", Text)) + literal("\n", Text))
    return VIOLATION.c.id, state, line


def raw_rows(result: Any) -> list[Any]:
    """The driver's tuples as they come: integer and text columns have no result processing to apply, and building
    SQLAlchemy rows for 600,000 violations was ~1 s of the pass's CPU at 1,000,000 order lines."""
    rows = result.cursor.fetchall()
    result.close()
    return list(rows)


# Lines hashed per `update`: one joined string of ~2.5 MB, not the whole rule's (a first pass's late deliveries
# would be ~60 MB of text and as much again encoded, on top of the returned rows).
_CHUNK = 10_000


def audit_rows(conn: Connection, program_id: int, rule: str, *, action: str, reason: str | None, now: datetime,
               from_state: str | None, rows: list[Any]) -> int:
    """The audit rows for violations given as (id, resulting state, `_line`) tuples (`audited_columns`), by
    ascending id."""
    states = sorted({r[1] for r in rows})
    events = []
    for state in states:
        of_state = rows if len(states) == 1 else [r for r in rows if r[1] == state]
        digest = hashlib.sha256()
        for start in range(0, len(of_state), _CHUNK):
            digest.update("".join([r[2] for r in of_state[start:start + _CHUNK]]).encode())
        events.append({
            "program_id": program_id, "entity": "violation", "entity_id": rule, "action": action,
            "from_state": from_state, "to_state": state, "actor": "system", "role": Role.SYSTEM, "reason": reason,
            "data": {"rule": rule, "violations": len(of_state), "ids": id_ranges([r[0] for r in of_state]),
                     "sha256": digest.hexdigest()},
            "at": now})
    if events:
        conn.execute(insert(AUDIT), events)
    return len(rows)


def _line(vid: int, state: str, evidence: str | None) -> bytes:
    return f"{vid}\t{state}\t{evidence or ''}\n".encode()


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """Ascending ids as inclusive [first, last] ranges: a rule's violations opened by one INSERT are one range."""
    if ids and ids[-1] - ids[0] == len(ids) - 1:  # ascending and distinct (ids): without a gap
        return [[ids[0], ids[-1]]]
    ranges: list[list[int]] = []
    for i in ids:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


def batch_digest(conn: Connection, ranges: Iterable[Sequence[int]], state: str) -> str:
    """The sha256 an audit row's `data` holds, recomputed from the violations it names as they are now, in state
    `state` (the row's `to_state`; a violation since closed by a later pass hashes as it was opened if given the
    state it was opened in)."""
    within = or_(*(VIOLATION.c.id.between(first, last) for first, last in ranges))
    digest = hashlib.sha256()
    for vid, evidence in conn.execute(select(VIOLATION.c.id, cast(VIOLATION.c.evidence, Text))
                                      .where(within).order_by(VIOLATION.c.id)):
        digest.update(_line(int(vid), state, evidence))
    return digest.hexdigest()
