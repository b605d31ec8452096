"""Checking the audit trail's hash chains: on demand (`sanjin audit verify`) and every day (the reminders run).

Each check walks the chains, then requires each chain to still hold the heads recorded outside the database by
earlier checks (tasks/trust/audit_anchor.py), and records the heads it found when all is intact.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from core.audit_chain import ChainBreak, ChainReport, check_recorded, verify_chain
from tasks.programs import get_program
from tasks.trust.audit_anchor import record_heads, recorded_heads


def verify_audit(engine: Engine, slug: str | None = None) -> ChainReport:
    """Walk one program's chain and the chain of rows of no program (users, the clock), or every chain."""
    with Session(engine) as session:
        if slug is None:
            return _anchored(session, verify_chain(session.connection()), None)
        program, _ = get_program(session, slug)
        return first_break_report(session, program.id or 0)


def first_break_report(session: Session, program_id: int) -> ChainReport:
    """The program's chain, then the system chain (its people and clock moves decide what the program's rows mean)."""
    conn = session.connection()
    mine = verify_chain(conn, program_id)
    if mine.broken is not None:
        return mine
    system = verify_chain(conn, 0)
    report = ChainReport(mine.rows + system.rows, {**mine.heads, **system.heads}, system.broken)
    return _anchored(session, report, {program_id, 0})


def _anchored(session: Session, report: ChainReport, chains: set[int] | None) -> ChainReport:
    """The report, broken where a chain no longer holds a recorded head; an intact one's heads are recorded."""
    if report.broken is not None:
        return report
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    recorded = recorded_heads(engine)
    broken = check_recorded(session.connection(), {c: h for c, h in recorded.items() if chains is None or c in chains})
    if broken is not None:
        return ChainReport(report.rows, report.heads, broken)
    record_heads(engine, report.heads)
    return report


def chain_break(session: Session, program_id: int) -> ChainBreak | None:
    return first_break_report(session, program_id).broken


__all__ = ["chain_break", "first_break_report", "verify_audit"]
