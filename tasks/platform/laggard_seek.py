"""Laggards one page at a time by seek: the rows after (or before) a key, in the list's order, never an OFFSET.

The order is tasks.platform.laggards': earliest deadline first, then kind, district, insurance code (and
the id, unique). The deadline is on the account or contract, district and code on the institution, so
no single index holds that order, and sorting every laggard to show 50 cost 1.2 s at 100,000 institutions
(issue #19). But deadlines are few (one per batch and kind), so each kind is read deadline by deadline
(the next deadline: one seek in (program, state, due_on)), and within a deadline by walking institutions
in (district, insurance_code, id) order (ix_institution_district_code, migration 0018), each checked by
unique-index probes (running? pending? due that day?) until the page is full. A deadline with few
laggards (under DENSE rows) is read from its own rows and sorted instead: walking 100,000 institutions
to find three would cost more. Overdue payments (grouped per institution, no stored deadline to seek)
are sorted by the database and sought by key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, and_, case, exists, func, literal, or_, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from core.sql_hints import unindexed
from models.enrollment import Application, Institution
from models.operations import Contract, Payment, PlatformAccount, PurchaseOrder
from models.states import AccountState, ApplicationState, ContractState

LAGGARD_KINDS = ("account", "contract", "payment")
DENSE = 2_000  # laggards sharing a deadline from which walking the institutions in order beats sorting them

# (due_on, kind's position in LAGGARD_KINDS, district, insurance_code, institution id)
LaggardKey = tuple[date, int, str, str, int]


def _table(model: Any) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


ACC, CON, PAY, ORDER = _table(PlatformAccount), _table(Contract), _table(Payment), _table(PurchaseOrder)
INST, APP = _table(Institution), _table(Application)


@dataclass(frozen=True)
class Scope:
    """What every laggard query shares: the program, its horizons, today, the districts shown."""

    program_id: int
    today: date
    account_horizon: date
    contract_horizon: date
    districts: Sequence[str] | None  # None: every district

    def in_district(self) -> list[Any]:
        return [] if self.districts is None else [INST.c.district.in_(list(self.districts))]

    def running(self) -> Any:
        return exists().where(APP.c.program_id == self.program_id, APP.c.institution_id == INST.c.id,
                              APP.c.state == ApplicationState.RUNNING)

    def base(self) -> list[Any]:
        """Laggards are institutions that run in the program and are not proxy-procured (reminders' rule)."""
        return [INST.c.proxy_parent_id.is_(None), self.running(), *self.in_district()]


COLS = (INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code)


def key_of(kind: str, row: Any) -> LaggardKey:
    return (row.due_on, LAGGARD_KINDS.index(kind), row.district, row.insurance_code, int(row.id))


def seek_laggards(session: Session, scope: Scope, kinds: Sequence[str], *, after: LaggardKey | None = None,
                  before: LaggardKey | None = None, limit: int) -> list[tuple[str, Any]]:
    """Up to `limit` laggards of `kinds` after `after` (or, read backwards, before `before`), in the list's
    order: (kind, row) with row (id, name, district, insurance_code, due_on, n, amount)."""
    backwards = before is not None
    key = before if backwards else after
    found: list[tuple[LaggardKey, str, Any]] = []
    for kind in kinds:
        rows = (_payments(session, scope, key, backwards, limit) if kind == "payment"
                else _by_deadline(session, scope, kind, key, backwards, limit))
        found += [(key_of(kind, r), kind, r) for r in rows]
    found.sort(key=lambda f: f[0], reverse=backwards)
    page = found[:limit]
    if backwards:
        page.reverse()
    return [(kind, row) for _, kind, row in page]


def _deadlines(session: Session, scope: Scope, kind: str, start: date | None, backwards: bool) -> Iterator[date]:
    """The kind's deadlines from `start` (included) on, in the reading direction, one index seek each."""
    table, horizon, pending = ((ACC, scope.account_horizon, AccountState.PENDING) if kind == "account"
                               else (CON, scope.contract_horizon, ContractState.PENDING))
    where = [table.c.program_id == scope.program_id, table.c.state == pending, table.c.due_on.is_not(None),
             table.c.due_on <= horizon]
    pick = func.max if backwards else func.min
    bound = start
    inclusive = start is not None
    while True:
        step = [] if bound is None else [
            (table.c.due_on <= bound if inclusive else table.c.due_on < bound) if backwards
            else (table.c.due_on >= bound if inclusive else table.c.due_on > bound)]
        day = session.execute(sa_select(pick(table.c.due_on)).where(*where, *step)).scalar_one()
        if day is None:
            return
        yield day
        bound, inclusive = day, False


def _by_deadline(session: Session, scope: Scope, kind: str, key: LaggardKey | None, backwards: bool,
                 limit: int) -> list[Any]:
    """Accounts or contracts, deadline by deadline, until `limit` rows."""
    me = LAGGARD_KINDS.index(kind)
    out: list[Any] = []
    for day in _deadlines(session, scope, kind, key[0] if key else None, backwards):
        bound: list[Any] = []
        if key is not None and day == key[0]:
            if (me < key[1]) != backwards and me != key[1]:
                continue  # this kind's rows of that deadline all sort on the far side of the key
            if me == key[1]:
                rest = tuple_(INST.c.district, INST.c.insurance_code, INST.c.id)
                value = tuple_(literal(key[2]), literal(key[3]), literal(key[4]))
                bound = [rest < value if backwards else rest > value]
        out += _one_deadline(session, scope, kind, day, bound, backwards, limit - len(out))
        if len(out) >= limit:
            break
    return out


def _due_that_day(scope: Scope, kind: str, day: date) -> list[Any]:
    """The institution has the kind's laggard at `day` (a contract: its earliest unmet deadline is that day)."""
    if kind == "account":
        return [exists().where(ACC.c.program_id == scope.program_id, ACC.c.institution_id == INST.c.id,
                               ACC.c.state == AccountState.PENDING, ACC.c.due_on == day)]
    # unindexed(program_id): probe the institution's few contracts by its index; SQLite (no statistics) would
    # otherwise take (program_id, state, due_on) for its three equalities and read every pending contract.
    pending = [unindexed(CON.c.program_id) == scope.program_id, CON.c.institution_id == INST.c.id,
               CON.c.state == ContractState.PENDING]
    return [exists().where(*pending, CON.c.due_on == day), ~exists().where(*pending, CON.c.due_on < day)]


def _one_deadline(session: Session, scope: Scope, kind: str, day: date, bound: list[Any], backwards: bool,
                  limit: int) -> list[Any]:
    table, pending = (ACC, AccountState.PENDING) if kind == "account" else (CON, ContractState.PENDING)
    order = [INST.c.district, INST.c.insurance_code, INST.c.id]
    ordered = [c.desc() for c in order] if backwards else order
    probe = sa_select(literal(1)).where(table.c.program_id == scope.program_id, table.c.state == pending,
                                        table.c.due_on == day).limit(DENSE).subquery()
    dense = int(session.execute(sa_select(func.count()).select_from(probe)).scalar_one()) >= DENSE
    n = literal(1) if kind == "account" else _unsigned_count(scope)
    query = (sa_select(*COLS, literal(day).label("due_on"), n.label("n"), literal(0).label("amount"))
             .where(*scope.base(), *_due_that_day(scope, kind, day), *bound))
    if not dense:  # few rows that day: start from them (by the deadline index), then sort
        ids = sa_select(table.c.institution_id).where(table.c.program_id == scope.program_id,
                                                      table.c.state == pending, table.c.due_on == day)
        query = query.where(INST.c.id.in_(ids))
    return list(session.execute(query.order_by(*ordered).limit(limit)).all())


def _unsigned_count(scope: Scope) -> Any:
    return (sa_select(func.count()).where(unindexed(CON.c.program_id) == scope.program_id, CON.c.institution_id == INST.c.id,
                                          CON.c.state == ContractState.PENDING, CON.c.due_on.is_not(None),
                                          CON.c.due_on <= scope.contract_horizon).scalar_subquery())


def payments_query(scope: Scope) -> Any:
    """Overdue payments per institution: unpaid on the clock's day, past due (the overdue-payment reminders' rule)."""
    return (sa_select(*COLS, func.min(PAY.c.due_on).label("due_on"), func.count().label("n"),
                      func.sum(PAY.c.amount).label("amount"))
            .join(ORDER, ORDER.c.id == PAY.c.order_id).join(INST, INST.c.id == PAY.c.institution_id)
            .where(ORDER.c.program_id == scope.program_id, PAY.c.due_on < scope.today,
                   or_(PAY.c.paid_on.is_(None), PAY.c.paid_on > scope.today), *scope.in_district())
            .group_by(*COLS))


def _payments(session: Session, scope: Scope, key: LaggardKey | None, backwards: bool, limit: int) -> list[Any]:
    sub = payments_query(scope).subquery()
    order = [sub.c.due_on, sub.c.district, sub.c.insurance_code, sub.c.id]
    query = sa_select(sub)
    me = LAGGARD_KINDS.index("payment")
    if key is not None:
        # (due, kind) first: same deadline and an earlier kind sorts before, a later kind after.
        rest = tuple_(sub.c.district, sub.c.insurance_code, sub.c.id)
        value = tuple_(literal(key[2]), literal(key[3]), literal(key[4]))
        if backwards:
            query = query.where(or_(sub.c.due_on < key[0], and_(sub.c.due_on == key[0], literal(me) < key[1]),
                                    and_(sub.c.due_on == key[0], literal(me) == key[1], rest < value)))
        else:
            query = query.where(or_(sub.c.due_on > key[0], and_(sub.c.due_on == key[0], literal(me) > key[1]),
                                    and_(sub.c.due_on == key[0], literal(me) == key[1], rest > value)))
    return list(session.execute(query.order_by(*(c.desc() if backwards else c for c in order)).limit(limit)).all())


def count_laggards(session: Session, scope: Scope, kind: str) -> dict[str, int]:
    """Overdue and due-soon laggards of an account or contract kind, in one walk over the institutions shown
    (a district's by its index), each checked by index probes: no join of every pending row with its institution."""
    today = scope.today
    if kind == "account":
        def due(*when: Any) -> Any:
            return exists().where(ACC.c.program_id == scope.program_id, ACC.c.institution_id == INST.c.id,
                                  ACC.c.state == AccountState.PENDING, ACC.c.due_on.is_not(None), *when)
        late, soon = due(ACC.c.due_on < today), due(ACC.c.due_on >= today, ACC.c.due_on <= scope.account_horizon)
    else:
        def due(*when: Any) -> Any:
            return exists().where(unindexed(CON.c.program_id) == scope.program_id, CON.c.institution_id == INST.c.id,
                                  CON.c.state == ContractState.PENDING, CON.c.due_on.is_not(None), *when)
        late = due(CON.c.due_on < today)
        soon = and_(~late, due(CON.c.due_on >= today, CON.c.due_on <= scope.contract_horizon))
    n_late, n_soon = session.execute(sa_select(
        func.coalesce(func.sum(case((late, 1), else_=0)), 0), func.coalesce(func.sum(case((soon, 1), else_=0)), 0))
        .where(*scope.base())).one()
    return {"overdue": int(n_late), "due_soon": int(n_soon)}
