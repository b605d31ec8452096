"""Enterprise exit (001 §五): an enterprise whose agreement ended applies to leave; the program manager approves
at a gate; on the exit date (not before) its products leave the list, the same notices and contract ends follow
as for a disqualification."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from core.bulk import insert_ignoring_conflicts, write_audit
from core.db import transaction
from models.catalog import Enterprise
from models.clock import Clock
from models.enforcement import EXIT, EnterpriseExit, ExitState
from models.program import Program
from models.program_definition import PhaseName, ProgramDefinition
from models.states import EnterpriseState, GateKind, Role
from models.transitions import ENTERPRISE, AuditRecord
from tasks.calendar import working_days_for
from tasks.enforcement.lookup import ManagersOnly, find_enterprise
from tasks.enforcement.removal import remove_enterprise_products
from tasks.gates.rows import DecisionContext, GateError, GateSpec, find_user, open_gates
from tasks.programs import get_program


class ExitRefused(GateError):
    pass


def request_exit(engine: Engine, slug: str, enterprise_name: str, *, exits_on: date, reason: str, user_name: str,
                 clock: Clock) -> int:
    """Record the application and open the manager's gate (asking twice opens one); returns the gate's id."""
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        user = find_user(session, user_name)
        if user.role != Role.PROGRAM_MANAGER:
            raise ManagersOnly(user_name)
        if not defn.rules.enterprise_exit_allowed:
            raise ExitRefused("本项目不允许企业申请退出 / this program does not allow enterprises to exit")
        enterprise = find_enterprise(session, enterprise_name)
        if enterprise.state != EnterpriseState.ACTIVE:
            raise ExitRefused(f"“{enterprise.name}”当前状态为{enterprise.state.value}，不能申请退出 / "
                              f"the enterprise is {enterprise.state.value}: it cannot apply to exit")
        if not reason.strip():
            raise ExitRefused("请说明退出理由 / give the reason for the exit")
        new = insert_ignoring_conflicts(session, EnterpriseExit, [{
            "program_id": program.id, "enterprise_id": enterprise.id, "exits_on": exits_on, "reason": reason[:500],
            "state": ExitState.REQUESTED, "requested_by": user.name, "requested_at": clock.now()}],
            ["program_id", "enterprise_id", "exits_on"])
        exit_row = session.execute(select(EnterpriseExit).where(
            col(EnterpriseExit.program_id) == program.id, col(EnterpriseExit.enterprise_id) == enterprise.id,
            col(EnterpriseExit.exits_on) == exits_on)).scalar_one()
        if new:  # who recorded the application, audited once
            write_audit(session, [AuditRecord(
                entity=EXIT.entity, entity_id=exit_row.id or 0, action="open", from_state=None,
                to_state=exit_row.state.value, actor=user.name, role=user.role, at=clock.now(), reason=reason[:500],
                program_id=program.id, data={"enterprise_id": enterprise.id, "exits_on": exits_on.isoformat()})])
        key = f"{slug}:enterprise_exit:{exit_row.id}"
        open_gates(session, [GateSpec(
            natural_key=key, program_id=program.id, phase=PhaseName.CONTINUOUS_REVIEW.value,
            kind=GateKind.ENTERPRISE_EXIT, title=f"企业退出：{enterprise.name}（自{exits_on}起）",
            subject_type="enterprise_exit", subject_id=exit_row.id, items=[exit_row.id or 0],
            decider_role=Role.PROGRAM_MANAGER,
            due=working_days_for(session, defn).deadline(clock.today(), defn.approval_chain[-1].due_working_days))],
            clock)
        from models.enrollment import Gate

        gate_id = session.execute(select(col(Gate.id)).where(col(Gate.natural_key) == key)).scalar_one()
        return int(gate_id)


def decide_exit(ctx: DecisionContext) -> None:
    """Approve: the exit takes effect on its date (today if that has come); reject: the enterprise stays."""
    s = ctx.session
    program = s.get(Program, ctx.gate.program_id)
    assert program is not None
    for exit_id in ctx.approved + ctx.rejected:
        row = s.get(EnterpriseExit, exit_id)
        assert row is not None
        new, record = EXIT.apply(exit_id, row.state, "approve" if exit_id in ctx.approved else "reject",
                                 actor=ctx.user.name, role=ctx.user.role, at=ctx.clock.now(),
                                 reason=ctx.reasons.get(exit_id), program_id=program.id,
                                 data={"exits_on": row.exits_on.isoformat()})
        ctx.audit.append(record)
        row.state = new
        s.add(row)
    s.flush()
    apply_due_exits(s, program, ProgramDefinition.model_validate(program.definition), ctx.clock, ctx.audit)


def apply_due_exits(session: Session, program: Program, defn: ProgramDefinition, clock: Clock,
                    audit: list[AuditRecord]) -> int:
    """Approved exits whose date has come: the enterprise leaves, its products leave the list on that date."""
    due = list(session.execute(select(EnterpriseExit).where(
        col(EnterpriseExit.program_id) == program.id, col(EnterpriseExit.state) == ExitState.APPROVED,
        col(EnterpriseExit.exits_on) <= clock.today())).scalars())
    for row in due:
        enterprise = session.get(Enterprise, row.enterprise_id)
        assert enterprise is not None
        if enterprise.state == EnterpriseState.ACTIVE:
            new, record = ENTERPRISE.apply(row.enterprise_id, enterprise.state, "exit", actor="system",
                                           role=Role.SYSTEM, at=clock.now(), reason=row.reason,
                                           program_id=program.id, data={"exit_id": row.id})
            audit.append(record)
            enterprise.state = new
            session.add(enterprise)
            session.flush()
            remove_enterprise_products(session, program, defn, enterprise, on=row.exits_on,
                                       why=f"企业申请退出：{row.reason}", actor="system", role=Role.SYSTEM, clock=clock)
        state, record = EXIT.apply(row.id or 0, row.state, "take_effect", actor="system", role=Role.SYSTEM,
                                   at=clock.now(), program_id=program.id)
        audit.append(record)
        row.state = state
        session.add(row)
    return len(due)
