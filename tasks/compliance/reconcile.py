"""The reconciler every rule shares: today's findings against the stored violations, in a few set-based statements.

Per rule: the findings go into a temporary table once; open violations no longer found close (with the day and
the reason, audit first); findings with no open violation open one (a finding already cured when first seen —
a late delivery that has since arrived — is recorded closed); audit rows for what opened. A re-run finds the
same rows and writes nothing. The audit trail gets one row per rule, action and resulting state, naming the
violations (tasks/compliance/violation_audit.py says why not one per violation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from models.audit import AuditEvent
from models.compliance.codes import ViolationRule, ViolationState
from models.operations import Violation
from tasks.compliance.sql import flush_statistics, refresh_statistics
from tasks.compliance.sql import merge_joins as merge_joins_in
from tasks.compliance.violation_audit import audit_rows, audit_violations, audited_columns, raw_rows

VIOLATION = Violation.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]

FINDING = Table(
    "compliance_finding", MetaData(),
    Column("subject_type", String(40), nullable=False),
    Column("subject_id", Integer, nullable=False),
    Column("object_key", String(64), nullable=False),
    Column("district", String(32)),
    Column("evidence", JSON),
    Column("cured_on", Date),  # set: the obligation was met late; the violation is history, not open
    prefixes=["TEMPORARY"],
)
# Closing and opening look up each violation's finding by its key: without this index that lookup scanned the
# whole finding table per violation (seconds at 25,000 violations, no end in sight at 250,000 on SQLite).
Index("ix_compliance_finding_key", FINDING.c.subject_id, FINDING.c.object_key, FINDING.c.subject_type)
FINDING_COLUMNS = [c.name for c in FINDING.columns]
# What the reconciler writes of a new violation (the rest are its id and defaults).
VIOLATION_COLUMNS = ["program_id", "rule", "subject_type", "subject_id", "object_key", "occurrence", "district",
                     "state", "evidence", "detected_on", "detected_at", "closed_on", "closed_reason"]
OPENED, CLOSED = "violation_opened", "violation_closed"


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule's reconciliation did."""

    rule: ViolationRule
    found: int
    opened: int
    closed: int


def create_finding_table(conn: Connection) -> None:
    """The per-connection scratch table the findings of one rule at a time go through."""
    FINDING.create(conn, checkfirst=True)


def drop_finding_table(conn: Connection) -> None:
    FINDING.drop(conn, checkfirst=True)


def _same_key(program_id: int, rule: ViolationRule, v: Any = VIOLATION) -> ColumnElement[bool]:
    return and_(v.c.program_id == program_id, v.c.rule == rule.value,
                v.c.subject_type == FINDING.c.subject_type, v.c.subject_id == FINDING.c.subject_id,
                v.c.object_key == FINDING.c.object_key)


def reconcile_rule(conn: Connection, program_id: int, rule: ViolationRule, findings: Select[Any], *,
                   today: date, now: datetime, close_reason: str, merge_joins: bool = False) -> RuleOutcome:
    """Bring the stored violations of one rule in line with today's findings (columns as FINDING_COLUMNS).

    `merge_joins`: the finding query joins inputs that all come in one key's order (PostgreSQL then plans it
    without hash joins, `_finding_statement`)."""
    held = select(VIOLATION.c.id).where(VIOLATION.c.program_id == program_id, VIOLATION.c.rule == rule.value).limit(1)
    if conn.execute(held).first() is None:
        return _first_findings(conn, program_id, rule, findings, today=today, now=now, close_reason=close_reason,
                               merge_joins=merge_joins)
    flush_statistics(conn, VIOLATION)  # this rule's statements join `violation` (the first findings did not)
    conn.execute(delete(FINDING))
    _finding_statement(conn, insert(FINDING).from_select(FINDING_COLUMNS, findings), merge_joins)
    # Counted, not taken from rowcount: psycopg reports -1 for some INSERT … SELECT statements.
    found = int(conn.execute(select(func.count()).select_from(FINDING)).scalar_one())
    refresh_statistics(conn, found, FINDING)  # a temporary table: autovacuum never analyzes it

    still_found = exists().where(_same_key(program_id, rule), FINDING.c.cured_on.is_(None))
    gone = and_(VIOLATION.c.program_id == program_id, VIOLATION.c.rule == rule.value,
                VIOLATION.c.state == ViolationState.OPEN.value, ~still_found)
    audit_violations(conn, program_id, rule.value, action=CLOSED, reason=close_reason, now=now, where=gone,
                     from_state=ViolationState.OPEN.value, to_state=ViolationState.CLOSED.value)
    cured_on = select(func.min(FINDING.c.cured_on)).where(_same_key(program_id, rule)).scalar_subquery()
    closed = int(conn.execute(
        update(VIOLATION).where(gone).values(state=ViolationState.CLOSED.value,
                                             closed_on=func.coalesce(cured_on, literal(today)),
                                             closed_reason=close_reason)
    ).rowcount)

    # What this rule already holds per key, aggregated once and joined — not looked up per finding by correlated
    # subqueries: PostgreSQL planned those from statistics taken while the table was emptier than the pass had
    # made it and scanned `violation` once per finding (600 s at 25,000 findings on a first pass).
    prior = (select(VIOLATION.c.subject_type, VIOLATION.c.subject_id, VIOLATION.c.object_key,
                    func.max(VIOLATION.c.occurrence).label("occ"),
                    func.max(case((VIOLATION.c.state == ViolationState.OPEN.value, 1), else_=0)).label("has_open"))
             .where(VIOLATION.c.program_id == program_id, VIOLATION.c.rule == rule.value)
             .group_by(VIOLATION.c.subject_type, VIOLATION.c.subject_id, VIOLATION.c.object_key)
             .subquery("prior"))
    is_cured = FINDING.c.cured_on.is_not(None)
    rows = select(
        literal(program_id), literal(rule.value), FINDING.c.subject_type, FINDING.c.subject_id, FINDING.c.object_key,
        func.coalesce(prior.c.occ, 0) + 1, FINDING.c.district,
        case((is_cured, literal(ViolationState.CLOSED.value)), else_=literal(ViolationState.OPEN.value)),
        FINDING.c.evidence, literal(today), literal(now, VIOLATION.c.detected_at.type),
        FINDING.c.cured_on, case((is_cured, literal(close_reason)), else_=literal(None, String)),
    ).select_from(FINDING.outerjoin(prior, and_(prior.c.subject_type == FINDING.c.subject_type,
                                                prior.c.subject_id == FINDING.c.subject_id,
                                                prior.c.object_key == FINDING.c.object_key))
    ).where(or_(and_(~is_cured, func.coalesce(prior.c.has_open, 0) == 0),  # found: open unless already open
                and_(is_cured, prior.c.occ.is_(None))))  # cured before first seen: history, recorded once
    opened = _open(conn, program_id, rule, rows, now=now, merge_joins=False)
    refresh_statistics(conn, opened, VIOLATION)
    return RuleOutcome(rule, found, opened, closed)


def _finding_statement(conn: Connection, statement: Any, merge_joins: bool) -> Any:
    """Run the statement that reads a rule's findings; with `merge_joins`, PostgreSQL plans it without hash joins.

    The late deliveries join COMPLETION's late orders to the orders, both in order-id order by their keys: merged,
    not a hash table of ~1,000,000 orders built per statement.
    """
    with merge_joins_in(conn, merge_joins):
        return conn.execute(statement)


def _open(conn: Connection, program_id: int, rule: ViolationRule, rows: Select[Any], *, now: datetime,
          merge_joins: bool) -> int:
    """Write the violations `rows` selects (columns as `VIOLATION_COLUMNS`) and audit them; how many.

    PostgreSQL: the INSERT returns what the audit digests (id, state, evidence as stored). Reading the new rows
    back by id afterwards was ~0.9 s of CPU for a first pass's 600,000 violations at 1,000,000 order lines, and
    counting them 0.27 s more. SQLite reads them back: returned, they took the process's peak RSS from 342 to
    439 MB at 1,000,000 lines for ~0.4 s of CPU.
    """
    statement = insert(VIOLATION).from_select(VIOLATION_COLUMNS, rows)
    if conn.dialect.name == "postgresql":
        new_rows = raw_rows(_finding_statement(conn, statement.returning(*audited_columns()), merge_joins))
        new_rows.sort(key=lambda r: r[0])  # returned in the order inserted, which the ids follow: nearly free
        if new_rows:
            audit_rows(conn, program_id, rule.value, action=OPENED, reason=None, now=now, from_state=None,
                       rows=new_rows)
        return len(new_rows)
    before = conn.execute(select(func.coalesce(func.max(VIOLATION.c.id), 0))).scalar_one()
    # The insert's own row count (kept by `preserve_rowcount`, as the audit writer's), not a count of the new rows.
    opened = int(_finding_statement(conn, statement.execution_options(preserve_rowcount=True), merge_joins).rowcount)
    if opened:
        new_rows_of_rule = and_(VIOLATION.c.id > before, VIOLATION.c.program_id == program_id,
                                VIOLATION.c.rule == rule.value)
        audit_violations(conn, program_id, rule.value, action=OPENED, reason=None, now=now, where=new_rows_of_rule,
                         from_state=None, to_state=VIOLATION.c.state)
    return opened


def _first_findings(conn: Connection, program_id: int, rule: ViolationRule, findings: Select[Any], *,
                    today: date, now: datetime, close_reason: str, merge_joins: bool = False) -> RuleOutcome:
    """A rule with no violation yet in the program: nothing to close, no earlier occurrence to number after, so
    its findings are written as violations directly (the first pass after the platform's data came in).

    Through the findings table they cost an insert of every finding, its count and statistics, and a join with
    an empty aggregate: at 100,000 order lines, 0.8 s of the first pass's 1.4 s for the 25,000 late deliveries on
    PostgreSQL. Same rows as `reconcile_rule` writes: occurrence 1, open, or closed when cured before first seen.
    """
    # The finding queries' columns are FINDING_COLUMNS by position, not by name.
    subject_type, subject_id, object_key, district, evidence, cured = list(findings.subquery("found").c)
    # An untyped NULL is text to PostgreSQL here (and SQLite's CAST AS DATE would make a date a number).
    cured_on: ColumnElement[Any] = cast(cured, Date) if conn.dialect.name == "postgresql" else cured
    is_cured = cured_on.is_not(None)
    rows = select(
        literal(program_id), literal(rule.value), subject_type, subject_id, object_key, literal(1), district,
        case((is_cured, literal(ViolationState.CLOSED.value)), else_=literal(ViolationState.OPEN.value)),
        evidence, literal(today), literal(now, VIOLATION.c.detected_at.type),
        cured_on, case((is_cured, literal(close_reason)), else_=literal(None, String)),
    )
    opened = _open(conn, program_id, rule, rows, now=now, merge_joins=merge_joins)
    # Counted, not analyzed: a first pass wrote every rule this way and analyzed `violation` after each of the
    # big ones (three ANALYZEs, ~1 s at 1,000,000 lines) though none of its statements joins it.
    refresh_statistics(conn, opened, VIOLATION, later=True)
    return RuleOutcome(rule, opened, opened, 0)
