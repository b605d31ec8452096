"""Names for the ids and login names the records keep: one query per kind for a whole page, never per row.

The audit trail and the outbox store `entity` + `entity_id` and the actor's login name; people read
"机构申请 · 沈阳市和平区南湖社区卫生服务中心" and "王科长（和平区医疗保障局）" (issue #19).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from models.catalog import Enterprise, EnterpriseDeclaration, ListVersion
from models.compliance.codes import SubjectType
from models.enforcement import EnforcementCase
from models.enrollment import Application, Batch, Gate, Institution
from models.labels import LIST_KIND_LABELS, VIOLATION_LABELS
from models.operations import Contract, PlatformAccount, Violation
from models.outbox import Notice
from models.people import person_label
from models.program import AllianceInvitation, Program, User


def people(session: Session, names: Iterable[str]) -> dict[str, str]:
    """Login name → how people call that person (系统 for the flows); names with no user row are left out."""
    wanted = {n for n in names if n}
    found = {u.name: person_label(u.name, display_name=u.display_name, unit=u.unit, role=u.role.value,
                                  districts=u.districts)
             for u in session.exec(select(User).where(col(User.name).in_(wanted))).all()} if wanted else {}
    if "system" in wanted:
        found["system"] = person_label("system")
    return found


def _ints(ids: Iterable[str]) -> list[int]:
    return [int(i) for i in ids if str(i).isdigit()]


def _by_institution(session: Session, model: Any, ids: list[int]) -> dict[int, str]:
    rows = session.execute(select(model.id, Institution.name).join(Institution, col(Institution.id) == model.institution_id)
                           .where(col(model.id).in_(ids))).all()
    return {int(i): str(n) for i, n in rows}


def entity_names(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(entity, id) → a name: the institution of an application, account or contract, a gate's title, ..."""
    wanted: dict[str, set[str]] = {}
    for entity, entity_id in pairs:
        wanted.setdefault(entity, set()).add(str(entity_id))
    out: dict[tuple[str, str], str] = {}

    def put(entity: str, names: dict[int, str]) -> None:
        out.update({(entity, str(i)): n for i, n in names.items()})

    for entity, raw in wanted.items():
        if entity == "violation":  # a compliance pass's batch row names its rule, not one violation
            out.update({(entity, r): VIOLATION_LABELS[r] for r in raw if r in VIOLATION_LABELS})
        if entity == "user":  # a lockout of a name is recorded by the name typed, other rows by the user's id
            by_name = people(session, [r for r in raw if not r.isdigit()])
            out.update({(entity, r): by_name[r] for r in raw if r in by_name})
        ids = _ints(raw)
        if not ids:
            continue
        if entity == "application":
            put(entity, _by_institution(session, Application, ids))
        elif entity == "platform_account":
            put(entity, _by_institution(session, PlatformAccount, ids))
        elif entity == "contract":
            rows = session.execute(select(Contract.id, Institution.name, Enterprise.name)
                                   .join(Institution, col(Institution.id) == col(Contract.institution_id))
                                   .join(Enterprise, col(Enterprise.id) == col(Contract.enterprise_id))
                                   .where(col(Contract.id).in_(ids))).all()
            put(entity, {int(i): f"{a} — {b}" for i, a, b in rows})
        elif entity == "gate":
            put(entity, {int(i): str(t) for i, t in session.execute(
                select(Gate.id, Gate.title).where(col(Gate.id).in_(ids))).all()})
        elif entity == "enterprise":
            put(entity, {int(i): str(n) for i, n in session.execute(
                select(Enterprise.id, Enterprise.name).where(col(Enterprise.id).in_(ids))).all()})
        elif entity == "declaration":
            put(entity, {int(i): str(n) for i, n in session.execute(
                select(EnterpriseDeclaration.id, Enterprise.name)
                .join(Enterprise, col(Enterprise.id) == col(EnterpriseDeclaration.enterprise_id))
                .where(col(EnterpriseDeclaration.id).in_(ids))).all()})
        elif entity == "alliance_invitation":
            put(entity, {int(i): f"{c}（{b}）" for i, c, b in session.execute(
                select(AllianceInvitation.id, AllianceInvitation.city, AllianceInvitation.bureau)
                .where(col(AllianceInvitation.id).in_(ids))).all()})
        elif entity == "batch":
            put(entity, {int(i): f"第{n}批" for i, n in session.execute(
                select(Batch.id, Batch.number).where(col(Batch.id).in_(ids))).all()})
        elif entity == "notice":
            put(entity, {int(i): str(n) for i, n in session.execute(
                select(Notice.id, Notice.recipient_name).where(col(Notice.id).in_(ids))).all()})
        elif entity == "program":
            put(entity, {int(i): str(n) for i, n in session.execute(
                select(Program.id, Program.name).where(col(Program.id).in_(ids))).all()})
        elif entity == "user":
            put(entity, {int(u.id or 0): person_label(u.name, display_name=u.display_name, unit=u.unit,
                                                      role=u.role.value, districts=u.districts)
                         for u in session.exec(select(User).where(col(User.id).in_(ids))).all()})
        elif entity == "institution":
            put(entity, {int(i): str(n) for i, n in session.execute(
                select(Institution.id, Institution.name).where(col(Institution.id).in_(ids))).all()})
        elif entity == "list_version":
            put(entity, {int(i): f"{LIST_KIND_LABELS.get(str(getattr(k, 'value', k)), '清单')} 第{n}版"
                         for i, k, n in session.execute(select(ListVersion.id, ListVersion.kind, ListVersion.number)
                                                        .where(col(ListVersion.id).in_(ids))).all()})
        elif entity == "enforcement_case":  # whose ladder, for which rule
            rows = session.execute(
                select(EnforcementCase.id, Institution.name, Enterprise.name, Violation.rule)
                .outerjoin(Institution, (col(EnforcementCase.subject_type) == SubjectType.INSTITUTION)
                           & (col(Institution.id) == col(EnforcementCase.subject_id)))
                .outerjoin(Enterprise, (col(EnforcementCase.subject_type) == SubjectType.ENTERPRISE)
                           & (col(Enterprise.id) == col(EnforcementCase.subject_id)))
                .outerjoin(Violation, col(Violation.id) == col(EnforcementCase.violation_id))
                .where(col(EnforcementCase.id).in_(ids))).all()
            put(entity, {int(i): (inst or ent or "") + (f"（{VIOLATION_LABELS.get(str(getattr(r, 'value', r)), '')}）"
                                                          if r is not None else "")
                         for i, inst, ent, r in rows if inst or ent})
        elif entity == "violation":
            put(entity, {int(i): VIOLATION_LABELS.get(str(getattr(r, "value", r)), str(r)) + (f" · {d}" if d else "")
                         for i, r, d in session.execute(select(Violation.id, Violation.rule, Violation.district)
                                                        .where(col(Violation.id).in_(ids))).all()})
    return out
