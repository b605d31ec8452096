"""Reconciling the enforcement ladders of a program: open one per violation that calls for it, end the cured
ones, climb a rung when a deadline passes, and open the gate each waiting rung needs. Re-runnable: a ladder is
unique per violation, a gate per (ladder, rung)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, exists, func, literal, or_, select, update
from sqlalchemy import case as sa_case
from sqlmodel import Session, col

from core.bulk import insert_from_select, table_of, write_audit
from core.db import transaction
from models.calendar import NO_DUE
from models.catalog import Enterprise
from models.clock import Clock
from models.compliance.codes import SubjectType, ViolationState, rule_label
from models.enforcement import (
    FINAL,
    GATE_STEP,
    LADDER_PLANS,
    MANUAL_LABEL,
    STEP_LABELS,
    EnforcementCase,
    LadderState,
    decider_of,
    ladder_for,
    plan_for,
    seeds_of,
)
from models.enrollment import Application, Gate, Institution
from models.operations import Violation
from models.program import Program
from models.program_definition import PhaseName, ProgramDefinition
from models.states import ApplicationState, GateKind, GateState, Role
from models.transitions import APPLICATION, GATE, AuditRecord
from models.workdays import WorkingDays
from tasks.calendar import working_days_for
from tasks.enforcement.exit import apply_due_exits
from tasks.gates.rows import GateSpec, open_gates
from tasks.programs import get_program, lock_program

CASE, VIOL, GATE_T = table_of(EnforcementCase), table_of(Violation), table_of(Gate)
APP_T = table_of(Application)


@dataclass
class EnforcementReport:
    opened: int = 0
    cured: int = 0
    escalated: int = 0
    gates_opened: int = 0
    exits: int = 0  # approved enterprise exits that took effect today
    open_gate_ids: list[int] = field(default_factory=list)


def gate_key(slug: str, case_id: int, state: LadderState) -> str:
    return f"{slug}:enforcement:{case_id}:{state.value}"


def subject_names(session: Session, cases: list[EnforcementCase]) -> dict[tuple[str, int], str]:
    """(subject type, id) → name, two queries whatever the number of ladders."""
    ids = {t: [c.subject_id for c in cases if c.subject_type == t] for t in SubjectType}
    names: dict[tuple[str, int], str] = {}
    if ids[SubjectType.INSTITUTION]:
        names.update(((SubjectType.INSTITUTION.value, int(i)), n) for i, n in session.execute(
            select(col(Institution.id), col(Institution.name)).where(col(Institution.id).in_(ids[SubjectType.INSTITUTION]))))
    if ids[SubjectType.ENTERPRISE]:
        names.update(((SubjectType.ENTERPRISE.value, int(i)), n) for i, n in session.execute(
            select(col(Enterprise.id), col(Enterprise.name)).where(col(Enterprise.id).in_(ids[SubjectType.ENTERPRISE]))))
    return names


def _same_matter(case_violation: Any, violation: Any) -> ColumnElement[bool]:
    """Two violations are one matter when the same subject breaks the same rule (a pharmacy's prices of 3 drugs)."""
    return and_(case_violation.c.program_id == violation.c.program_id,
                case_violation.c.subject_type == violation.c.subject_type,
                case_violation.c.subject_id == violation.c.subject_id, case_violation.c.rule == violation.c.rule)


def _open_ladders(session: Session, program_id: int, seeds: tuple[str, ...], now_at: object) -> int:
    """One ladder per matter (subject × rule) whose seed prescribes enforcement, at the plan's first rung.

    Further open violations of the same matter feed the ladder already running instead of opening more gates; a
    matter whose ladder was dropped while it is still open is not asked again. INSERT … SELECT, by key.
    """
    plans = {rule.value: plan for rule in LADDER_PLANS if (plan := plan_for(rule, seeds)) is not None}
    if not plans:
        return 0
    cand, fed = VIOL.alias("cand"), VIOL.alias("fed")
    pending = exists(select(CASE.c.id).select_from(CASE.join(fed, fed.c.id == CASE.c.violation_id)).where(
        CASE.c.program_id == program_id, _same_matter(fed, cand),
        or_(CASE.c.state.notin_([s.value for s in FINAL]),
            and_(CASE.c.state == LadderState.DROPPED.value, fed.c.state == ViolationState.OPEN.value))))
    first_of_matter = (select(func.min(cand.c.id)).where(
        cand.c.program_id == program_id, cand.c.state == ViolationState.OPEN.value,
        cand.c.rule.in_(list(plans)), ~pending)
        .group_by(cand.c.subject_type, cand.c.subject_id, cand.c.rule))
    first_rung = sa_case({r: p.first.value for r, p in plans.items()}, value=VIOL.c.rule,
                         else_=LadderState.PROPOSED.value)
    return insert_from_select(
        session, CASE, ["program_id", "violation_id", "subject_type", "subject_id", "district", "state", "opened_at",
                        "due_on_provisional"],
        select(VIOL.c.program_id, VIOL.c.id, VIOL.c.subject_type, VIOL.c.subject_id, VIOL.c.district,
               first_rung, literal(now_at), literal(False))
        .where(VIOL.c.program_id == program_id, VIOL.c.id.in_(first_of_matter)),
        conflict_key=["violation_id"])


def lift_suspension(session: Session, program_id: int, institution_ids: list[int], *, actor: str, role: Role,
                    clock: Clock, audit: list[AuditRecord], why: str) -> None:
    """Suspended institutions run again (the ladder that suspended them ended)."""
    if not institution_ids:
        return
    for app_id in session.execute(select(APP_T.c.id).where(
            APP_T.c.program_id == program_id, APP_T.c.institution_id.in_(institution_ids),
            APP_T.c.state == ApplicationState.SUSPENDED.value)).scalars():
        _, record = APPLICATION.apply(int(app_id), ApplicationState.SUSPENDED, "reinstate", actor=actor, role=role,
                                      at=clock.now(), reason=why, program_id=program_id)
        audit.append(record)
    session.connection().execute(update(APP_T).where(
        APP_T.c.program_id == program_id, APP_T.c.institution_id.in_(institution_ids),
        APP_T.c.state == ApplicationState.SUSPENDED.value).values(state=ApplicationState.RUNNING.value))


def _end_cured(session: Session, program: Program, seeds: tuple[str, ...], clock: Clock,
               audit: list[AuditRecord]) -> int:
    """A matter cured (its violations all closed by the compliance pass) ends its ladder wherever it stands: a
    suspension is lifted, a removed sign comes back at the list's next republication."""
    assert program.id is not None
    sibling = VIOL.alias("sibling")
    still_open = exists(select(sibling.c.id).where(_same_matter(sibling, VIOL), sibling.c.state == ViolationState.OPEN.value))
    pairs = list(session.execute(
        select(EnforcementCase, VIOL.c.rule).join(VIOL, VIOL.c.id == col(EnforcementCase.violation_id))
        .where(col(EnforcementCase.program_id) == program.id, col(EnforcementCase.state).notin_(list(FINAL)),
               VIOL.c.state == ViolationState.CLOSED.value, ~still_open)).tuples())
    cured = [c for c, _ in pairs]
    now = clock.now()
    cured_ids = [c.id for c in cured]
    still_suspended = set(session.execute(select(CASE.c.subject_id).where(  # by another ladder (another rule)
        CASE.c.program_id == program.id, CASE.c.subject_type == SubjectType.INSTITUTION.value,
        CASE.c.state == LadderState.SUSPENDED.value, CASE.c.id.notin_(cured_ids))).scalars()) if cured else set()
    suspended = [c.subject_id for c in cured if c.state == LadderState.SUSPENDED and c.subject_id not in still_suspended]
    for case, rule in pairs:
        new, record = ladder_for(case.subject_type, rule, seeds).apply(case.id or 0, case.state, "cure", actor="system",
                                                          role=Role.SYSTEM, at=now, program_id=program.id,
                                                          reason="违规情形已消除 / the violation was cured")
        audit.append(record)
        case.state, case.ended_at = new, now
        for k, v in NO_DUE.items():
            setattr(case, k, v)
        session.add(case)
    open_gates_of_cured = list(session.execute(select(Gate).where(
        col(Gate.program_id) == program.id, col(Gate.kind) == GateKind.ENFORCEMENT, col(Gate.state) == GateState.OPEN,
        col(Gate.subject_id).in_([c.id for c in cured]))).scalars()) if cured else []
    for gate in open_gates_of_cured:  # the rung's gate has nothing left to decide
        state, record = GATE.apply(gate.id or 0, gate.state, "cancel", actor="system", role=Role.SYSTEM, at=now,
                                   reason="违规情形已消除 / the violation was cured", program_id=program.id)
        audit.append(record)
        session.execute(update(Gate).where(col(Gate.id) == gate.id, col(Gate.version) == gate.version)
                        .values(state=state, version=gate.version + 1))
    lift_suspension(session, program.id, suspended, actor="system", role=Role.SYSTEM, clock=clock, audit=audit,
                    why="整改到位，恢复医保结算 / cured: settlement resumes")
    return len(cured)


def _escalate_overdue(session: Session, program: Program, seeds: tuple[str, ...], today: date, clock: Clock,
                      audit: list[AuditRecord]) -> int:
    """A rectification (or suspension) deadline passed with the violation still open: the next rung's gate."""
    due = list(session.execute(select(EnforcementCase, VIOL.c.rule).outerjoin(
        VIOL, VIOL.c.id == col(EnforcementCase.violation_id)).where(
        col(EnforcementCase.program_id) == program.id,
        col(EnforcementCase.state).in_([LadderState.RECTIFYING, LadderState.SUSPENDED]),
        col(EnforcementCase.due_on) < today)).tuples())
    for case, rule in due:
        new, record = ladder_for(case.subject_type, rule, seeds).apply(case.id or 0, case.state, "deadline_passed", actor="system",
                                                          role=Role.SYSTEM, at=clock.now(), program_id=program.id,
                                                          data={"due_on": str(case.due_on)})
        audit.append(record)
        case.state = new
        for k, v in NO_DUE.items():
            setattr(case, k, v)
        session.add(case)
    return len(due)


def _about(case: EnforcementCase, rules: dict[int, str]) -> str:
    """The rule a ladder follows, or 人工立案 for one a person started on a reason alone."""
    rule = rules.get(case.violation_id) if case.violation_id is not None else None
    return rule_label(rule) if rule is not None else MANUAL_LABEL


def gate_specs(session: Session, program: Program, defn: ProgramDefinition, wdays: WorkingDays, today: date,
               cases: list[EnforcementCase]) -> list[GateSpec]:
    """The gate each waiting rung needs, decided as the program file's approval chain says."""
    assert program.id is not None
    levels: list[str] = [lvl.level for lvl in defn.approval_chain]
    by_level = {lvl.level: lvl.due_working_days for lvl in defn.approval_chain}
    rules = dict(session.execute(select(VIOL.c.id, VIOL.c.rule).where(
        VIOL.c.id.in_([c.violation_id for c in cases if c.violation_id is not None]))).tuples().all()) if cases else {}
    names = subject_names(session, cases)
    deadlines: dict[int, Any] = {}
    specs = []
    for case in cases:
        step = GATE_STEP[case.state]
        role = decider_of(step, case.subject_type, levels)
        days = by_level.get("district" if role == Role.DISTRICT_REVIEWER else "city") or defn.approval_chain[-1].due_working_days
        if days not in deadlines:  # one calendar walk per number of days, not per ladder
            deadlines[days] = wdays.deadline(today, days)
        name = names.get((SubjectType(case.subject_type).value, case.subject_id), str(case.subject_id))
        specs.append(GateSpec(
            natural_key=gate_key(program.slug, case.id or 0, case.state), program_id=program.id,
            phase=PhaseName.CONTINUOUS_REVIEW.value, kind=GateKind.ENFORCEMENT,
            title=f"{STEP_LABELS[step]}：{name}（{_about(case, rules)}）",
            subject_type="enforcement_case", subject_id=case.id, items=[case.id or 0], decider_role=role,
            district=case.district if role == Role.DISTRICT_REVIEWER else None,
            due=deadlines[days]))
    return specs


def reconcile_enforcement(engine: Engine, slug: str, *, clock: Clock) -> EnforcementReport:
    """Do what the ladders need today; safe to call any number of times."""
    report = EnforcementReport()
    audit: list[AuditRecord] = []
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        lock_program(session, program.id, slug=slug, what="enforcement pass")  # one pass of a program at a time
        today, wdays = clock.today(), working_days_for(session, defn)
        seeds = seeds_of(defn.sources)
        report.opened = _open_ladders(session, program.id, seeds, clock.now())
        report.cured = _end_cured(session, program, seeds, clock, audit)
        report.escalated = _escalate_overdue(session, program, seeds, today, clock, audit)
        report.exits = apply_due_exits(session, program, defn, clock, audit)
        session.flush()
        has_gate = select(GATE_T.c.natural_key).where(GATE_T.c.program_id == program.id,
                                                      GATE_T.c.kind == GateKind.ENFORCEMENT.value)
        existing = set(session.execute(has_gate).scalars())
        waiting = [c for c in session.execute(select(EnforcementCase).where(
            col(EnforcementCase.program_id) == program.id,
            col(EnforcementCase.state).in_(list(GATE_STEP)))).scalars()
            if gate_key(program.slug, c.id or 0, c.state) not in existing]  # a re-run computes no gate twice
        report.gates_opened = open_gates(session, gate_specs(session, program, defn, wdays, today, waiting), clock)
        write_audit(session, audit)
        report.open_gate_ids = [int(g) for g in session.execute(select(GATE_T.c.id).where(
            GATE_T.c.program_id == program.id,
            GATE_T.c.kind.in_([GateKind.ENFORCEMENT.value, GateKind.ENTERPRISE_EXIT.value]),
            GATE_T.c.state == GateState.OPEN.value)).scalars()]
    return report
