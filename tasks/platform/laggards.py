"""Who is behind on a platform account or a contract: the list reminders, escalation and the dashboard use.

Phases 4 and 5 have no gate: the bureau's work is to know who is behind and to remind them. A
proxy-procured (代采) clinic never appears: it never registers an account and never signs a
contract, its upper institution buys and settles for it (seed 000 §三(四), §四(一)(二)). Nor do
institutions no longer running: nobody reminds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from sqlalchemy import Engine, Integer, cast, func, select

from core.db import transaction
from models.clock import Clock
from models.states import AccountState, ContractState
from models.workdays import WorkingDays
from tasks.platform.context import ACC, CON, ENT, INST, Ctx, program_context, running_filter

__all__ = [
    "Laggard",
    "account_laggards",
    "contract_laggards",
    "laggards",
    "sorted_laggards",
]

_SEP = "\x1f"  # joins enterprise names in SQL; never part of a name

What = Literal["account", "contract"]


@dataclass(frozen=True)
class Laggard:
    """An institution behind on its account or its contracts, for reminders and the dashboard.

    ``days_late`` counts working days (调休 included) after ``due_on``; it is 0 when not yet late,
    and also for a deadline that fell on the weekend just past, so ``overdue`` says which.
    A contract laggard is one per institution: ``enterprises`` names the unsigned counterparts
    and ``due_on`` is the earliest of their deadlines (one reminder, not one per enterprise).
    """

    institution_id: int
    name: str
    district: str
    insurance_code: str
    what: What
    due_on: date
    days_late: int
    email: str | None
    overdue: bool = False
    working_days_left: int = 0
    enterprises: tuple[str, ...] = ()
    due_provisional: bool = False  # the deadline lies in a year without an official schedule yet (暂定)


def _horizon(ctx: Ctx, working_days: int) -> date:
    """The last date with at most `working_days` working days after today: the reminder horizon."""
    day = ctx.today
    display = WorkingDays(ctx.wdays.overrides)  # provisional, whatever the policy: a horizon sets no deadline
    for _ in range(working_days + 1):
        day = display.next_working_day(day)
    return day - timedelta(days=1)


@dataclass
class _Lateness:
    """Working-day distances from today, cached per due date (100,000 rows share a few dates)."""

    ctx: Ctx
    cache: dict[date, tuple[bool, int, int]] = field(default_factory=dict)

    @property
    def display(self) -> WorkingDays:
        return WorkingDays(self.ctx.wdays.overrides)  # showing lateness never refuses an unknown year

    def of(self, due: date) -> tuple[bool, int, int]:
        """(overdue, working days late, working days left)."""
        if due not in self.cache:
            today = self.ctx.today
            if today > due:
                self.cache[due] = (True, self.display.working_days_between(due, today), 0)
            else:
                self.cache[due] = (False, 0, self.display.working_days_between(today, due))
        return self.cache[due]


def account_laggards(ctx: Ctx) -> list[Laggard]:
    """Pending accounts of running, non-proxy institutions, late or within the reminder horizon."""
    horizon = _horizon(ctx, ctx.defn.rules.account_reminder_working_days_before_close)
    rows = ctx.session.execute(
        select(ACC.c.due_on, INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code, INST.c.email,
               ACC.c.due_on_provisional)
        .join(INST, INST.c.id == ACC.c.institution_id)
        .where(ACC.c.program_id == ctx.program_id, ACC.c.state == AccountState.PENDING,
               INST.c.proxy_parent_id.is_(None), ACC.c.due_on.is_not(None), ACC.c.due_on <= horizon,
               INST.c.id.in_(running_filter(ctx.program_id)))
    ).all()
    late = _Lateness(ctx)
    out: list[Laggard] = []
    for r in rows:
        overdue, days_late, left = late.of(r.due_on)
        out.append(Laggard(int(r.id), r.name, r.district, r.insurance_code, "account", r.due_on, days_late,
                           r.email, overdue, left, due_provisional=bool(r.due_on_provisional)))
    return out


def contract_laggards(ctx: Ctx) -> list[Laggard]:
    """Unsigned contracts of running, non-proxy institutions, late or within the reminder horizon."""
    horizon = _horizon(ctx, ctx.defn.rules.contract_reminder_working_days_before_close)
    dialect = ctx.session.get_bind().dialect.name
    # One row per institution, grouped by the database: 100,000 laggards must not cost seconds.
    names = (func.string_agg(ENT.c.name, _SEP) if dialect == "postgresql" else func.group_concat(ENT.c.name, _SEP))
    rows = ctx.session.execute(
        select(INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code, INST.c.email,
               func.min(CON.c.due_on).label("due_on"), names.label("enterprises"),
               func.max(cast(CON.c.due_on_provisional, Integer)).label("provisional"))
        .join(INST, INST.c.id == CON.c.institution_id)
        .join(ENT, ENT.c.id == CON.c.enterprise_id)
        .where(CON.c.program_id == ctx.program_id, CON.c.state == ContractState.PENDING,
               INST.c.proxy_parent_id.is_(None), CON.c.due_on.is_not(None), CON.c.due_on <= horizon,
               INST.c.id.in_(running_filter(ctx.program_id)))
        .group_by(INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code, INST.c.email)
    ).tuples()
    late = _Lateness(ctx)
    out: list[Laggard] = []
    for inst_id, name, district, code, email, due, enterprises, provisional in rows:
        overdue, days_late, left = late.of(due)
        out.append(Laggard(int(inst_id), name, district, code, "contract", due, days_late, email, overdue, left,
                           tuple(sorted(set(enterprises.split(_SEP)))),
                           due_provisional=bool(provisional)))
    return out


def sorted_laggards(items: list[Laggard]) -> list[Laggard]:
    """Most late first; then those already past a weekend deadline; then the nearest deadline."""
    return sorted(items, key=lambda g: (-g.days_late, not g.overdue, g.due_on, g.working_days_left, g.what,
                                        g.district, g.insurance_code))


def laggards(engine: Engine, slug: str, *, clock: Clock) -> list[Laggard]:
    """Who to remind or escalate: pending accounts and unsigned contracts past due or due soon.

    "Soon" is the program's ``account_reminder_working_days_before_close`` /
    ``contract_reminder_working_days_before_close``. Exempt (proxy-procured) institutions never
    appear, nor institutions no longer running (suspended, exited): nobody reminds them.
    """
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock, lock=False)
        return sorted_laggards(account_laggards(ctx) + contract_laggards(ctx))
