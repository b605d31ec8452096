"""What the inbox and a gate's page read: counts and one page of items, never a whole gate in Python.

A city gate holds every application of its batch — 100,000 at provincial scale — in its `items`
JSON, and its `decision` JSON grows by an entry per decided item. Parsing them on every page view
costs more than the page's whole budget (measured: 30 ms for the items, 330 ms for a fully
decided gate's outcomes), so for application gates the database counts the items
(`json_array_length`), picks one page of them (`json_each` / `json_array_elements_text`), and the
outcomes come from the Review rows the decision wrote (indexed by gate). Deep pages and the filters
(待决定, 有校验发现) are read by key: a cursor names a position in the gate's parsed item list, and the
filter probes the items from there on until the page is full (issue #19: no OFFSET walk of the JSON
array). Gates of the other kinds hold a handful of items and are read whole.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Select, Table, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from core.sql_hints import unindexed
from models.enrollment import Application, Gate, Institution, Review
from models.gate_decisions import tally as decided_tally
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
            counts[int(gate_id)] = decided_tally(decision)
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


ItemKey = tuple[int, ...]  # gate order: (position in the gate's items, id); approved / rejected: (id,)
PROBE_MAX = 4_000  # items checked per query while a filter walks the gate's list


@dataclass(frozen=True)
class ItemSeek:
    """Where a page of a gate's items starts: by number (OFFSET into the parsed list: only "all" goes deep this
    way), after or before a row's key (下一页 / 上一页), or from the end (末页)."""

    offset: int = 0
    after: ItemKey | None = None
    before: ItemKey | None = None
    last: bool = False

    @property
    def backwards(self) -> bool:
        return self.before is not None or self.last


def _position(items: list[int], key: ItemKey) -> int:
    """The position a cursor names, checked against the list (a cursor of another gate or a damaged one: 400)."""
    from starlette.exceptions import HTTPException

    if len(key) == 2 and 0 <= key[0] < len(items) and items[key[0]] == key[1]:
        return key[0]
    raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1")


def _matching(session: Session, gate: GateSummary, show: ItemFilter, chunk: list[int]) -> set[int]:
    """Which of `chunk` the filter keeps: undecided ones have no review of this gate (probed by the unique
    (application_id, level) index: unindexed(gate_id) keeps SQLite off the gate's index, which would read every
    review of a decided city gate), findings ones a non-empty findings list (probed by primary key)."""
    if show == "all":
        return set(chunk)
    if show == "undecided":
        reviewed = session.execute(sa_select(REVIEW.c.application_id).where(
            REVIEW.c.application_id.in_(chunk), unindexed(REVIEW.c.gate_id) == gate.id)).scalars()
        return set(chunk) - {int(i) for i in reviewed}
    a = APPLICATION.c
    return {int(i) for i in session.execute(sa_select(a.id).where(
        a.id.in_(chunk), func.json_array_length(a.findings) > 0)).scalars()}


def _walk(session: Session, gate: GateSummary, show: ItemFilter, items: list[int], start: int, backwards: bool,
          want: int) -> list[int]:
    """Positions of up to `want` items the filter keeps, from position `start` on in the reading direction.

    Keyset over the gate's own order: the walk starts at the cursor's position in the parsed list (never
    at the first item) and checks growing chunks until the page is full, so a deep page costs what the
    first does. A filter that keeps few items walks far: "undecided" stops at once when none are left.
    """
    found: list[int] = []
    size = max(want, 64)
    pos = start
    while len(found) < want and (pos >= 0 if backwards else pos < len(items)):
        if backwards:
            low = max(0, pos - size + 1)
            positions = range(pos, low - 1, -1)
            pos = low - 1
        else:
            high = min(len(items), pos + size)
            positions = range(pos, high)
            pos = high
        keep = _matching(session, gate, show, [items[p] for p in positions])
        found += [p for p in positions if items[p] in keep][:want - len(found)]
        size = min(size * 2, PROBE_MAX)
    return found


def _page_ids(session: Session, gate: GateSummary, show: ItemFilter, where: ItemSeek, limit: int,
              cache: GateItemCache) -> tuple[list[int], list[ItemKey]]:
    """Item ids of one page (up to `limit`, in the reading direction) and their keys.

    "all", "undecided" and "findings" are in the gate's order, read from the parsed list by position;
    "approved" and "rejected" come from this gate's reviews in application order, by their index, sought
    by key (the id).
    """
    if show in ("approved", "rejected"):
        if (gate.approved if show == "approved" else gate.rejected) == 0:
            return [], []
        r = REVIEW.c
        wanted = Decision.APPROVE if show == "approved" else Decision.REJECT
        query = sa_select(r.application_id).where(r.gate_id == gate.id, r.decision == wanted)
        if where.after is not None:
            query = query.where(r.application_id > where.after[-1])
        elif where.before is not None:
            query = query.where(r.application_id < where.before[-1])
        query = query.order_by(r.application_id.desc() if where.backwards else r.application_id)
        if not (where.after or where.backwards):
            query = query.offset(where.offset)
        ids = [int(i) for i in session.execute(query.limit(limit)).scalars()]
        return ids, [(i,) for i in ids]
    if show == "undecided" and gate.undecided == 0:
        return [], []
    items = cache.get(session, gate)
    if where.after is not None:
        start, backwards = _position(items, where.after) + 1, False
    elif where.before is not None:
        start, backwards = _position(items, where.before) - 1, True
    elif where.last:
        start, backwards = len(items) - 1, True
    elif show == "all":  # a page by number: a slice of the parsed list, nothing skipped in the database
        positions = list(range(where.offset, min(len(items), where.offset + limit)))
        return [items[p] for p in positions], [(p, items[p]) for p in positions]
    else:  # a filter's shallow page by number (web.pagination refuses deep ones): walked from the start
        found = _walk(session, gate, show, items, 0, False, where.offset + limit)[where.offset:]
        return [items[p] for p in found], [(p, items[p]) for p in found]
    found = _walk(session, gate, show, items, start, backwards, limit)
    return [items[p] for p in found], [(p, items[p]) for p in found]


@dataclass(frozen=True)
class ItemPage:
    """One page of an application gate's items, in the gate's order."""

    items: list[ApplicationItem]
    keys: list[ItemKey]  # each shown item's cursor key, same order
    total: int | None  # items matching the filter (None: not counted)
    fetched: int  # rows read in the reading direction: per_page + 1 says another page exists that way


def item_page(session: Session, gate: GateSummary, *, show: ItemFilter = "all", where: ItemSeek = ItemSeek(),
              limit: int = 50, cache: GateItemCache | None = None) -> ItemPage:
    """One page of an application gate's items, with this gate's outcome and earlier levels' opinions."""
    totals = {"all": gate.items, "approved": gate.approved, "rejected": gate.rejected, "undecided": gate.undecided}
    ids, keys = _page_ids(session, gate, show, where, limit + 1, cache or GateItemCache(1))
    fetched = len(ids)
    ids, keys = ids[:limit], keys[:limit]
    if where.backwards:
        ids.reverse()
        keys.reverse()
    return ItemPage(_application_items(session, gate, ids), keys, totals.get(show), fetched)


def application_items(session: Session, gate: GateSummary, *, show: ItemFilter = "all", offset: int = 0,
                      limit: int = 50, cache: GateItemCache | None = None) -> tuple[list[ApplicationItem], int | None, bool]:
    """One page by number: its items, how many match `show` (None: not counted), and whether a next page exists."""
    found = item_page(session, gate, show=show, where=ItemSeek(offset=offset), limit=limit, cache=cache)
    return found.items, found.total, found.fetched > limit


def _application_items(session: Session, gate: GateSummary, ids: list[int]) -> list[ApplicationItem]:
    """The applications `ids` (in that order) with their institutions, outcomes, earlier opinions and attempts."""
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
    return items
