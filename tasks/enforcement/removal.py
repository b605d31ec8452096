"""An enterprise's products leave the list (disqualification 000, exit 001): selections and contracts end,
every institution that selected them is told once, the drug list is republished without an approval gate."""

from __future__ import annotations

from datetime import date

from sqlalchemy import String, cast, literal, select, update
from sqlmodel import Session

from core.bulk import audit_from_select, json_object, json_text, table_of
from models.catalog import Enterprise, Product
from models.clock import Clock
from models.enrollment import Institution
from models.operations import Contract, Selection
from models.program import Program
from models.program_definition import ProgramDefinition
from models.states import ContractState, Role
from models.transitions import CONTRACT
from tasks.lists.versions import publish_list
from tasks.outbox.enqueue import enqueue_notices_from

SEL, CON, PROD, INST = table_of(Selection), table_of(Contract), table_of(Product), table_of(Institution)


def remove_enterprise_products(session: Session, program: Program, defn: ProgramDefinition, enterprise: Enterprise,
                               *, on: date, why: str, actor: str, role: Role, clock: Clock) -> None:
    """Everything that follows an enterprise leaving the list on `on`; its state must already have left ACTIVE."""
    assert program.id is not None and enterprise.id is not None
    now = clock.now()
    ent_products = select(PROD.c.id).where(PROD.c.enterprise_id == enterprise.id)
    carrying = (SEL.c.program_id == program.id, SEL.c.product_id.in_(ent_products), SEL.c.ended_on.is_(None))
    enqueue_notices_from(session, select(
        (literal(f"products_removed:{program.id}:{enterprise.id}:", String) + cast(INST.c.id, String))
        .label("idempotency_key"),
        literal(program.id).label("program_id"), literal("enforcement_notice", String).label("kind"),
        literal("institution", String).label("recipient_type"), INST.c.id.label("recipient_id"),
        INST.c.name.label("recipient_name"), INST.c.email.label("email"),
        # No program name: render_context has it (issue #17).
        json_object(session, {"subject_name": json_text(session, enterprise.name),
                              "action": json_text(session, "products_removed"),
                              "reason": json_text(session, why),
                              "effective_on": json_text(session, on.isoformat())}).label("context"))
        .where(INST.c.id.in_(select(SEL.c.institution_id).where(*carrying))), now)
    session.connection().execute(update(SEL).where(*carrying).values(ended_on=on))
    open_contracts = (CON.c.program_id == program.id, CON.c.enterprise_id == enterprise.id,
                      CON.c.state.in_([ContractState.PENDING.value, ContractState.SIGNED.value]),
                      CON.c.year >= on.year)
    for state in (ContractState.PENDING, ContractState.SIGNED):
        audit_from_select(session, select(CON.c.id.label("entity_id"), literal(why).label("reason"))
                          .where(*open_contracts, CON.c.state == state.value),
                          entity=CONTRACT.entity, action="terminate", from_state=state.value,
                          to_state=CONTRACT.next_state(0, state, "terminate").value, actor=actor, role=role, at=now,
                          program_id=program.id, data={"enterprise_id": enterprise.id, "on": on.isoformat()})
    session.connection().execute(update(CON).where(*open_contracts).values(state=ContractState.TERMINATED.value))
    # Removals are published without the approval gate (as the drug-list phase does for them).
    publish_list(session, program, defn, "drugs", clock=clock, actor=actor, reason=f"{enterprise.name}：{why}")
