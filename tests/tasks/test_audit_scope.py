"""A district reviewer reads the audit rows about its districts' applications, accounts and contracts, and the
rows it wrote itself — nothing about another district's (tasks/trust/scope.audit_scope, issue #18/#19)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.bulk import write_audit
from core.db import transaction
from models.audit import AuditEvent
from models.operations import Contract, PlatformAccount
from models.program import User
from models.states import AccountState, ContractState, Role
from models.transitions import AuditRecord
from tasks.trust.scope import audit_scope
from tests.factories import (
    ensure_user,
    make_enterprise,
    make_institution,
    make_program,
    make_running_application,
    shanghai,
)

OWN, OTHER = "和平区", "沈河区"


def test_a_reviewer_reads_the_audit_rows_about_its_districts_and_its_own_and_no_other(engine: Engine) -> None:
    program = make_program(engine)
    enterprise = make_enterprise(engine)
    about: dict[str, dict[str, int]] = {}
    for district in (OWN, OTHER):
        inst = make_institution(engine, district=district)
        app = make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 1, 9))
        with Session(engine) as session:
            account = PlatformAccount(program_id=program.id or 0, institution_id=inst.id or 0,
                                      state=AccountState.PENDING, due_on=date(2025, 9, 15))
            contract = Contract(program_id=program.id or 0, institution_id=inst.id or 0, enterprise_id=enterprise.id or 0,
                                year=2025, state=ContractState.PENDING, due_on=date(2025, 9, 15))
            session.add_all([account, contract])
            session.commit()
            about[district] = {"application": app, "platform_account": account.id or 0, "contract": contract.id or 0}
    ensure_user(engine, "reviewer-heping", Role.DISTRICT_REVIEWER, districts=[OWN])
    with transaction(engine) as session:
        write_audit(session, [AuditRecord(
            entity=entity, entity_id=str(entity_id), action="note", from_state=None, to_state=None, actor="system",
            role=Role.SYSTEM, at=shanghai(2025, 9, 30, 10), reason=f"{district}:{entity}", program_id=program.id)
            for district, rows in about.items() for entity, entity_id in rows.items()] + [AuditRecord(
            entity="application", entity_id=str(about[OTHER]["application"]), action="note", from_state=None,
            to_state=None, actor="reviewer-heping", role=Role.DISTRICT_REVIEWER, at=shanghai(2025, 9, 30, 11),
            reason="written by the reviewer", program_id=program.id)])
    with Session(engine) as session:
        reviewer = session.exec(select(User).where(col(User.name) == "reviewer-heping")).one()
        scope = audit_scope(reviewer)
        assert scope is not None
        seen = set(session.exec(select(AuditEvent.reason).where(scope)).all())
        everything = set(session.exec(select(AuditEvent.reason)).all())
    assert seen == {f"{OWN}:application", f"{OWN}:platform_account", f"{OWN}:contract", "written by the reviewer"}
    assert {f"{OTHER}:application", f"{OTHER}:platform_account", f"{OTHER}:contract"} <= everything - seen
