"""A ladder started by hand: a program manager (or the institution's district reviewer) cites a violation the pass
found — any rule, also one that opens no ladder by itself (`NO_LADDER`) — or only a reason (a complaint, an
inspection), against an institution or an enterprise. Its first rung's gate opens at once; audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from core.bulk import write_audit
from core.db import transaction
from models.catalog import Enterprise
from models.clock import Clock
from models.compliance.codes import SubjectType, ViolationState
from models.enforcement import FINAL, EnforcementCase, LadderState, plan_for, seeds_of
from models.enrollment import Application, Gate, Institution
from models.operations import Violation
from models.program import User
from models.states import Role
from models.transitions import AuditRecord
from tasks.calendar import working_days_for
from tasks.enforcement.ladder import gate_specs
from tasks.enforcement.lookup import find_enterprise
from tasks.gates.rows import GateError, find_user, open_gates
from tasks.programs import get_program


class StartRefused(GateError):
    """A ladder that cannot be started: shown as a message in Chinese and English."""


@dataclass(frozen=True)
class StartedLadder:
    case_id: int
    gate_id: int
    subject_name: str


def _institution(session: Session, program_id: int, code_or_name: str) -> Institution:
    """A participant of the program, by its insurance code or its exact name."""
    inst: Institution | None = session.execute(select(Institution).join(Application, col(Application.institution_id) == Institution.id)
                           .where(col(Application.program_id) == program_id,
                                  (col(Institution.insurance_code) == code_or_name)
                                  | (col(Institution.name) == code_or_name))).scalars().first()
    if inst is None:
        raise StartRefused(f"本项目没有医保编码或名称为“{code_or_name}”的医药机构 / "
                           f"no institution {code_or_name!r} takes part in this program")
    return inst


def _check_authority(user: User, subject_type: SubjectType, district: str | None) -> None:
    """Managers start any ladder; a district reviewer only against an institution of its own districts."""
    if user.role == Role.PROGRAM_MANAGER:
        return
    if user.role == Role.DISTRICT_REVIEWER and subject_type == SubjectType.INSTITUTION and district in user.districts:
        return
    raise StartRefused(f"{user.name} 无权对该对象启动处理程序（仅项目管理员，或机构所在区县的审核员） / "
                       f"{user.name} may not start this ladder: a program manager, or the institution's district "
                       "reviewer, may")


def start_ladder(engine: Engine, slug: str, *, user_name: str, clock: Clock, reason: str | None,
                 violation_id: int | None = None, institution: str | None = None,
                 enterprise: str | None = None) -> StartedLadder:
    """Open a ladder at its first rung and the rung's gate, in one transaction; a repeated request is refused."""
    reason = (reason or "").strip() or None
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        user = find_user(session, user_name)
        violation: Violation | None = None
        if violation_id is not None:
            violation = session.get(Violation, violation_id)
            if violation is None or violation.program_id != program.id or violation.state != ViolationState.OPEN:
                raise StartRefused(f"本项目没有编号为 {violation_id} 的未整改违规 / "
                                   f"no open violation {violation_id} in this program")
            if violation.subject_type == SubjectType.PRODUCT:
                raise StartRefused("产品挂网问题不对人采取处理措施 / a product's listing is not a ladder's subject")
            subject_type, subject_id = SubjectType(violation.subject_type), violation.subject_id
        elif (institution is None) == (enterprise is None):
            raise StartRefused("请指定一个违规编号，或一家医药机构或企业 / name a violation, or one institution or "
                               "enterprise")
        elif reason is None:
            raise StartRefused("未引用违规时须说明立案理由 / without a violation, give the reason")
        elif institution is not None:
            subject_type, subject_id = SubjectType.INSTITUTION, _institution(session, program.id, institution).id or 0
        else:
            subject_type, subject_id = SubjectType.ENTERPRISE, find_enterprise(session, enterprise or "").id or 0
        inst = session.get(Institution, subject_id) if subject_type == SubjectType.INSTITUTION else None
        district = inst.district if inst is not None else None
        ent = session.get(Enterprise, subject_id) if subject_type == SubjectType.ENTERPRISE else None
        name = inst.name if inst is not None else ent.name if ent is not None else str(subject_id)
        _check_authority(user, subject_type, district)
        active = session.execute(select(EnforcementCase).where(
            col(EnforcementCase.program_id) == program.id, col(EnforcementCase.subject_type) == subject_type,
            col(EnforcementCase.subject_id) == subject_id, col(EnforcementCase.state).notin_(list(FINAL)),
            (col(EnforcementCase.violation_id) == violation_id) if violation_id is not None
            else col(EnforcementCase.violation_id).is_(None))).scalars().first()
        taken = violation is not None and session.execute(select(col(EnforcementCase.id)).join(
            Violation, col(Violation.id) == col(EnforcementCase.violation_id)).where(
            (col(EnforcementCase.violation_id) == violation.id)
            | (col(EnforcementCase.state).notin_(list(FINAL)) & (col(Violation.rule) == violation.rule)
               & (col(Violation.subject_type) == violation.subject_type)
               & (col(Violation.subject_id) == violation.subject_id)))).first() is not None  # the same matter
        if active is not None or taken:
            raise StartRefused(f"“{name}”已有{'该违规的' if violation_id else '人工立案的'}处理程序 / "
                               f"{name} already has this ladder")
        plan = plan_for(violation.rule, seeds_of(defn.sources)) if violation is not None else None
        case = EnforcementCase(program_id=program.id, violation_id=violation_id, subject_type=subject_type,
                               subject_id=subject_id, district=district,
                               state=plan.first if plan is not None else LadderState.PROPOSED,
                               reason=reason[:500] if reason else None, started_by=user.name, opened_at=clock.now())
        session.add(case)
        session.flush()
        write_audit(session, [AuditRecord(
            entity="enforcement_case", entity_id=case.id or 0, action="open", from_state=None,
            to_state=case.state.value, actor=user.name, role=user.role, at=clock.now(), reason=reason,
            program_id=program.id, data={"violation_id": violation_id, "subject": subject_type.value,
                                         "subject_id": subject_id, "by_hand": True})])
        open_gates(session, gate_specs(session, program, defn, working_days_for(session, defn), clock.today(),
                                       [case]), clock)
        gate_id = session.execute(select(col(Gate.id)).where(
            col(Gate.program_id) == program.id, col(Gate.subject_type) == "enforcement_case",
            col(Gate.subject_id) == case.id)).scalar_one()
        return StartedLadder(case.id or 0, int(gate_id), name)
