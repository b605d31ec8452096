"""Enterprise list collection: a review gate per declaration, then the manager approves the list."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.bulk import write_audit
from core.db import transaction
from models.catalog import Enterprise, EnterpriseDeclaration, list_gate_key
from models.clock import Clock
from models.enrollment import Gate
from models.program_definition import PhaseName
from models.states import DeclarationState, GateKind, GateState, ListKind, Role
from models.transitions import GATE
from tasks.calendar import working_days_for
from tasks.gates.rows import GateSpec, open_gates
from tasks.lists.versions import content_hash, drug_entries, latest_version
from tasks.programs import get_program, lock_program


@dataclass
class DrugListReport:
    gates_opened: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    list_gate: bool = False
    published_versions: int = 0
    open_gate_ids: list[int] = field(default_factory=list)


def _cancel_stale_list_gates(session: Session, program_id: int, current_key: str, clock: Clock) -> None:
    """A list gate opened for content that has since changed can no longer be approved: cancel it."""
    stale = session.exec(select(Gate).where(Gate.program_id == program_id, Gate.kind == GateKind.LIST_APPROVAL,
                                            Gate.state == GateState.OPEN, Gate.natural_key != current_key)).all()
    for gate in stale:
        new, record = GATE.apply(gate.id or 0, gate.state, "cancel", actor="system", role=Role.SYSTEM,
                                 at=clock.now(), reason="清单内容已变化 / the list changed", program_id=program_id)
        gate.state = new
        gate.version += 1
        session.add(gate)
        write_audit(session, [record])


def reconcile_drug_list(engine: Engine, slug: str, *, clock: Clock) -> DrugListReport:
    """Open review gates for new declarations; ask for list approval when the candidate list changed.

    The list is put to the manager once the window has closed (Shenyang) or at any time under
    rolling admission (Jiangxi "即申即纳、动态更新"), and again in continuous review whenever accepted
    declarations change it.
    """
    report = DrugListReport()
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        lock_program(session, program.id, slug=slug, what="reconcile the drug list")  # one reconciler at a time
        phase = defn.phase(PhaseName.DRUG_LIST)
        if phase is None or not phase.enabled or phase.window.state_on(clock.today()) == "not_yet_open":
            return report
        wdays = working_days_for(session, defn)
        today = clock.today()
        declarations = session.exec(
            select(EnterpriseDeclaration, Enterprise).join(Enterprise, Enterprise.id == EnterpriseDeclaration.enterprise_id)  # type: ignore[arg-type]
            .where(EnterpriseDeclaration.program_id == program.id)).all()
        specs = []
        for decl, ent in declarations:
            report.counts[decl.state.value] = report.counts.get(decl.state.value, 0) + 1
            if decl.state == DeclarationState.SUBMITTED and decl.id is not None:
                specs.append(GateSpec(
                    natural_key=f"{slug}:drug_list:declaration:{decl.id}", program_id=program.id,
                    phase=PhaseName.DRUG_LIST.value, kind=GateKind.DECLARATION_REVIEW,
                    title=f"{ent.name} 申报品种审核", subject_type="declaration", subject_id=decl.id,
                    items=[decl.id], decider_role=Role.PROGRAM_MANAGER,
                    due=wdays.deadline(today, defn.gates.declaration_review_working_days)))
        report.gates_opened = open_gates(session, specs, clock)
        ready = phase.window.state_on(today) == "closed" or defn.rules.enterprise_admission == "rolling"
        if ready:
            entries = drug_entries(session, program.id)
            digest = content_hash(entries)
            latest = latest_version(session, program.id, ListKind.DRUGS)
            if entries and (latest is None or latest.content_hash != digest):
                _cancel_stale_list_gates(session, program.id, list_gate_key(slug, digest), clock)
                report.list_gate = open_gates(session, [GateSpec(
                    natural_key=list_gate_key(slug, digest), program_id=program.id,
                    phase=PhaseName.DRUG_LIST.value, kind=GateKind.LIST_APPROVAL,
                    title=f"“三进”集采药品清单发布审批（{len(entries)} 个品种）", subject_type="drug_list",
                    subject_id=None, items=[1], decider_role=Role.PROGRAM_MANAGER,
                    due=wdays.deadline(today, defn.gates.list_approval_working_days))], clock) > 0
        report.open_gate_ids = [g for g in session.exec(select(Gate.id).where(
            Gate.program_id == program.id, Gate.phase == PhaseName.DRUG_LIST.value,
            Gate.state == GateState.OPEN)).all() if g is not None]
    return report
