"""The ladders as people read them (CLI, web gate page): subject, rule, where it stands, evidence, open gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.clock import SHANGHAI
from models.compliance.codes import SUBJECT_LABELS, SubjectType, rule_label
from models.enforcement import LADDER_LABELS, MANUAL_LABEL, EnforcementCase
from models.enrollment import Gate
from models.operations import Violation
from models.states import GateKind, GateState
from tasks.enforcement.ladder import subject_names
from tasks.programs import get_program


@dataclass(frozen=True)
class LadderRow:
    id: int
    subject: str  # 医药机构 测试大药房
    district: str | None
    rule: str  # the rule's Chinese name
    state: str  # the ladder's Chinese state
    evidence: dict[str, Any]
    detected_on: date
    due_on: date | None
    due_provisional: bool
    open_gate_id: int | None
    started_by: str | None = None  # who started it by hand; None: the compliance pass

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "subject": self.subject, "district": self.district, "rule": self.rule,
                "state": self.state, "evidence": self.evidence, "detected_on": self.detected_on.isoformat(),
                "due_on": self.due_on.isoformat() if self.due_on else None, "due_provisional": self.due_provisional,
                "open_gate_id": self.open_gate_id, "started_by": self.started_by}


def ladder_rows(session: Session, program_id: int, slug: str, *, case_ids: list[int] | None = None,
                district: str | None = None) -> list[LadderRow]:
    query = (select(EnforcementCase, Violation)
             .outerjoin(Violation, col(Violation.id) == col(EnforcementCase.violation_id))
             .where(col(EnforcementCase.program_id) == program_id))
    if case_ids is not None:
        query = query.where(col(EnforcementCase.id).in_(case_ids))
    if district is not None:
        query = query.where(col(EnforcementCase.district) == district)
    pairs = list(session.execute(query.order_by(col(EnforcementCase.id))).tuples())
    cases = [c for c, _ in pairs]
    names = subject_names(session, cases)
    gates = {g.subject_id: g.id for g in session.execute(select(Gate).where(
        col(Gate.program_id) == program_id, col(Gate.kind) == GateKind.ENFORCEMENT,
        col(Gate.state) == GateState.OPEN)).scalars()}
    return [LadderRow(
        id=c.id or 0, subject=f"{SUBJECT_LABELS[SubjectType(c.subject_type)]} "
                              f"{names.get((SubjectType(c.subject_type).value, c.subject_id), c.subject_id)}",
        district=c.district, rule=rule_label(v.rule) if v is not None else MANUAL_LABEL, state=LADDER_LABELS[c.state],
        evidence=_evidence(c, v), detected_on=v.detected_on if v is not None else c.opened_at.astimezone(SHANGHAI).date(),
        due_on=c.due_on, due_provisional=c.due_on_provisional, started_by=c.started_by,
        open_gate_id=gates.get(c.id)) for c, v in pairs]


def _evidence(case: EnforcementCase, violation: Violation | None) -> dict[str, Any]:
    """The violation's evidence, and the reason of the person who started the ladder by hand."""
    evidence = dict(violation.evidence or {}) if violation is not None else {}
    if case.reason:
        evidence["立案理由"] = case.reason
    return evidence


def list_ladders(engine: Engine, slug: str, *, district: str | None = None) -> list[LadderRow]:
    with Session(engine) as session:
        program, _ = get_program(session, slug)
        assert program.id is not None
        return ladder_rows(session, program.id, slug, district=district)
