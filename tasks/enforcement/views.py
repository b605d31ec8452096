"""The ladders as people read them (CLI, web gate page): subject, rule, where it stands, evidence, open gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.catalog import Enterprise, EnterpriseDeclaration, Product
from models.clock import SHANGHAI
from models.compliance.codes import SUBJECT_LABELS, SubjectType, rule_label
from models.enforcement import LADDER_LABELS, MANUAL_LABEL, BadRecord, EnforcementCase, EnterpriseExit
from models.enrollment import Gate
from models.labels import DECLARATION_STATE_LABELS, ENTERPRISE_STATE_LABELS, EXIT_STATE_LABELS
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
                district: str | None = None, districts: list[str] | None = None,
                subject: tuple[SubjectType, int] | None = None) -> list[LadderRow]:
    query = (select(EnforcementCase, Violation)
             .outerjoin(Violation, col(Violation.id) == col(EnforcementCase.violation_id))
             .where(col(EnforcementCase.program_id) == program_id))
    if case_ids is not None:
        query = query.where(col(EnforcementCase.id).in_(case_ids))
    if district is not None:
        query = query.where(col(EnforcementCase.district) == district)
    if districts is not None:  # a district reviewer's own districts
        query = query.where(col(EnforcementCase.district).in_(districts))
    if subject is not None:
        query = query.where(col(EnforcementCase.subject_type) == subject[0], col(EnforcementCase.subject_id) == subject[1])
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


@dataclass(frozen=True)
class EnterpriseView:
    """An enterprise as the manager reads it: products, state and bar, declarations, bad records, exits, ladders."""

    enterprise: Enterprise
    state: str  # Chinese
    barred_until: date | None
    barred_today: bool
    products: list[Product]
    declarations: list[tuple[EnterpriseDeclaration, str]]  # with the Chinese state
    bad_records: list[BadRecord]
    exits: list[tuple[EnterpriseExit, str]]
    ladders: list[LadderRow]


def enterprise_view(session: Session, program_id: int, slug: str, enterprise_id: int, today: date) -> EnterpriseView | None:
    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        return None
    products = list(session.execute(select(Product).where(col(Product.enterprise_id) == enterprise_id)
                                    .order_by(col(Product.drug_code))).scalars())
    declarations = [(d, DECLARATION_STATE_LABELS[d.state.value]) for d in session.execute(
        select(EnterpriseDeclaration).where(col(EnterpriseDeclaration.program_id) == program_id,
                                            col(EnterpriseDeclaration.enterprise_id) == enterprise_id)
        .order_by(col(EnterpriseDeclaration.id))).scalars()]
    bad_records = list(session.execute(select(BadRecord).where(col(BadRecord.enterprise_id) == enterprise_id)
                                       .order_by(col(BadRecord.starts_on))).scalars())
    exits = [(e, EXIT_STATE_LABELS[e.state.value]) for e in session.execute(
        select(EnterpriseExit).where(col(EnterpriseExit.program_id) == program_id,
                                     col(EnterpriseExit.enterprise_id) == enterprise_id)
        .order_by(col(EnterpriseExit.exits_on))).scalars()]
    barred_until = enterprise.barred_until
    return EnterpriseView(
        enterprise=enterprise, state=ENTERPRISE_STATE_LABELS[enterprise.state.value], barred_until=barred_until,
        barred_today=barred_until is not None and today <= barred_until, products=products,
        declarations=declarations, bad_records=bad_records, exits=exits,
        ladders=ladder_rows(session, program_id, slug, subject=(SubjectType.ENTERPRISE, enterprise_id)))


def program_enterprises(session: Session, program_id: int) -> list[tuple[int, str, str]]:
    """(id, name, Chinese state) of every enterprise that declared for the program or has a ladder in it."""
    declared = select(col(EnterpriseDeclaration.enterprise_id)).where(col(EnterpriseDeclaration.program_id) == program_id)
    laddered = select(col(EnforcementCase.subject_id)).where(
        col(EnforcementCase.program_id) == program_id, col(EnforcementCase.subject_type) == SubjectType.ENTERPRISE)
    return [(e.id or 0, e.name, ENTERPRISE_STATE_LABELS[e.state.value]) for e in session.execute(
        select(Enterprise).where(col(Enterprise.id).in_(declared) | col(Enterprise.id).in_(laddered))
        .order_by(col(Enterprise.name))).scalars()]
