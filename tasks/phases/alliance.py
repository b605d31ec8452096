"""联盟 invitation: letters to the other cities, their answers, and the manager's confirmation."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import select

from core.bulk import insert_ignoring_conflicts, write_audit
from core.db import transaction
from models.clock import Clock
from models.enrollment import Gate
from models.program import AllianceInvitation
from models.program_definition import PhaseName
from models.states import GateKind, GateState, InvitationState, Role
from models.transitions import INVITATION
from models.windows import require_open
from tasks.calendar import working_days_for
from tasks.gates.rows import GateSpec, open_gates
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices
from tasks.programs import get_program, lock_program


@dataclass
class AllianceReport:
    invited: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    gate_opened: bool = False
    open_gate_ids: list[int] = field(default_factory=list)


class UnknownCity(LookupError):
    def __init__(self, city: str, known: list[str]) -> None:
        super().__init__(f"{city} 不在联盟邀请名单中 / {city} was not invited (invited: {'、'.join(known)})")


def reconcile_alliance(engine: Engine, slug: str, *, clock: Clock) -> AllianceReport:
    """Invite every listed city once; when all have answered or the window closed, ask the manager."""
    report = AllianceReport()
    now = clock.now()
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        lock_program(session, program.id, slug=slug, what="reconcile the alliance")  # one reconciler at a time
        spec, phase = defn.alliance, defn.phase(PhaseName.ALLIANCE)
        if spec is None or phase is None or not phase.enabled:
            return report
        state = phase.window.state_on(clock.today())
        if state == "not_yet_open":
            return report
        wdays = working_days_for(session, defn)
        report.invited = insert_ignoring_conflicts(session, AllianceInvitation, [
            {"program_id": program.id, "city": inv.city, "bureau": inv.bureau, "email": inv.email,
             "state": InvitationState.INVITED, "invited_at": now} for inv in spec.invitees], ["program_id", "city"])
        invitations = list(session.exec(select(AllianceInvitation).where(AllianceInvitation.program_id == program.id)))
        deadline = wdays.deadline(clock.today(), spec.response_due_working_days)
        due, provisional = deadline.day, deadline.provisional  # 暂定 in the letter while the year is unofficial
        if phase.window.closes is not None and phase.window.closes < due:
            due, provisional = phase.window.closes, False  # the window's own date is fixed
        enqueue_notices(session, [NoticeDraft(
            key=f"alliance_invitation:{inv.id}", kind="alliance_invitation", recipient_type="city",
            recipient_id=inv.id, recipient_name=inv.bureau, email=inv.email, program_id=program.id,
            context={"program_name": program.name, "city": inv.city, "bureau": inv.bureau,
                     "lead_city": spec.lead_city, "response_due": due.isoformat(),
                     "response_due_provisional": provisional}) for inv in invitations], now)
        for inv in invitations:
            report.counts[inv.state.value] = report.counts.get(inv.state.value, 0) + 1
        accepted = [inv.id for inv in invitations if inv.state == InvitationState.ACCEPTED and inv.id is not None]
        answered_all = all(inv.state != InvitationState.INVITED for inv in invitations)
        if accepted and (answered_all or state == "closed"):
            report.gate_opened = open_gates(session, [GateSpec(
                natural_key=f"{slug}:alliance:confirm", program_id=program.id or 0,
                phase=PhaseName.ALLIANCE.value, kind=GateKind.ALLIANCE_CONFIRMATION,
                title=f"确认联盟成员（{len(accepted)} 个城市同意加入）", subject_type="program",
                subject_id=program.id, items=accepted, decider_role=Role.PROGRAM_MANAGER,
                due=wdays.deadline(clock.today(), 2))], clock) > 0
        report.open_gate_ids = [g for g in session.exec(select(Gate.id).where(
            Gate.program_id == program.id, Gate.phase == PhaseName.ALLIANCE.value,
            Gate.state == GateState.OPEN)).all() if g is not None]
    return report


def respond_to_invitation(engine: Engine, slug: str, city: str, *, accept: bool, clock: Clock,
                          actor: str = "system") -> InvitationState:
    """Record a city's answer; refused outside the alliance window."""
    now = clock.now()
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        require_open(defn, PhaseName.ALLIANCE, now)
        invitations = list(session.exec(select(AllianceInvitation).where(AllianceInvitation.program_id == program.id)))
        inv = next((i for i in invitations if i.city == city), None)
        if inv is None:
            raise UnknownCity(city, [i.city for i in invitations])
        new, record = INVITATION.apply(inv.id or 0, inv.state, "accept" if accept else "decline", actor=actor,
                                       role=Role.SYSTEM, at=now, program_id=program.id)
        inv.state, inv.responded_at = new, now
        session.add(inv)
        write_audit(session, [record])
        return new
