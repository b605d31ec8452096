"""Where a program stands today: its timeline, open windows, counts per state for each phase, coverage and laggards.

Everything here is counted by the database (GROUP BY, LIMIT): the dashboard asks on every page view, and
at 100,000 institutions a row per institution in Python would cost the page its 100 ms.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, case, func, literal, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from models.catalog import Enterprise, EnterpriseDeclaration, ListVersion
from models.clock import Clock
from models.enrollment import Application, Gate, Institution
from models.operations import Contract, Payment, PlatformAccount, PurchaseOrder
from models.program import AllianceInvitation
from models.program_definition import PhaseName, ProgramDefinition
from models.states import AccountState, ApplicationState, ContractState, GateState
from models.workdays import WorkingDays
from tasks.platform.laggard_seek import LAGGARD_KINDS as LAGGARD_KINDS  # the pages and the CLI name the kinds from here
from tasks.platform.laggard_seek import LaggardKey, Scope, count_laggards, seek_laggards
from tasks.programs import get_program
from tasks.reports.coverage import COVERED as COVERED
from tasks.reports.coverage import Coverage as Coverage
from tasks.reports.coverage import CoverageRow as CoverageRow
from tasks.reports.coverage import coverage as coverage
from tasks.reports.progress import batch_counts


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
    calendar_warning: str | None = None  # next year's (or this year's) holiday schedule is not official yet

    def as_json(self) -> dict[str, Any]:
        return {
            "program": self.slug, "name": self.name, "today": self.today.isoformat(), "simulated": self.simulated,
            "open_windows": [p.phase for p in self.phases if p.window == "open"],
            "phases": [{"phase": p.phase, "label": p.label, "opens": p.opens.isoformat(),
                        "closes": p.closes.isoformat() if p.closes else None, "window": p.window,
                        "counts": p.counts, "open_gates": p.open_gates} for p in self.phases],
            "lists": self.lists, "outbox": self.outbox, "calendar_warning": self.calendar_warning,
        }


def _grouped(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(getattr(k, "value", k)): int(n) for k, n in rows}


def phase_counts(session: Session, program_id: int,
                 only: Collection[PhaseName] | None = None) -> dict[PhaseName, dict[str, int]]:
    """Counts per state for each phase, or for the phases in `only` (the others are not counted, nor returned).

    A phase flow's table shows its own phase: counting the others read what it never shows (at 100,000
    institutions the applications' GROUP BY is a pass over the table, ~0.04 s, in the accounts and contracts flows).
    """
    def wanted(phase: PhaseName) -> bool:
        return only is None or phase in only

    out: dict[PhaseName, dict[str, int]] = {}
    batches = (batch_counts(session, program_id)  # non-empty batches only: an empty one is not 运行中
               if wanted(PhaseName.ENROLLMENT) or wanted(PhaseName.CONTINUOUS_REVIEW) else {})
    if wanted(PhaseName.ALLIANCE):
        out[PhaseName.ALLIANCE] = _grouped(session, AllianceInvitation.state,
                                           AllianceInvitation.program_id == program_id)
    if wanted(PhaseName.DRUG_LIST):
        out[PhaseName.DRUG_LIST] = _grouped(session, EnterpriseDeclaration.state,
                                            EnterpriseDeclaration.program_id == program_id)
    if wanted(PhaseName.ENROLLMENT):
        enrollment = _grouped(session, Application.state, Application.program_id == program_id)
        enrollment.update({f"batch_{k}": v for k, v in batches.items()})
        out[PhaseName.ENROLLMENT] = enrollment
    if wanted(PhaseName.ACCOUNTS):
        out[PhaseName.ACCOUNTS] = _grouped(session, PlatformAccount.state, PlatformAccount.program_id == program_id)
    if wanted(PhaseName.CONTRACTS):
        out[PhaseName.CONTRACTS] = _grouped(session, Contract.state, Contract.program_id == program_id)
    if wanted(PhaseName.CONTINUOUS_REVIEW):
        out[PhaseName.CONTINUOUS_REVIEW] = {f"batch_{k}": v for k, v in batches.items()}
    return out


def program_status(engine: Engine, slug: str, *, clock: Clock, simulated: bool = False,
                   outbox: bool = True, only: Collection[PhaseName] | None = None) -> ProgramStatus:
    """`outbox=False` skips the outbox counts (the web overview does not show them; they change as mail goes out);
    `only`: count the states of these phases only (every phase is still listed, the others with no counts)."""
    from models.outbox import Notice

    today = clock.today()
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        counts = phase_counts(session, program.id, only)
        gates = _grouped(session, Gate.phase, Gate.program_id == program.id, Gate.state == GateState.OPEN)
        phases = [
            PhaseStatus(spec.name.value, spec.display_label, spec.window.opens, spec.window.closes,
                        spec.window.state_on(today), counts.get(spec.name, {}), gates.get(spec.name.value, 0))
            for spec in defn.timeline()
        ]
        versions = session.execute(
            select(ListVersion.kind, func.max(ListVersion.number)).where(ListVersion.program_id == program.id)
            .group_by(ListVersion.kind)).all()
        notices = _grouped(session, Notice.status, Notice.program_id == program.id) if outbox else {}
        from core.settings import get_settings
        from tasks.calendar.schedules import calendar_warning

        warning = calendar_warning(session, today, get_settings().calendar_warning_from_day)
        return ProgramStatus(slug, program.name, today, simulated, phases,
                             {str(getattr(k, "value", k)): int(n) for k, n in versions}, notices, warning)


# --------------------------------------------------------------------------- coverage

# Counted against the program's register of designated institutions: tasks/reports/coverage.py (imported above).

# --------------------------------------------------------------------------- laggards, summarised



@dataclass(frozen=True)
class LaggardRow:
    """One institution behind on one thing; lateness in working days (调休 included)."""

    what: str  # account / contract / payment
    institution_id: int
    name: str
    district: str
    insurance_code: str
    due_on: date  # for contracts and payments: the earliest unmet deadline
    overdue: bool
    working_days_late: int
    working_days_left: int
    detail: str  # contracts: the enterprises still unsigned; payments: how many and how much
    due_provisional: bool = False  # in a year without an official schedule yet (暂定)


@dataclass
class LaggardPage:
    """Counts of every laggard by kind (overdue / due soon) and one page of them, most late first."""

    counts: dict[str, dict[str, int]]
    rows: list[LaggardRow]
    total: int  # laggards matching the filter
    offset: int
    limit: int


def _reminder_horizon(wdays: WorkingDays, today: date, working_days: int) -> date:
    """The last date with at most `working_days` working days after today (as tasks/platform/laggards.py)."""
    day = today
    for _ in range(working_days + 1):
        day = wdays.next_working_day(day)
    return day - timedelta(days=1)


def _table(model: Any) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


def _laggard_queries(program_id: int, defn: ProgramDefinition, wdays: WorkingDays, today: date,
                     district: str | Sequence[str] | None) -> dict[str, Any]:
    """Per kind, a query of (id, name, district, insurance_code, due_on, n, amount), one row per institution.

    The rules are those of tasks.platform.laggards.laggards (pending, not proxy-procured, running, due by
    the reminder horizon) and of the overdue-payment reminders (unpaid on the clock's day, past due).
    """
    acc, con, pay, order = _table(PlatformAccount), _table(Contract), _table(Payment), _table(PurchaseOrder)
    inst, app = _table(Institution), _table(Application)
    running = sa_select(app.c.institution_id).where(app.c.program_id == program_id,
                                                    app.c.state == ApplicationState.RUNNING)
    cols = (inst.c.id, inst.c.name, inst.c.district, inst.c.insurance_code)
    in_district = ([inst.c.district == district] if isinstance(district, str) and district else
                   [inst.c.district.in_(list(district))] if district is not None and not isinstance(district, str)
                   else [])
    reminded = [inst.c.proxy_parent_id.is_(None), inst.c.id.in_(running), *in_district]
    rules = defn.rules
    account_horizon = _reminder_horizon(wdays, today, rules.account_reminder_working_days_before_close)
    contract_horizon = _reminder_horizon(wdays, today, rules.contract_reminder_working_days_before_close)
    accounts = (sa_select(*cols, acc.c.due_on.label("due_on"), literal(1).label("n"), literal(0).label("amount"))
                .join(inst, inst.c.id == acc.c.institution_id)
                .where(acc.c.program_id == program_id, acc.c.state == AccountState.PENDING,
                       acc.c.due_on.is_not(None), acc.c.due_on <= account_horizon, *reminded))
    unsigned = (sa_select(con.c.institution_id, func.min(con.c.due_on).label("due_on"), func.count().label("n"))
                .where(con.c.program_id == program_id, con.c.state == ContractState.PENDING,
                       con.c.due_on.is_not(None), con.c.due_on <= contract_horizon)
                .group_by(con.c.institution_id).subquery())  # grouped by id alone, then joined: no string keys
    contracts = (sa_select(*cols, unsigned.c.due_on, unsigned.c.n, literal(0).label("amount"))
                 .join_from(unsigned, inst, inst.c.id == unsigned.c.institution_id).where(*reminded))
    payments = (sa_select(*cols, func.min(pay.c.due_on).label("due_on"), func.count().label("n"),
                          func.sum(pay.c.amount).label("amount"))
                .join(order, order.c.id == pay.c.order_id).join(inst, inst.c.id == pay.c.institution_id)
                .where(order.c.program_id == program_id, pay.c.due_on < today,
                       or_(pay.c.paid_on.is_(None), pay.c.paid_on > today), *in_district)
                .group_by(*cols))
    return {"account": accounts, "contract": contracts, "payment": payments}


def laggard_page(session: Session, program_id: int, defn: ProgramDefinition, today: date, *,
                 what: str | None = None, district: str | Sequence[str] | None = None, offset: int = 0,
                 limit: int = 20, counts: dict[str, dict[str, int]] | None = None,
                 after: LaggardKey | None = None, before: LaggardKey | None = None,
                 from_end: bool = False) -> LaggardPage:
    """Who is behind, counted in the database, and one page of them: 100,000 laggards never become objects.

    Order as tasks.platform.laggards.laggards: earliest deadline (= most working days late) first, then
    kind, district and code (and id). The page is read by seek (tasks/platform/laggard_seek.py): the rows after
    `after`, before `before`, the last ones (`from_end`), or — for the first pages — the first
    offset + limit rows. `counts` already known for the same filter (the overview's, for the unfiltered
    list) are not counted again.
    """
    from tasks.calendar import display_days

    wdays = display_days(session)  # showing who is late never refuses a year without an official schedule
    queries = _laggard_queries(program_id, defn, wdays, today, district)
    kinds = [what] if what in queries else list(queries)
    known = counts
    counts = {}
    scope = _seek_scope(program_id, defn, wdays, today, district)
    for kind, query in queries.items():
        if known is not None and kind in known:
            counts[kind] = known[kind]
            continue
        if kind != "payment" and scope.districts is not None:  # a district's institutions, walked by its index
            counts[kind] = count_laggards(session, scope, kind)
            continue
        sub = query.subquery()
        n, late = session.execute(select(func.count(), func.coalesce(func.sum(
            case((sub.c.due_on < today, 1), else_=0)), 0))).one()
        counts[kind] = {"overdue": int(late), "due_soon": int(n) - int(late)}
    total = sum(sum(counts[k].values()) for k in kinds)
    if from_end:
        last = total % limit or limit
        page = seek_laggards(session, scope, kinds, before=END, limit=last)
    elif after is not None or before is not None:
        page = seek_laggards(session, scope, kinds, after=after, before=before, limit=limit)
    else:
        page = seek_laggards(session, scope, kinds, limit=offset + limit)[offset:]
    enterprises = _unsigned_enterprises(session, program_id, [r.id for kind, r in page if kind == "contract"])
    lateness: dict[date, tuple[bool, int, int]] = {}
    rows = []
    for kind, r in page:
        due = r.due_on
        if due not in lateness:
            lateness[due] = ((True, wdays.working_days_between(due, today), 0) if today > due
                             else (False, 0, wdays.working_days_between(today, due)))
        overdue, late, left = lateness[due]
        detail = ("、".join(enterprises.get(int(r.id), [])) if kind == "contract"
                  else f"{int(r.n)} 笔，共 {Decimal(r.amount or 0):,.2f} 元" if kind == "payment" else "")
        rows.append(LaggardRow(kind, int(r.id), r.name, r.district, r.insurance_code, due, overdue, late, left, detail,
                               kind != "payment" and not wdays.is_official(due.year)))
    return LaggardPage(counts, rows, total, offset, limit)


def laggard_counts_by_district(session: Session, program_id: int, defn: ProgramDefinition,
                               today: date) -> dict[str, dict[str, dict[str, int]]]:
    """Overdue and due-soon laggards per district and kind, in one grouped pass per kind (the overview keeps
    them, so a district's laggards page counts nothing: walking a district's 10,000 institutions took 0.7 s)."""
    from tasks.calendar import display_days

    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind, query in _laggard_queries(program_id, defn, display_days(session), today, None).items():
        sub = query.subquery()
        for district, n, late in session.execute(select(sub.c.district, func.count(), func.coalesce(func.sum(
                case((sub.c.due_on < today, 1), else_=0)), 0)).group_by(sub.c.district)):
            out.setdefault(str(district), {})[kind] = {"overdue": int(late), "due_soon": int(n) - int(late)}
    return out


def summed(by_district: dict[str, dict[str, dict[str, int]]], districts: Sequence[str] | None = None
           ) -> dict[str, dict[str, int]]:
    """The counts of `districts` (all when None) added up, every kind present."""
    total = {kind: {"overdue": 0, "due_soon": 0} for kind in LAGGARD_KINDS}
    for district, kinds in by_district.items():
        if districts is None or district in districts:
            for kind, c in kinds.items():
                for k in ("overdue", "due_soon"):
                    total[kind][k] += c[k]
    return total


END: LaggardKey = (date.max, len(LAGGARD_KINDS), "\uffff", "\uffff", 2**62)  # after every laggard: read backwards from it


def _seek_scope(program_id: int, defn: ProgramDefinition, wdays: WorkingDays, today: date,
                district: str | Sequence[str] | None) -> Scope:
    rules = defn.rules
    districts = ([district] if isinstance(district, str) and district else
                 list(district) if district is not None and not isinstance(district, str) else None)
    return Scope(program_id, today,
                 _reminder_horizon(wdays, today, rules.account_reminder_working_days_before_close),
                 _reminder_horizon(wdays, today, rules.contract_reminder_working_days_before_close), districts)


def _unsigned_enterprises(session: Session, program_id: int, institution_ids: list[int]) -> dict[int, list[str]]:
    if not institution_ids:
        return {}
    out: dict[int, list[str]] = {}
    for inst_id, name in session.execute(
            select(Contract.institution_id, Enterprise.name).join(Enterprise, Enterprise.id == Contract.enterprise_id)  # type: ignore[arg-type]
            .where(Contract.program_id == program_id, Contract.state == ContractState.PENDING,
                   col(Contract.institution_id).in_(institution_ids)).order_by(Enterprise.name)):
        out.setdefault(int(inst_id), []).append(name)
    return out
