"""What people read about violations: the filtered list and the open counts by rule and district."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, func, literal, select, union_all
from sqlmodel import Session

from models.catalog import Enterprise, Product
from models.compliance.codes import (
    RULE_LABELS,
    SUBJECT_LABELS,
    VIOLATION_STATE_LABELS,
    SubjectType,
    ViolationRule,
    ViolationState,
)
from models.enrollment import Institution
from models.operations import Violation
from tasks.programs import get_program

VIOLATION = Violation.__table__  # type: ignore[attr-defined]
INST = Institution.__table__  # type: ignore[attr-defined]
ENT = Enterprise.__table__  # type: ignore[attr-defined]
PROD = Product.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ViolationView:
    id: int
    rule: ViolationRule
    subject_type: SubjectType
    subject_name: str
    object_key: str
    district: str | None
    state: ViolationState
    detected_on: date
    closed_on: date | None
    closed_reason: str | None
    evidence: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "rule": self.rule.value, "rule_label": RULE_LABELS[self.rule],
                "subject_type": self.subject_type.value, "subject_label": SUBJECT_LABELS[self.subject_type],
                "subject": self.subject_name, "object": self.object_key, "district": self.district,
                "state": self.state.value, "state_label": VIOLATION_STATE_LABELS[self.state],
                "detected_on": self.detected_on.isoformat(),
                "closed_on": self.closed_on.isoformat() if self.closed_on else None,
                "closed_reason": self.closed_reason, "evidence": self.evidence}


def _subject_names() -> Any:
    """(type, id, name) of every possible subject, to label violations in one join."""
    return union_all(
        select(literal(SubjectType.INSTITUTION.value).label("t"), INST.c.id, INST.c.name),
        select(literal(SubjectType.ENTERPRISE.value), ENT.c.id, ENT.c.name),
        select(literal(SubjectType.PRODUCT.value), PROD.c.id, PROD.c.name),
    ).subquery("subjects")


def list_violations(engine: Engine, slug: str, *, rule: ViolationRule | None = None,
                    districts: Sequence[str] | None = None, open_only: bool = False,
                    limit: int | None = None) -> list[ViolationView]:
    """The program's violations, newest first; `districts` limits to those (a district reviewer's scope)."""
    with Session(engine) as session:
        program, _ = get_program(session, slug)
        names = _subject_names()
        query = (select(VIOLATION, names.c.name)
                 .outerjoin(names, (names.c.t == VIOLATION.c.subject_type) & (names.c.id == VIOLATION.c.subject_id))
                 .where(VIOLATION.c.program_id == program.id)
                 .order_by(VIOLATION.c.detected_on.desc(), VIOLATION.c.id.desc()))
        if rule is not None:
            query = query.where(VIOLATION.c.rule == rule.value)
        if districts is not None:
            query = query.where(VIOLATION.c.district.in_(list(districts)))
        if open_only:
            query = query.where(VIOLATION.c.state == ViolationState.OPEN.value)
        if limit is not None:
            query = query.limit(limit)
        return [ViolationView(r.id, ViolationRule(r.rule), SubjectType(r.subject_type), r.name or f"#{r.subject_id}",
                              r.object_key, r.district, ViolationState(r.state), r.detected_on, r.closed_on,
                              r.closed_reason, dict(r.evidence or {}))
                for r in session.execute(query)]


def open_counts(engine: Engine, program_id: int, districts: Sequence[str] | None = None
                ) -> dict[tuple[ViolationRule, str | None], int]:
    """Open violations by (rule, district) in one GROUP BY; `districts` limits to those."""
    query = (select(VIOLATION.c.rule, VIOLATION.c.district, func.count())
             .where(VIOLATION.c.program_id == program_id, VIOLATION.c.state == ViolationState.OPEN.value)
             .group_by(VIOLATION.c.rule, VIOLATION.c.district))
    if districts is not None:
        query = query.where(VIOLATION.c.district.in_(list(districts)))
    with engine.connect() as conn:
        return {(ViolationRule(r), d): int(n) for r, d, n in conn.execute(query)}


def counts_by_rule(engine: Engine, program_id: int) -> dict[ViolationRule, tuple[int, int]]:
    """(open, all) violations per rule: the demo's and the status page's summary."""
    query = (select(VIOLATION.c.rule, VIOLATION.c.state, func.count())
             .where(VIOLATION.c.program_id == program_id).group_by(VIOLATION.c.rule, VIOLATION.c.state))
    out: dict[ViolationRule, tuple[int, int]] = {}
    with engine.connect() as conn:
        for rule, state, n in conn.execute(query):
            opened, total = out.get(ViolationRule(rule), (0, 0))
            out[ViolationRule(rule)] = (opened + (n if state == ViolationState.OPEN.value else 0), total + n)
    return out
