"""Checking the audit trail's hash chains: on demand (`sanjin audit verify`) and every day (the reminders run)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from core.audit_chain import ChainBreak, ChainReport, verify_chain
from tasks.programs import get_program


def verify_audit(engine: Engine, slug: str | None = None) -> ChainReport:
    """Walk one program's chain and the chain of rows of no program (users, the clock), or every chain."""
    with Session(engine) as session:
        if slug is None:
            return verify_chain(session.connection())
        program, _ = get_program(session, slug)
        return first_break_report(session, program.id or 0)


def first_break_report(session: Session, program_id: int) -> ChainReport:
    """The program's chain, then the system chain (its people and clock moves decide what the program's rows mean)."""
    conn = session.connection()
    mine = verify_chain(conn, program_id)
    if mine.broken is not None:
        return mine
    system = verify_chain(conn, 0)
    return ChainReport(mine.rows + system.rows, {**mine.heads, **system.heads}, system.broken)


def chain_break(session: Session, program_id: int) -> ChainBreak | None:
    return first_break_report(session, program_id).broken


__all__ = ["chain_break", "first_break_report", "verify_audit"]
