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

from sqlalchemy import Connection, String, Text, cast, insert, literal, or_, select, type_coerce
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
    """What an audit row's digest covers of each violation: its id, resulting state and evidence as stored. Also the
    RETURNING of the reconciler's INSERT, so the rows it opens are audited as written, not read back."""
    return VIOLATION.c.id, type_coerce(to_state, String), cast(VIOLATION.c.evidence, Text)


def raw_rows(result: Any) -> list[Any]:
    """The driver's tuples as they come: integer and text columns have no result processing to apply, and building
    SQLAlchemy rows for 600,000 violations was ~1 s of the pass's CPU at 1,000,000 order lines."""
    rows = result.cursor.fetchall()
    result.close()
    return list(rows)


def audit_rows(conn: Connection, program_id: int, rule: str, *, action: str, reason: str | None, now: datetime,
               from_state: str | None, rows: list[Any]) -> int:
    """The audit rows for violations given as (id, resulting state, evidence as stored) tuples, by ascending id."""
    by_state: dict[str, tuple[list[int], Any]] = {}
    for vid, state, evidence in rows:
        ids, digest = by_state.setdefault(state, ([], hashlib.sha256()))
        ids.append(vid)
        digest.update(_line(vid, state, evidence))
    if by_state:
        conn.execute(insert(AUDIT), [
            {"program_id": program_id, "entity": "violation", "entity_id": rule, "action": action,
             "from_state": from_state, "to_state": state, "actor": "system", "role": Role.SYSTEM, "reason": reason,
             "data": {"rule": rule, "violations": len(ids), "ids": id_ranges(ids), "sha256": digest.hexdigest()},
             "at": now}
            for state, (ids, digest) in sorted(by_state.items())])
    return len(rows)


def _line(vid: int, state: str, evidence: str | None) -> bytes:
    return f"{vid}\t{state}\t{evidence or ''}\n".encode()


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """Ascending ids as inclusive [first, last] ranges: a rule's violations opened by one INSERT are one range."""
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
