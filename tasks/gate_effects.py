"""What a decision on each kind of gate does to its items (states, reviews, notices)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, update
from sqlmodel import select

from models.catalog import Enterprise, EnterpriseDeclaration
from models.enrollment import Application, Institution, Review
from models.program import AllianceInvitation, Program
from models.program_definition import ProgramDefinition
from models.states import ApplicationState, Decision, GateKind, ReviewLevel
from models.transitions import APPLICATION, APPLICATION_CITY_ONLY, DECLARATION, INVITATION, Machine
from tasks.gates import DecisionContext
from tasks.outbox import NoticeDraft, enqueue_notices
from tasks.store import chunked


def _definition(ctx: DecisionContext) -> tuple[Program, ProgramDefinition]:
    program = ctx.session.get(Program, ctx.gate.program_id)
    assert program is not None
    return program, ProgramDefinition.model_validate(program.definition)


def _application_machine(defn: ProgramDefinition) -> Machine[ApplicationState]:
    levels = [lvl.level for lvl in defn.approval_chain]
    return APPLICATION if "district" in levels else APPLICATION_CITY_ONLY


def _review_applications(ctx: DecisionContext, level: ReviewLevel) -> None:
    """District or city opinion on each application: state, review row, audit, and the decision notice."""
    program, defn = _definition(ctx)
    machine = _application_machine(defn)
    now = ctx.clock.now()
    ids = ctx.approved + ctx.rejected
    approved_ids = set(ctx.approved)
    rows = [row for part in chunked(ids) for row in ctx.session.exec(
        select(Application, Institution)
        .join(Institution, Institution.id == Application.institution_id)  # type: ignore[arg-type]
        .where(Application.id.in_(part))  # type: ignore[union-attr]
    ).all()]
    by_state: dict[ApplicationState, list[int]] = {}
    reviews, drafts = [], []
    approve_action, reject_action = f"{level.value}_approve", f"{level.value}_reject"
    final_level = defn.approval_chain[-1].level == level.value
    for app, inst in rows:
        assert app.id is not None
        approved = app.id in approved_ids
        reason = ctx.reasons.get(app.id)
        new, record = machine.apply(app.id, app.state, approve_action if approved else reject_action,
                                    actor=ctx.user.name, role=ctx.user.role, at=now, reason=reason,
                                    program_id=program.id, data={"gate_id": ctx.gate.id})
        ctx.audit.append(record)
        by_state.setdefault(new, []).append(app.id)
        reviews.append({"application_id": app.id, "level": level, "reviewer": ctx.user.name, "reason": reason,
                        "decision": Decision.APPROVE if approved else Decision.REJECT, "gate_id": ctx.gate.id,
                        "decided_at": now})
        if not approved or final_level:
            drafts.append(NoticeDraft(
                key=f"application_decision:{app.id}:{level.value}", kind="application_decision",
                recipient_type="institution", recipient_id=inst.id, recipient_name=inst.name, email=inst.email,
                program_id=program.id,
                context={"program_name": program.name, "institution_name": inst.name, "application_id": app.id,
                         "decision": "approve" if approved else "reject", "level": level.value,
                         "reason": reason, "can_reapply": not approved},
            ))
    for state, app_ids in by_state.items():
        values: dict[str, object] = {"state": state}
        if state in (ApplicationState.APPROVED, ApplicationState.REJECTED):
            values["decided_at"] = now
        for part in chunked(app_ids):
            ctx.session.execute(update(Application).where(Application.id.in_(part)).values(**values)  # type: ignore[union-attr]
                                .execution_options(synchronize_session=False))
    for app_id in ctx.rejected:
        ctx.session.execute(update(Application).where(Application.id == app_id)  # type: ignore[arg-type]
                            .values(reason=ctx.reasons.get(app_id)))
    if reviews:
        ctx.session.execute(insert(Review), reviews)
    enqueue_notices(ctx.session, drafts, now)


def _review_declarations(ctx: DecisionContext) -> None:
    program, _ = _definition(ctx)
    now = ctx.clock.now()
    for decl_id in ctx.approved + ctx.rejected:
        decl = ctx.session.get(EnterpriseDeclaration, decl_id)
        assert decl is not None
        approved = decl_id in ctx.approved
        reason = ctx.reasons.get(decl_id)
        new, record = DECLARATION.apply(decl_id, decl.state, "accept" if approved else "reject",
                                        actor=ctx.user.name, role=ctx.user.role, at=now, reason=reason,
                                        program_id=program.id)
        ctx.audit.append(record)
        decl.state, decl.reason, decl.decided_at, decl.decided_by = new, reason, now, ctx.user.name
        ctx.session.add(decl)
        enterprise = ctx.session.get(Enterprise, decl.enterprise_id)
        assert enterprise is not None
        enqueue_notices(ctx.session, [NoticeDraft(
            key=f"declaration_decision:{decl_id}", kind="declaration_decision", recipient_type="enterprise",
            recipient_id=enterprise.id, recipient_name=enterprise.name, email=enterprise.email,
            program_id=program.id,
            context={"program_name": program.name, "enterprise_name": enterprise.name, "declaration_id": decl_id,
                     "decision": "approve" if approved else "reject", "reason": reason, "items": []},
        )], now)


def _approve_list(ctx: DecisionContext) -> None:
    """The manager's approval publishes the list version the gate was opened for (seed 000 §三(二))."""
    from tasks.drug_list import list_gate_key
    from tasks.gates import GateError
    from tasks.lists import (
        content_hash,
        drug_entries,
        publish_list,  # lists import gates' neighbours; avoid a cycle at import time
    )

    program, defn = _definition(ctx)
    assert program.id is not None
    if ctx.approved:
        if list_gate_key(program.slug, content_hash(drug_entries(ctx.session, program.id))) != ctx.gate.natural_key:
            raise GateError("清单内容在送审后已变化，请等待新的审批事项 / the list changed after this gate was opened; "
                            "approve the newer list gate instead")
        publish_list(ctx.session, program, defn, "drugs", clock=ctx.clock, actor=ctx.user.name,
                     reason=f"gate {ctx.gate.id}")


def _confirm_alliance(ctx: DecisionContext) -> None:
    program, _ = _definition(ctx)
    now = ctx.clock.now()
    for inv_id in ctx.approved + ctx.rejected:
        inv = ctx.session.get(AllianceInvitation, inv_id)
        assert inv is not None
        action = "confirm" if inv_id in ctx.approved else "exclude"
        new, record = INVITATION.apply(inv_id, inv.state, action, actor=ctx.user.name, role=ctx.user.role,
                                       at=now, reason=ctx.reasons.get(inv_id), program_id=program.id)
        ctx.audit.append(record)
        inv.state = new
        ctx.session.add(inv)


EFFECTS: dict[GateKind, Callable[[DecisionContext], None]] = {
    GateKind.DISTRICT_REVIEW: lambda ctx: _review_applications(ctx, ReviewLevel.DISTRICT),
    GateKind.CITY_REVIEW: lambda ctx: _review_applications(ctx, ReviewLevel.CITY),
    GateKind.DECLARATION_REVIEW: _review_declarations,
    GateKind.LIST_APPROVAL: _approve_list,
    GateKind.ALLIANCE_CONFIRMATION: _confirm_alliance,
}


def apply_effects(ctx: DecisionContext) -> None:
    effect = EFFECTS.get(ctx.gate.kind)
    if effect is None:
        raise NotImplementedError(f"no effect defined for gate kind {ctx.gate.kind.value}")
    effect(ctx)
