"""What a decision on each kind of gate does to its items (states, reviews, notices)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, String, Text, case, cast, func, literal, select, true, update
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from core.bulk import audit_from_select, insert_from_select, json_bool, json_object, json_rows, json_text, table_of
from models.base import AwareDateTime
from models.catalog import Enterprise, EnterpriseDeclaration, list_gate_key
from models.enrollment import Application, Institution, Review
from models.program import AllianceInvitation, Program
from models.program_definition import ProgramDefinition
from models.states import ApplicationState, Decision, GateKind, ReviewLevel
from models.transitions import (
    APPLICATION,
    APPLICATION_CITY_ONLY,
    APPLICATION_DISTRICT_ONLY,
    DECLARATION,
    INVITATION,
    Machine,
)
from tasks.enforcement.effects import decide_enforcement
from tasks.enforcement.exit import decide_exit
from tasks.gates.rows import DecisionContext, GateError
from tasks.lists.versions import content_hash, drug_entries, publish_list
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices, enqueue_notices_from

APP, INST, REVIEW = table_of(Application), table_of(Institution), table_of(Review)


def _definition(ctx: DecisionContext) -> tuple[Program, ProgramDefinition]:
    program = ctx.session.get(Program, ctx.gate.program_id)
    assert program is not None
    return program, ProgramDefinition.model_validate(program.definition)


def _application_machine(defn: ProgramDefinition) -> Machine[ApplicationState]:
    """The machine of the program file's chain: each level it names, in its order, and no other."""
    levels = [lvl.level for lvl in defn.approval_chain]
    if levels == ["district"]:
        return APPLICATION_DISTRICT_ONLY
    return APPLICATION if "district" in levels else APPLICATION_CITY_ONLY


@dataclass
class _Outcome:
    """The approved (or the rejected) items of one decision, as a table the statements join."""

    approved: bool
    items: Subquery  # column `id`, and `reason` when the items' reasons differ
    reason: ColumnElement[Any]  # the row's reason: a column, or one constant for every item
    moves: dict[ApplicationState, ApplicationState] = field(default_factory=dict)  # from state → to state
    count: int = 0


def _outcome(ctx: DecisionContext, approved: bool) -> _Outcome | None:
    ids = ctx.approved if approved else ctx.rejected
    if not ids:
        return None
    name = "approved" if approved else "rejected"
    reasons = {ctx.reasons.get(i) for i in ids} if ctx.reasons else {None}  # no reasons given: none to look up
    if len(reasons) == 1:  # the usual case: one reason (or none) for all, bound once
        (reason,) = reasons
        items = json_rows(ctx.session, name, [("id", Integer())], [(i,) for i in ids])
        return _Outcome(approved, items, literal(reason, Text))
    items = json_rows(ctx.session, name, [("id", Integer()), ("reason", Text())], [(i, ctx.reasons.get(i)) for i in ids])
    return _Outcome(approved, items, items.c.reason)


def _review_applications(ctx: DecisionContext, level: ReviewLevel) -> None:
    """District or city opinion on each application: state, review row, audit, and the decision notice.

    Set-based, whatever the gate's size: the approved and the rejected items each reach the database
    as one parameter, each (state, outcome) group's transition is checked once (`Machine.next_state`,
    the rule `Machine.apply` applies), and the audit rows, reviews and notices are `INSERT … SELECT`s.
    """
    program, defn = _definition(ctx)
    machine = _application_machine(defn)
    s, now, user, gate = ctx.session, ctx.clock.now(), ctx.user, ctx.gate
    final_level = defn.approval_chain[-1].level == level.value
    at = literal(now, AwareDateTime())
    outcomes = [o for o in (_outcome(ctx, True), _outcome(ctx, False)) if o is not None]
    for o in outcomes:
        action = f"{level.value}_{'approve' if o.approved else 'reject'}"
        for state, count, first in s.execute(
                select(APP.c.state, func.count(), func.min(APP.c.id)).join_from(o.items, APP, APP.c.id == o.items.c.id)
                .group_by(APP.c.state)).tuples():
            o.moves[state] = machine.next_state(first, state, action)
            o.count += count
    for o in outcomes:
        action = f"{level.value}_{'approve' if o.approved else 'reject'}"
        decision = Decision.APPROVE if o.approved else Decision.REJECT
        joined = o.items.join(APP, APP.c.id == o.items.c.id)
        for state, new in o.moves.items():
            audit_from_select(
                s, select(APP.c.id.label("entity_id"), o.reason.label("reason")).select_from(joined)
                .where(APP.c.state == state),
                entity=machine.entity, action=action, from_state=state.value, to_state=new.value, actor=user.name,
                role=user.role, at=now, program_id=program.id, data={"gate_id": gate.id})
        insert_from_select(s, REVIEW, ["application_id", "level", "decision", "reason", "reviewer", "gate_id",
                                       "decided_at"],
                           select(APP.c.id, literal(level.value, String), literal(decision.value, String), o.reason,
                                  literal(user.name, String), literal(gate.id, Integer), at)
                           .select_from(joined).where(true()))
        if final_level or not o.approved:
            enqueue_notices_from(s, select(
                (literal("application_decision:", String) + cast(APP.c.id, String) + f":{level.value}")
                .label("idempotency_key"),
                literal(program.id, Integer).label("program_id"), literal("application_decision", String).label("kind"),
                literal("institution", String).label("recipient_type"), INST.c.id.label("recipient_id"),
                INST.c.name.label("recipient_name"), INST.c.email.label("email"),
                json_object(s, {  # no program or institution name: render_context has them (issue #17)
                    "application_id": APP.c.id, "decision": json_text(s, decision.value),
                    "level": json_text(s, level.value), "reason": o.reason,
                    "can_reapply": json_bool(s, literal(not o.approved)),
                    "district": INST.c.district}).label("context"))
                .select_from(joined.join(INST, INST.c.id == APP.c.institution_id)), now)
    # Last, the states: the statements above read the states the items were in.
    for o in outcomes:
        values: dict[str, Any] = {"state": case(*((APP.c.state == old, new.value) for old, new in o.moves.items()))}
        settled = [old for old, new in o.moves.items() if new in (ApplicationState.APPROVED, ApplicationState.REJECTED)]
        if settled:
            values["decided_at"] = case((APP.c.state.in_(settled), at), else_=APP.c.decided_at)
        if not o.approved:
            values["reason"] = o.reason
        moved = s.connection().execute(update(APP).where(APP.c.id == o.items.c.id, APP.c.state.in_(list(o.moves)))
                                       .values(values)).rowcount
        if moved != o.count:  # on PostgreSQL, a withdrawal may have committed since the states were read
            raise GateError(f"审批事项 {gate.id} 的申请状态刚有变化，请刷新后重试 / the applications of gate {gate.id} "
                            "changed meanwhile; reload and try again")


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
    program, defn = _definition(ctx)
    assert program.id is not None
    if ctx.approved:
        if list_gate_key(program.slug, content_hash(drug_entries(ctx.session, program.id))) != ctx.gate.natural_key:
            raise GateError("清单内容在送审后已变化，请等待新的审批事项 / the list changed after this gate was opened; "
                            "approve the newer list gate instead")
        publish_list(ctx.session, program, defn, "drugs", clock=ctx.clock, actor=ctx.user.name,
                     reason=f"经审批：{ctx.gate.title}")


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
    GateKind.ENFORCEMENT: decide_enforcement,
    GateKind.ENTERPRISE_EXIT: decide_exit,
}


def apply_effects(ctx: DecisionContext) -> None:
    effect = EFFECTS.get(ctx.gate.kind)
    if effect is None:
        raise NotImplementedError(f"no effect defined for gate kind {ctx.gate.kind.value}")
    effect(ctx)
