"""What a decided rung of the ladder does, in the decision's transaction: the ladder's state, the deadline, the
institution's or enterprise's state, the lists, the contracts, the notice (once, by its key), the bad record."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from core.bulk import table_of
from models.calendar import NO_DUE, due_columns
from models.catalog import Enterprise
from models.compliance.codes import SubjectType, rule_label
from models.enforcement import (
    GATE_STEP,
    MANUAL_LABEL,
    BadRecord,
    EnforcementCase,
    LadderState,
    ladder_for,
    last_barred_day,
    seeds_of,
)
from models.enrollment import Application, Institution
from models.operations import Violation
from models.program import Program
from models.program_definition import ProgramDefinition
from models.states import ApplicationState, EnforcementKind, EnterpriseState, Role
from models.transitions import APPLICATION, ENTERPRISE, AuditRecord
from tasks.calendar import working_days_for
from tasks.enforcement.ladder import lift_suspension
from tasks.enforcement.removal import remove_enterprise_products
from tasks.gates.rows import DecisionContext, GateError
from tasks.lists.versions import publish_list
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices

APP_T = table_of(Application)


def _reason(case: EnforcementCase, violation: Violation | None) -> str:
    """What the notice and the audit say the ladder is about: the rule and its evidence, or the person's reason."""
    if violation is None:
        return f"{MANUAL_LABEL}：{case.reason or ''}"
    evidence = violation.evidence or {}
    detail = "；".join(f"{k}：{v}" for k, v in sorted(evidence.items()) if isinstance(v, (str, int, float)))[:300]
    return rule_label(violation.rule) + (f"（{detail}）" if detail else "") + (f"；{case.reason}" if case.reason else "")


def _notify(s: Session, program: Program, case: EnforcementCase, step: EnforcementKind,
            violation: Violation | None, on: date, now: Any) -> None:
    if case.subject_type == SubjectType.INSTITUTION:
        inst = s.get(Institution, case.subject_id)
        assert inst is not None
        name, email = inst.name, inst.email
    else:
        ent = s.get(Enterprise, case.subject_id)
        assert ent is not None
        name, email = ent.name, ent.email
    enqueue_notices(s, [NoticeDraft(
        key=f"enforcement:{case.id}:{step.value}", kind="enforcement_notice", recipient_type=case.subject_type.value,
        recipient_id=case.subject_id, recipient_name=name, email=email, program_id=program.id,
        context={"program_name": program.name, "subject_name": name, "action": step.value,
                 "reason": _reason(case, violation), "effective_on": on.isoformat()})], now)


def _set_application(s: Session, program_id: int, institution_id: int, action: str, ctx: DecisionContext) -> None:
    for app_id, state in s.execute(select(APP_T.c.id, APP_T.c.state).where(
            APP_T.c.program_id == program_id, APP_T.c.institution_id == institution_id,
            APP_T.c.state.in_([ApplicationState.RUNNING.value, ApplicationState.SUSPENDED.value]))).tuples():
        current = ApplicationState(state)
        if (current, action) not in APPLICATION.table:
            continue
        new, record = APPLICATION.apply(int(app_id), current, action, actor=ctx.user.name, role=ctx.user.role,
                                        at=ctx.clock.now(), program_id=program_id, data={"gate_id": ctx.gate.id})
        ctx.audit.append(record)
        s.execute(update(APP_T).where(APP_T.c.id == app_id).values(state=new.value))


def decide_enforcement(ctx: DecisionContext) -> None:
    """Approve: climb the rung (and do what it means); reject: drop the ladder (a suspension is lifted)."""
    s, now, today = ctx.session, ctx.clock.now(), ctx.clock.today()
    program = s.get(Program, ctx.gate.program_id)
    assert program is not None and program.id is not None
    defn = ProgramDefinition.model_validate(program.definition)
    for case_id in ctx.approved + ctx.rejected:
        case = s.get(EnforcementCase, case_id)
        assert case is not None
        step = GATE_STEP.get(case.state)
        if step is None or ctx.gate.natural_key.rsplit(":", 1)[-1] != case.state.value:
            raise GateError(f"处理程序 {case_id} 已变化（{case.state.value}），本审批事项不再适用 / "
                            f"enforcement case {case_id} moved on; this gate no longer applies")
        approved = case_id in ctx.approved
        violation = s.get(Violation, case.violation_id) if case.violation_id is not None else None
        machine = ladder_for(case.subject_type, violation.rule if violation is not None else None,
                             seeds_of(defn.sources))
        was = case.state
        new, record = machine.apply(case_id, case.state, "approve" if approved else "reject", actor=ctx.user.name,
                                    role=ctx.user.role, at=now, reason=ctx.reasons.get(case_id),
                                    program_id=program.id, data={"gate_id": ctx.gate.id, "step": step.value})
        ctx.audit.append(record)
        case.state = new
        for k, v in NO_DUE.items():
            setattr(case, k, v)
        if not approved:
            case.ended_at = now
            if was == LadderState.DISQUALIFICATION_DUE and case.subject_type == SubjectType.INSTITUTION:
                lift_suspension(s, program.id, [case.subject_id], actor=ctx.user.name, role=ctx.user.role,
                                clock=ctx.clock, audit=ctx.audit, why="不再处理 / not pursued")
            s.add(case)
            continue
        wdays = working_days_for(s, defn)
        if new == LadderState.RECTIFYING:
            due = wdays.deadline(today, defn.rules.rectification_working_days)
            for k, v in due_columns(due).items():
                setattr(case, k, v)
        elif new == LadderState.SUSPENDED:
            _set_application(s, program.id, case.subject_id, "suspend", ctx)
            due = wdays.deadline(today, defn.rules.suspension_working_days)
            for k, v in due_columns(due).items():
                setattr(case, k, v)
        # SIGN_REMOVED (摘除标识牌, 001 §三(四)) moves no application: the institution leaves the published list
        # at its next (daily) republication, as a suspension's mark appears, and its obligations go on.
        elif new == LadderState.DISQUALIFIED:
            case.ended_at = now
            if case.subject_type == SubjectType.INSTITUTION:
                _set_application(s, program.id, case.subject_id, "disqualify", ctx)
                s.flush()
                publish_list(s, program, defn, "institutions", clock=ctx.clock, actor=ctx.user.name,
                             reason=f"经审批：{ctx.gate.title}")
            else:
                _disqualify_enterprise(ctx, program, defn, case, violation, today)
        s.add(case)
        _notify(s, program, case, step, violation, today, now)


def _disqualify_enterprise(ctx: DecisionContext, program: Program, defn: ProgramDefinition, case: EnforcementCase,
                           violation: Violation | None, today: date) -> None:
    s = ctx.session
    enterprise = s.get(Enterprise, case.subject_id)
    assert enterprise is not None
    # Another ladder (another rule) may have disqualified it already, or it left or was barred: the state stays,
    # and the removal below finds nothing left to do twice (its notices are keyed, ended rows are not ended again).
    if (enterprise.state, "disqualify") in ENTERPRISE.table:
        new, record = ENTERPRISE.apply(case.subject_id, enterprise.state, "disqualify", actor=ctx.user.name,
                                       role=ctx.user.role, at=ctx.clock.now(), program_id=program.id,
                                       reason=_reason(case, violation), data={"gate_id": ctx.gate.id})
        ctx.audit.append(record)
        enterprise.state = new
        s.add(enterprise)
        s.flush()
    remove_enterprise_products(s, program, defn, enterprise, on=today, why=_reason(case, violation), actor=ctx.user.name,
                               role=ctx.user.role, clock=ctx.clock)
    if ctx.options.get("bad_record"):
        record_bad_record(s, program, defn, enterprise, starts_on=today, reason=_reason(case, violation),
                          actor=ctx.user.name, role=ctx.user.role, at=ctx.clock.now(), audit=ctx.audit)


def record_bad_record(s: Session, program: Program, defn: ProgramDefinition, enterprise: Enterprise, *,
                      starts_on: date, reason: str, actor: str, role: Role, at: datetime,
                      audit: list[AuditRecord]) -> BadRecord:
    """不良记录 (004 §六(十五)): the enterprise is barred for the program's `bad_record_ban_years` from `starts_on`.

    The record is kept (the enterprise's page and the audit trail show it); the enterprise's state becomes barred
    with the last barred day, which the declaration import checks.
    """
    assert program.id is not None and enterprise.id is not None
    until = last_barred_day(starts_on, defn.rules.bad_record_ban_years)
    bad = BadRecord(program_id=program.id, enterprise_id=enterprise.id, starts_on=starts_on, barred_until=until,
                    reason=reason[:500], recorded_by=actor, recorded_at=at)
    s.add(bad)
    data = {"starts_on": starts_on.isoformat(), "barred_until": until.isoformat()}
    if enterprise.state == EnterpriseState.BARRED:  # a second bad record: the bar runs to the later last day
        audit.append(AuditRecord(entity=ENTERPRISE.entity, entity_id=enterprise.id, action="bar",
                                 from_state=enterprise.state.value, to_state=enterprise.state.value, actor=actor,
                                 role=role, at=at, reason=reason[:500], program_id=program.id, data=data))
    else:
        new, record = ENTERPRISE.apply(enterprise.id, enterprise.state, "bar", actor=actor, role=role, at=at,
                                       reason=reason[:500], program_id=program.id, data=data)
        audit.append(record)
        enterprise.state = new
    enterprise.barred_until = max(until, enterprise.barred_until or until)
    s.add(enterprise)
    s.flush()
    return bad


__all__ = ["EnterpriseState", "decide_enforcement", "record_bad_record"]
