"""What the inbox and a gate's page read: counts and one page of items, never a whole gate in Python.

A city gate holds every application of its batch — 100,000 at provincial scale — in its `items`
JSON, and its `decision` JSON grows by an entry per decided item. Parsing them on every page view
costs more than the page's whole budget (measured: 30 ms for the items, 330 ms for a fully
decided gate's outcomes), so for application gates the database counts the items
(`json_array_length`), picks one page of them (`json_each` / `json_array_elements_text`), and the
outcomes come from the Review rows the decision wrote (indexed by gate). Gates of the other kinds
hold a handful of items and are read whole.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Integer, Select, Table, cast, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from models.enrollment import Application, Gate, Institution, Review
from models.program import Program, User
from models.states import Decision, GateKind, GateState, Role
from tasks.calendar import display_days

APPLICATION_GATES = (GateKind.DISTRICT_REVIEW, GateKind.CITY_REVIEW)
ItemFilter = Literal["all", "undecided", "approved", "rejected", "findings"]
ITEM_FILTERS: dict[str, str] = {"all": "全部", "undecided": "待决定", "approved": "已批准", "rejected": "已驳回",
                                "findings": "有校验发现"}


@dataclass(frozen=True)
class GateSummary:
    """A gate as the inbox and the gate page show it, without its item lists."""

    id: int
    title: str
    kind: GateKind
    state: GateState
    program_id: int
    program_slug: str
    program_name: str
    district: str | None
    decider_role: Role
    due_on: date
    opened_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    flow_run_id: str | None
    natural_key: str
    subject_type: str
    subject_id: int | None
    items: int
    approved: int
    rejected: int
    due_in: int  # working days from today to the due date; negative when overdue
    due_on_provisional: bool = False  # counted through a year without an official schedule (暂定)

    @property
    def decided(self) -> int:
        return self.approved + self.rejected

    @property
    def undecided(self) -> int:
        return self.items - self.decided

    @property
    def is_application_gate(self) -> bool:
        return self.kind in APPLICATION_GATES


@dataclass(frozen=True)
class Outcome:
    decision: str  # approve / reject
    by: str
    reason: str | None
    at: str | None


@dataclass
class ApplicationItem:
    application: Application
    institution: Institution
    outcome: Outcome | None
    earlier: list[Review] = field(default_factory=list)  # other levels' opinions (the district's, on a city gate)
    attempts: list[Application] = field(default_factory=list)  # the institution's earlier applications, oldest first


def _table(model: Any) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


GATE, PROGRAM, APPLICATION, REVIEW = _table(Gate), _table(Program), _table(Application), _table(Review)


def _columns() -> tuple[Any, ...]:
    g, p = GATE.c, PROGRAM.c
    return (g.id, g.title, g.kind, g.state, g.program_id, p.slug, p.name, g.district, g.decider_role, g.due_on,
            g.opened_at, g.decided_by, g.decided_at, g.flow_run_id, g.natural_key, g.subject_type, g.subject_id,
            func.json_array_length(g["items"]).label("n_items"), p.definition, g.due_on_provisional)


def _visible_to(user: User) -> list[Any]:
    """A district reviewer: open gates of its districts for its role; a manager: its role's; an observer: all."""
    g = GATE.c
    if user.role == Role.DISTRICT_REVIEWER:
        return [g.decider_role == Role.DISTRICT_REVIEWER, g.district.in_(list(user.districts) or [""])]
    if user.role == Role.PROGRAM_MANAGER:
        return [g.decider_role == Role.PROGRAM_MANAGER]
    return []


def _summaries(session: Session, rows: Sequence[Any], today: date) -> list[GateSummary]:
    """Rows of `_columns()` with their decided counts: reviews for application gates, the JSON for the others."""
    app_ids = [r.id for r in rows if r.kind in APPLICATION_GATES]
    other_ids = [r.id for r in rows if r.kind not in APPLICATION_GATES]
    counts: dict[int, dict[str, int]] = {}
    if app_ids:
        for gate_id, decision, n in session.execute(
                sa_select(REVIEW.c.gate_id, REVIEW.c.decision, func.count())
                .where(REVIEW.c.gate_id.in_(app_ids)).group_by(REVIEW.c.gate_id, REVIEW.c.decision)):
            counts.setdefault(int(gate_id), {})[str(getattr(decision, "value", decision))] = int(n)
    if other_ids:
        for gate_id, decision in session.execute(sa_select(GATE.c.id, GATE.c.decision).where(GATE.c.id.in_(other_ids))):
            tally = counts.setdefault(int(gate_id), {})
            for outcome in (decision or {}).get("items", {}).values():
                tally[outcome["decision"]] = tally.get(outcome["decision"], 0) + 1
    calendars: dict[int, Any] = {}
    out = []
    for r in rows:
        if r.program_id not in calendars:
            calendars[r.program_id] = display_days(session)
        tally = counts.get(r.id, {})
        out.append(GateSummary(
            r.id, r.title, GateKind(r.kind), GateState(r.state), r.program_id, r.slug, r.name, r.district,
            Role(r.decider_role), r.due_on, r.opened_at, r.decided_by, r.decided_at, r.flow_run_id, r.natural_key,
            r.subject_type, r.subject_id, int(r.n_items or 0), tally.get(Decision.APPROVE.value, 0),
            tally.get(Decision.REJECT.value, 0), calendars[r.program_id].working_days_between(today, r.due_on),
            bool(r.due_on_provisional)))
    return out


def _base(*where: Any) -> Select[Any]:
    return sa_select(*_columns()).join_from(GATE, PROGRAM, PROGRAM.c.id == GATE.c.program_id).where(*where)


def inbox_page(session: Session, user: User, today: date, *, program: str | None = None, district: str | None = None,
               kind: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[GateSummary], int]:
    """Open gates waiting on `user` (all open gates for an observer, read-only), soonest due first; and how many."""
    g, p = GATE.c, PROGRAM.c
    where = [g.state == GateState.OPEN, *_visible_to(user)]
    if program:
        where.append(p.slug == program)
    if district:
        where.append(g.district == district)
    if kind:
        where.append(g.kind == kind)
    total = int(session.execute(sa_select(func.count()).select_from(GATE.join(PROGRAM, p.id == g.program_id))
                                .where(*where)).scalar_one())
    rows = session.execute(_base(*where).order_by(g.due_on, g.id).offset(offset).limit(limit)).all()
    return _summaries(session, rows, today), total


def gate_summary(session: Session, gate_id: int, today: date) -> GateSummary | None:
    rows = session.execute(_base(GATE.c.id == gate_id)).all()
    return _summaries(session, rows, today)[0] if rows else None


def _elements(session: Session, gate_id: int) -> Any:
    """The gate's items as a one-column table (`value`), unpacked by the database from the JSON array.

    Both functions produce the elements in array order and stream them, so a page with LIMIT/OFFSET
    stops early; an ORDER BY on the position would sort all 100,000 first (measured: 1 ms vs 7–11 ms).
    """
    if session.get_bind().dialect.name == "postgresql":
        element = cast(func.json_array_elements_text(GATE.c["items"]), Integer).label("value")
        return sa_select(element).where(GATE.c.id == gate_id).subquery()  # a set-returning select: streams
    items = sa_select(GATE.c["items"]).where(GATE.c.id == gate_id).scalar_subquery()
    lite = func.json_each(items).table_valued("value")
    return sa_select(lite.c.value.label("value")).subquery()


class GateItemCache:
    """A few gates' item lists, parsed once: a gate's items never change after it opens (tasks.gates.rows).

    The default page of a gate is a slice of this list. PostgreSQL's json_array_elements_text builds
    all 100,000 elements before the first one is returned (15 ms a view, measured), so slicing a list
    parsed once is the cheaper way on both databases. Keyed by id and natural key, and checked
    against the count the database gives for the view, so a list from another database or a changed
    row is never used.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._lists: OrderedDict[tuple[int, str], list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, gate: GateSummary) -> list[int]:
        key = (gate.id, gate.natural_key)
        with self._lock:
            found = self._lists.get(key)
            if found is not None and len(found) == gate.items:
                self._lists.move_to_end(key)
                return found
        items = [int(i) for i in session.execute(sa_select(GATE.c["items"]).where(GATE.c.id == gate.id)).scalar_one()]
        with self._lock:
            self._lists[key] = items
            while len(self._lists) > self.size:
                self._lists.popitem(last=False)
        return items


def _page_ids(session: Session, gate: GateSummary, show: ItemFilter, offset: int, limit: int,
              cache: GateItemCache | None) -> list[int]:
    """Item ids of one page, in the gate's order; the database walks the JSON array and stops at the page.

    approved / rejected come from this gate's reviews (by index); undecided skips the reviewed ones;
    findings looks up each item's application until the page is full (no count: the pager only
    knows whether there is a next page).
    """
    a, r = APPLICATION.c, REVIEW.c
    if show == "all" and cache is not None:
        return cache.get(session, gate)[offset:offset + limit]
    if show in ("approved", "rejected"):
        wanted = Decision.APPROVE if show == "approved" else Decision.REJECT
        query = (sa_select(r.application_id).where(r.gate_id == gate.id, r.decision == wanted)
                 .order_by(r.application_id))
    else:
        items = _elements(session, gate.id)
        query = sa_select(items.c.value)  # in the gate's order (see _elements)
        if show == "undecided":
            query = query.where(items.c.value.not_in(sa_select(r.application_id).where(r.gate_id == gate.id)))
        elif show == "findings":
            query = query.join(APPLICATION, a.id == items.c.value).where(func.json_array_length(a.findings) > 0)
    return [int(i) for i in session.execute(query.offset(offset).limit(limit)).scalars()]


def application_items(session: Session, gate: GateSummary, *, show: ItemFilter = "all", offset: int = 0,
                      limit: int = 50, cache: GateItemCache | None = None) -> tuple[list[ApplicationItem], int | None, bool]:
    """One page of an application gate's items, with this gate's outcome and earlier levels' opinions;
    how many items match `show` (None: not counted), and whether a next page exists."""
    totals = {"all": gate.items, "approved": gate.approved, "rejected": gate.rejected, "undecided": gate.undecided}
    ids = _page_ids(session, gate, show, offset, limit + 1, cache)
    more, ids = len(ids) > limit, ids[:limit]
    rows = {app.id: (app, inst) for app, inst in session.exec(
        select(Application, Institution).join(Institution, col(Institution.id) == col(Application.institution_id))
        .where(col(Application.id).in_(ids))).all()} if ids else {}
    outcomes: dict[int, Outcome] = {}
    earlier: dict[int, list[Review]] = {}
    if ids:
        for review in session.exec(select(Review).where(col(Review.application_id).in_(ids)).order_by(col(Review.id))):
            if review.gate_id == gate.id:
                outcomes[review.application_id] = Outcome(review.decision.value, review.reviewer, review.reason,
                                                          review.decided_at.isoformat())
            else:
                earlier.setdefault(review.application_id, []).append(review)
    attempts: dict[int, list[Application]] = {}
    retried = {app.institution_id: app for app, _ in rows.values() if app.attempt > 1}
    if retried:  # a re-applying institution: what it tried before and why it was turned down (one query a page)
        for old in session.exec(select(Application).where(
                Application.program_id == gate.program_id, col(Application.institution_id).in_(list(retried)))
                .order_by(col(Application.attempt))):
            if old.attempt < retried[old.institution_id].attempt:
                attempts.setdefault(old.institution_id, []).append(old)
    items = [ApplicationItem(*rows[i], outcomes.get(i), earlier.get(i, []), attempts.get(rows[i][0].institution_id, []))
             for i in ids if i in rows]
    return items, totals.get(show), more
