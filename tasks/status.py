"""Where a program stands today: its timeline, open windows, and counts per state for each phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from models.catalog import EnterpriseDeclaration, ListVersion
from models.clock import Clock
from models.enrollment import Application, Batch, Gate
from models.operations import Contract, PlatformAccount
from models.program import AllianceInvitation
from models.program_definition import PhaseName
from models.states import GateState
from tasks.programs import get_program


@dataclass
class PhaseStatus:
    phase: str
    label: str
    opens: date
    closes: date | None
    window: str  # not_yet_open / open / closed
    counts: dict[str, int] = field(default_factory=dict)
    open_gates: int = 0


@dataclass
class ProgramStatus:
    slug: str
    name: str
    today: date
    simulated: bool
    phases: list[PhaseStatus]
    lists: dict[str, int]
    outbox: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "program": self.slug, "name": self.name, "today": self.today.isoformat(), "simulated": self.simulated,
            "open_windows": [p.phase for p in self.phases if p.window == "open"],
            "phases": [{"phase": p.phase, "label": p.label, "opens": p.opens.isoformat(),
                        "closes": p.closes.isoformat() if p.closes else None, "window": p.window,
                        "counts": p.counts, "open_gates": p.open_gates} for p in self.phases],
            "lists": self.lists, "outbox": self.outbox,
        }


def _grouped(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(getattr(k, "value", k)): int(n) for k, n in rows}


def phase_counts(session: Session, program_id: int) -> dict[PhaseName, dict[str, int]]:
    batches = _grouped(session, Batch.state, Batch.program_id == program_id)
    enrollment = _grouped(session, Application.state, Application.program_id == program_id)
    enrollment.update({f"batch_{k}": v for k, v in batches.items()})
    return {
        PhaseName.ALLIANCE: _grouped(session, AllianceInvitation.state, AllianceInvitation.program_id == program_id),
        PhaseName.DRUG_LIST: _grouped(session, EnterpriseDeclaration.state,
                                      EnterpriseDeclaration.program_id == program_id),
        PhaseName.ENROLLMENT: enrollment,
        PhaseName.ACCOUNTS: _grouped(session, PlatformAccount.state, PlatformAccount.program_id == program_id),
        PhaseName.CONTRACTS: _grouped(session, Contract.state, Contract.program_id == program_id),
        PhaseName.CONTINUOUS_REVIEW: {f"batch_{k}": v for k, v in batches.items()},
    }


def program_status(engine: Engine, slug: str, *, clock: Clock, simulated: bool = False) -> ProgramStatus:
    from models.outbox import Notice

    today = clock.today()
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        counts = phase_counts(session, program.id)
        gates = _grouped(session, Gate.phase, Gate.program_id == program.id, Gate.state == GateState.OPEN)
        phases = [
            PhaseStatus(spec.name.value, spec.display_label, spec.window.opens, spec.window.closes,
                        spec.window.state_on(today), counts.get(spec.name, {}), gates.get(spec.name.value, 0))
            for spec in defn.timeline()
        ]
        versions = session.execute(
            select(ListVersion.kind, func.max(ListVersion.number)).where(ListVersion.program_id == program.id)
            .group_by(ListVersion.kind)).all()
        outbox = _grouped(session, Notice.status, Notice.program_id == program.id)
        return ProgramStatus(slug, program.name, today, simulated, phases,
                             {str(getattr(k, "value", k)): int(n) for k, n in versions}, outbox)
