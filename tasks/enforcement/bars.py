"""Recording a bad record by hand (不良记录, 004 §六(十五)): the program manager bars an enterprise for N years."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from core.bulk import write_audit
from core.db import transaction
from models.clock import Clock
from models.enforcement import BadRecord
from models.states import Role
from models.transitions import AuditRecord
from tasks.enforcement.effects import record_bad_record
from tasks.enforcement.lookup import ManagersOnly, find_enterprise
from tasks.gates.rows import find_user
from tasks.programs import get_program


def bar_enterprise(engine: Engine, slug: str, enterprise_name: str, *, starts_on: date, reason: str,
                   user_name: str, clock: Clock) -> BadRecord:
    """Record a bad record from `starts_on`; the enterprise may not declare until the bar's last day has passed."""
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        user = find_user(session, user_name)
        if user.role != Role.PROGRAM_MANAGER:
            raise ManagersOnly(user_name)
        enterprise = find_enterprise(session, enterprise_name)
        audit: list[AuditRecord] = []
        bad = record_bad_record(session, program, defn, enterprise, starts_on=starts_on, reason=reason,
                                actor=user.name, role=user.role, at=clock.now(), audit=audit)
        write_audit(session, audit)
        session.expunge(bad)
        return bad
