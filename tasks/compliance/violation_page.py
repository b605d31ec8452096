"""The violations as the web page lists them: filtered, scoped to a reviewer's districts, one keyset page at a time.

Newest first by (detected_at, id): a page is the next `limit` rows after (or before) a violation the pager names,
so page 200 costs what page 1 does (an offset would read and throw away every row before it). Each row carries
what a person needs to act on it: the subject's name, the evidence, and the enforcement ladder it is on (its step,
deadline and open gate), all in one statement — never a query per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.engine import Connection

from models.catalog import Enterprise, Product
from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.enforcement import LADDER_LABELS, EnforcementCase, LadderState
from models.enrollment import Gate, Institution
from models.labels import VIOLATION_LABELS, VIOLATION_STATE_LABELS, VIOLATION_SUBJECT_LABELS
from models.operations import Violation
from models.program import Program
from models.reasons import reason_text
from models.states import GateKind, GateState

VIOLATION = Violation.__table__  # type: ignore[attr-defined]
CASE = EnforcementCase.__table__  # type: ignore[attr-defined]
GATE = Gate.__table__  # type: ignore[attr-defined]
PROGRAM = Program.__table__  # type: ignore[attr-defined]
INST = Institution.__table__  # type: ignore[attr-defined]
ENT = Enterprise.__table__  # type: ignore[attr-defined]
PROD = Product.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ViolationFilter:
    """What the page's form asks for; `districts` is the viewer's scope (None: every district)."""

    program_ids: Sequence[int] | None = None
    rule: ViolationRule | None = None
    district: str | None = None
    subject_type: SubjectType | None = None
    subject: str | None = None  # part of the institution's, enterprise's or product's name
    state: ViolationState | None = None
    since: date | None = None  # detected on or after
    until: date | None = None  # detected on or before
    districts: Sequence[str] | None = None


@dataclass(frozen=True)
class ViolationRow:
    id: int
    program: str
    rule: str  # Chinese
    subject_kind: str  # 医药机构 / 生产企业 / 挂网产品
    subject: str
    object_key: str
    district: str | None
    state: str  # 未整改 / 已消除
    open: bool
    detected_on: date
    detected_at: datetime
    closed_on: date | None
    closed_reason: str
    evidence: dict[str, Any]
    ladder: str | None  # the ladder's step in Chinese; None: on no ladder
    due_on: date | None
    due_provisional: bool
    gate_id: int | None  # the ladder's open gate


@dataclass(frozen=True)
class ViolationPage:
    rows: list[ViolationRow]
    has_next: bool  # older rows follow the last one
    has_prev: bool  # newer rows precede the first one


INST_NAME = INST.alias("subject_institution")
ENT_NAME = ENT.alias("subject_enterprise")
PROD_NAME = PROD.alias("subject_product")


def _with_names(source: Any) -> Any:
    """The violations joined to their subject's row by primary key (one of three tables, by subject type)."""
    return (source
            .outerjoin(INST_NAME, and_(VIOLATION.c.subject_type == SubjectType.INSTITUTION.value,
                                       INST_NAME.c.id == VIOLATION.c.subject_id))
            .outerjoin(ENT_NAME, and_(VIOLATION.c.subject_type == SubjectType.ENTERPRISE.value,
                                      ENT_NAME.c.id == VIOLATION.c.subject_id))
            .outerjoin(PROD_NAME, and_(VIOLATION.c.subject_type == SubjectType.PRODUCT.value,
                                       PROD_NAME.c.id == VIOLATION.c.subject_id)))


SUBJECT_NAME = func.coalesce(INST_NAME.c.name, ENT_NAME.c.name, PROD_NAME.c.name)


def _filtered(f: ViolationFilter) -> list[Any]:
    where: list[Any] = []
    if f.program_ids is not None:
        where.append(VIOLATION.c.program_id.in_(list(f.program_ids)))
    if f.rule is not None:
        where.append(VIOLATION.c.rule == f.rule.value)
    if f.districts is not None:  # a reviewer: its districts' violations (an enterprise's belongs to none)
        where.append(VIOLATION.c.district.in_(list(f.districts)))
    if f.district:
        where.append(VIOLATION.c.district == f.district)
    if f.subject_type is not None:
        where.append(VIOLATION.c.subject_type == f.subject_type.value)
    if f.subject:
        where.append(SUBJECT_NAME.contains(f.subject, autoescape=True))
    if f.state is not None:
        where.append(VIOLATION.c.state == f.state.value)
    if f.since is not None:
        where.append(VIOLATION.c.detected_on >= f.since)
    if f.until is not None:
        where.append(VIOLATION.c.detected_on <= f.until)
    return where


def _ids(f: ViolationFilter) -> Select[Any]:
    """The filter over the violation table alone (the subjects' tables only for a name filter): the page's ids."""
    source = _with_names(VIOLATION) if f.subject else VIOLATION
    return select(VIOLATION.c.id).select_from(source).where(*_filtered(f))


def _rows(page_ids: Any) -> Select[Any]:
    """Names, program, ladder and open gate of the page's violations only: primary-key lookups, not a scan."""
    open_gate = (select(func.max(GATE.c.id)).where(GATE.c.kind == GateKind.ENFORCEMENT.value,
                                                   GATE.c.state == GateState.OPEN.value,
                                                   GATE.c.subject_id == CASE.c.id)
                 .correlate(CASE).scalar_subquery())
    source = _with_names(VIOLATION.join(page_ids, page_ids.c.id == VIOLATION.c.id)
                         .join(PROGRAM, PROGRAM.c.id == VIOLATION.c.program_id)
                         .outerjoin(CASE, CASE.c.violation_id == VIOLATION.c.id))
    return select(VIOLATION, SUBJECT_NAME.label("subject_name"), PROGRAM.c.name.label("program_name"),
                  CASE.c.state.label("ladder_state"), CASE.c.due_on.label("ladder_due"),
                  CASE.c.due_on_provisional.label("ladder_provisional"),
                  open_gate.label("gate_id")).select_from(source)


def _row(r: Any) -> ViolationRow:
    ladder = LADDER_LABELS[LadderState(r.ladder_state)] if r.ladder_state else None
    return ViolationRow(
        id=r.id, program=r.program_name, rule=VIOLATION_LABELS.get(str(r.rule), "其他规则"),
        subject_kind=VIOLATION_SUBJECT_LABELS.get(str(r.subject_type), "对象"),
        subject=r.subject_name or "（已删除的对象）", object_key=r.object_key or "", district=r.district,
        state=VIOLATION_STATE_LABELS.get(str(r.state), "未知"), open=str(r.state) == ViolationState.OPEN.value,
        detected_on=r.detected_on, detected_at=r.detected_at, closed_on=r.closed_on, closed_reason=reason_text(r.closed_reason),
        evidence=dict(r.evidence or {}), ladder=ladder, due_on=r.ladder_due,
        due_provisional=bool(r.ladder_provisional), gate_id=r.gate_id)


def _position(conn: Connection, violation_id: int) -> tuple[datetime, int] | None:
    """Where a violation sits in the order: the pager names it by id, its time is read from its row."""
    at = conn.execute(select(VIOLATION.c.detected_at).where(VIOLATION.c.id == violation_id)).scalar_one_or_none()
    return None if at is None else (at, violation_id)


def violation_page(conn: Connection, f: ViolationFilter, *, after: int | None = None, before: int | None = None,
                   limit: int = 50) -> ViolationPage:
    """`limit` violations, newest first: the first page, the page after violation `after`, or the one before `before`.

    The page's ids are found first, walking the (program, detected_at, id) index from the pager's edge; only those
    rows are then named. An unknown `after`/`before` (a violation since deleted) starts from the first page.
    """
    at, vid = VIOLATION.c.detected_at, VIOLATION.c.id
    if before is not None and (pos := _position(conn, before)) is not None:
        # `at >= t` first: an index range the planner can start from (it cannot from the OR alone).
        newer = and_(at >= pos[0], or_(at > pos[0], and_(at == pos[0], vid > pos[1])))
        ids = _ids(f).where(newer).order_by(at.asc(), vid.asc()).limit(limit + 1).subquery()
        rows = list(conn.execute(_rows(ids).order_by(at.asc(), vid.asc())))
        has_prev = len(rows) > limit
        return ViolationPage([_row(r) for r in reversed(rows[:limit])], has_next=True, has_prev=has_prev)
    pos = _position(conn, after) if after is not None else None
    query = _ids(f)
    if pos is not None:
        query = query.where(at <= pos[0], or_(at < pos[0], and_(at == pos[0], vid < pos[1])))
    ids = query.order_by(at.desc(), vid.desc()).limit(limit + 1).subquery()
    rows = list(conn.execute(_rows(ids).order_by(at.desc(), vid.desc())))
    return ViolationPage([_row(r) for r in rows[:limit]], has_next=len(rows) > limit, has_prev=pos is not None)


def all_violations(conn: Connection, f: ViolationFilter, limit: int) -> list[ViolationRow]:
    """Every violation of the filter, newest first, up to `limit`: the page's download."""
    at, vid = VIOLATION.c.detected_at, VIOLATION.c.id
    ids = _ids(f).order_by(at.desc(), vid.desc()).limit(limit).subquery()
    return [_row(r) for r in conn.execute(_rows(ids).order_by(at.desc(), vid.desc()))]


def count_violations(conn: Connection, f: ViolationFilter) -> int:
    """How many the filter holds (shown once above the table; the pages themselves are not counted)."""
    return int(conn.execute(select(func.count()).select_from(_ids(f).subquery())).scalar_one())
