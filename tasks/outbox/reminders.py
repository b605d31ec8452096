"""Reminders and escalations: who is due by the program's rules today, written into the outbox once per period.

The flows run this every day (and a bureau may run it by hand as often as it likes), so every notice
carries an idempotency key naming its rule, its subject and its period; the outbox's unique key turns
a second run in the same period into a no-op. Sending is someone else's job (tasks/outbox/send_notices.py).

Rules and where they come from:
- account / contract reminder: ``rules.account_reminder_working_days_before_close`` /
  ``contract_reminder_working_days_before_close`` working days before the deadline (the values are
  assumed, no seed gives one); 代采 clinics are never reminded (000 §三(四), §四(一)(二));
- payment due: 次月底 after acceptance (000 §四(三), 001 att.2, 002 att.1) — reminded
  PAYMENT_DUE_REMINDER_WORKING_DAYS working days ahead (assumed);
- payment overdue: one notice per payment per started month past due; more than
  ``rules.overdue_interview_after_months`` months for a private institution or pharmacy is flagged
  for an interview (约谈, 000 §四(三)); deciding it is a person's job elsewhere;
- quarterly statistics: in the first month of each quarter, for the previous quarter (001 §四(四));
- escalation: deadlines passed → the district's reviewers, weekly (SPEC phase 5: "reminder, then
  escalation");
- gate waiting: every open gate, to each person who may decide it, ``gates.reminders.before_working_days``
  working days before its due date and on the day (assumed, models/gate_deadlines.py); once past it, one
  letter a day to each of the program's managers listing every overdue gate (gate overdue).

Everything is read with a handful of bulk queries (no query per institution), keys already in the
outbox are looked up in bulk so a repeated run builds nothing, and the rest is written with one
INSERT … SELECT per kind reading the new rows from one JSON parameter (`_enqueue`). Measured on SQLite
with 100,000 running institutions and 100,000 payments: a repeated run ≈ 6 CPU-s (a third of it the
shared `laggards`), a first run writing 150,000 notices ≈ 15 CPU-s with a bound row per notice. With
100,000 account reminders due (benchmarks/mail.py, figure 2), a first run took 5.7 CPU-s with bound rows
and 4.2 with `_enqueue` on this loaded 2-core machine; ~1.7 s of it is `laggards`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Generic, TypeVar

from dateutil.relativedelta import relativedelta
from sqlalchemy import JSON, Engine, Integer, String, Table, func, or_, select, type_coerce
from sqlmodel import Session, SQLModel

from core.bulk import json_rows
from core.db import transaction
from models.clock import Clock
from models.enrollment import Institution
from models.operations import Payment, PurchaseOrder, QuarterlyReport
from models.outbox import Notice
from models.people import addressee
from models.program import Program, User
from models.program_definition import ProgramDefinition
from models.states import InstitutionCategory, InstitutionKind, Role, category_of
from models.workdays import WorkingDays, quarter_of
from tasks.calendar import display_days
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices_from
from tasks.outbox.gate_reminders import gate_reminders
from tasks.platform.laggards import Laggard, laggards
from tasks.programs import get_program, lock_program

__all__ = [
    "PAYMENT_DUE_REMINDER_WORKING_DAYS",
    "InterviewCandidate",
    "ReminderReport",
    "months_overdue",
    "previous_quarter",
    "send_reminders",
]

# Assumed: the seeds fix the deadline (次月底) but not how early to remind; one working week.
PAYMENT_DUE_REMINDER_WORKING_DAYS = 5

# 000 §四(三) names 民营医疗机构和零售药店 for the interview; public grassroots institutions settle
# under the existing (direct) arrangement, so their overdue payments are reminded but not flagged.
_INTERVIEW_KINDS = frozenset(
    k.value for k in InstitutionKind
    if category_of(k) in (InstitutionCategory.PRIVATE_MEDICAL, InstitutionCategory.RETAIL_PHARMACY))

_WHAT = {"account": "招采子系统账号注册", "contract": "购销协议签订"}

ACCOUNT_REMINDER, CONTRACT_REMINDER = "account_reminder", "contract_reminder"
PAYMENT_DUE, PAYMENT_OVERDUE = "payment_due", "payment_overdue"
QUARTERLY, ESCALATION = "quarterly_report_reminder", "escalation"
CALENDAR_UNPUBLISHED = "calendar_unpublished"
GATE_WAITING, GATE_OVERDUE = "gate_waiting", "gate_overdue"
AUDIT_CHAIN_BROKEN = "audit_chain_broken"
KINDS: tuple[str, ...] = (ACCOUNT_REMINDER, CONTRACT_REMINDER, PAYMENT_DUE, PAYMENT_OVERDUE, QUARTERLY, ESCALATION,
                          CALENDAR_UNPUBLISHED, GATE_WAITING, GATE_OVERDUE, AUDIT_CHAIN_BROKEN)


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


PAY, ORD, INST, QR, USR, NOTICE = (
    _table(m) for m in (Payment, PurchaseOrder, Institution, QuarterlyReport, User, Notice))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class InterviewCandidate:
    """A private institution or pharmacy whose payments are overdue beyond the interview threshold (000 §四(三)).

    One per institution (the interview is with the institution, not per order): the worst months
    count, the total still owed on the flagged payments, and which payments they are.
    """

    institution_id: int
    name: str
    district: str
    kind: str
    months_overdue: int
    amount: Decimal
    oldest_due_on: date
    payment_ids: tuple[int, ...]


@dataclass
class ReminderReport:
    """What one run found due and wrote; ``due`` counts drafts (new or already sent), ``enqueued`` the new ones."""

    today: date
    due: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    enqueued: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    overdue_payments: int = 0
    # For the enforcement step (a separate issue): interview due, a person decides.
    interview_due: list[InterviewCandidate] = field(default_factory=list)
    # Late institutions whose district has no reviewer: nobody received their escalation.
    unescalated_districts: list[str] = field(default_factory=list)
    quarter_reminded: tuple[int, int] | None = None  # (year, quarter) of the statistics asked for
    # Open gates nobody active may decide (no reviewer for the district): only the manager's escalation names them.
    gates_without_decider: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- pure rules


def _plus_months(d: date, months: int) -> date:
    # A month-end deadline (次月底) stays a month end: one month after 09-30 is 10-31, not 10-30.
    if d == d + relativedelta(day=31):
        return d + relativedelta(months=months, day=31)
    return d + relativedelta(months=months)


def months_overdue(due_on: date, today: date) -> int:
    """Started months past ``due_on``: 1 from the day after it, 3 once more than two whole months passed.

    Counting started months makes ``months_overdue > 2`` mean exactly "超过2个月" (more than two
    months late) — whole months elapsed would flag a payment a month later than the seed says.
    """
    if today <= due_on:
        return 0
    m = max(1, (today.year - due_on.year) * 12 + today.month - due_on.month - 1)
    while _plus_months(due_on, m) < today:
        m += 1
    return m


def previous_quarter(today: date) -> tuple[int, int]:
    """(year, quarter) whose statistics are reported during ``today``'s quarter (001: the previous one)."""
    q = quarter_of(today)
    return (today.year, q - 1) if q > 1 else (today.year - 1, 4)


def _horizon(wdays: WorkingDays, today: date, working_days: int) -> date:
    """The last date with at most ``working_days`` working days after today (same rule as the laggards')."""
    day = today
    for _ in range(working_days + 1):
        day = wdays.next_working_day(day)
    return day - timedelta(days=1)


# --------------------------------------------------------------------------- candidates per rule


@dataclass(frozen=True)
class _Run:
    """What every rule of one run shares."""

    session: Session
    program: Program
    program_id: int
    defn: ProgramDefinition
    wdays: WorkingDays
    today: date

    def draft(self, key: str, kind: str, recipient_type: str, recipient_id: int | None, recipient_name: str,
              email: str | None, context: dict[str, Any]) -> NoticeDraft:
        # No program name in the context: every draft names the program by its id, and render_context reads
        # the name from there (issue #17: one program's 100,000 reminders repeated it, bytes stored and encoded).
        return NoticeDraft(key=key, kind=kind, recipient_type=recipient_type, recipient_id=recipient_id,
                           recipient_name=recipient_name, email=email, program_id=self.program_id, context=context)

    @cached_property
    def program_name(self) -> str:
        return self.program.name  # read once: an ORM attribute per draft costs ~1 µs × 100,000


T = TypeVar("T")


@dataclass
class _Due(Generic[T]):
    """The notices one rule calls for today, as (idempotency key, source row) pairs.

    Drafts (context dicts and all) are built only for keys not in the outbox yet: a daily run finds
    almost all of them there, and building 100,000 drafts to throw away costs seconds.
    """

    kind: str
    items: list[tuple[str, T]]
    build: Callable[[str, T], NoticeDraft]


def _deadline_reminders(run: _Run, lag: Sequence[Laggard]) -> tuple[_Due[Laggard], _Due[Laggard]]:
    """Account and contract reminders to institutions whose deadline is near and not yet passed.

    The laggards are already limited to running, non-proxy institutions within the program's
    working-day horizon; a passed deadline is the reviewers' business (escalation), and a letter
    saying "请于…前" after that date would be wrong. Period = the deadline itself.
    """

    def build(key: str, g: Laggard) -> NoticeDraft:
        # No institution_name: it is the recipient's name, which render_context fills in (issue #17).
        context: dict[str, Any] = {"due_on": g.due_on.isoformat(),
                                   "due_provisional": g.due_provisional, "working_days_left": g.working_days_left}
        if g.what == "contract":
            context["enterprise_names"] = list(g.enterprises)
        kind = ACCOUNT_REMINDER if g.what == "account" else CONTRACT_REMINDER
        return run.draft(key, kind, "institution", g.institution_id, g.name, g.email, context)

    soon = [g for g in lag if not g.overdue]
    return (
        _Due(ACCOUNT_REMINDER, [(f"reminder:account:{run.program_id}:{g.institution_id}:{g.due_on}", g)
                                for g in soon if g.what == "account"], build),
        _Due(CONTRACT_REMINDER, [(f"reminder:contract:{run.program_id}:{g.institution_id}:{g.due_on}", g)
                                 for g in soon if g.what == "contract"], build),
    )


def _unpaid(today: date) -> Any:
    # "Unpaid on the clock's day": a payment recorded later than a simulated today still counts as open.
    return or_(PAY.c.paid_on.is_(None), PAY.c.paid_on > today)


def _payments_due(run: _Run) -> _Due[Any]:
    """Unpaid payments due within the next few working days, one notice per institution and due date.

    Payments of one month's deliveries share their 次月底, so grouping makes one letter with the
    sum instead of one per order. Period = the due date.
    """
    horizon = _horizon(run.wdays, run.today, PAYMENT_DUE_REMINDER_WORKING_DAYS)
    rows = run.session.execute(
        select(INST.c.id, INST.c.name, INST.c.email, PAY.c.due_on, func.sum(PAY.c.amount), func.count(),
               PAY.c.due_on_provisional)
        .select_from(PAY.join(ORD, ORD.c.id == PAY.c.order_id).join(INST, INST.c.id == PAY.c.institution_id))
        .where(ORD.c.program_id == run.program_id, _unpaid(run.today), PAY.c.due_on >= run.today,
               PAY.c.due_on <= horizon)
        .group_by(INST.c.id, INST.c.name, INST.c.email, PAY.c.due_on, PAY.c.due_on_provisional)
    ).all()

    def build(key: str, r: Any) -> NoticeDraft:
        inst_id, name, email, due_on, amount, count, provisional = r
        return run.draft(key, PAYMENT_DUE, "institution", int(inst_id), name, email,
                         {"amount": str(Decimal(amount)), "due_on": due_on.isoformat(),  # the name: render_context
                          "due_provisional": bool(provisional), "order_count": int(count)})

    return _Due(PAYMENT_DUE, [(f"reminder:payment_due:{run.program_id}:{r[0]}:{r[3]}", r) for r in rows], build)


def _payments_overdue(run: _Run, report: ReminderReport) -> _Due[Any]:
    """One notice per overdue payment per started month; private institutions and pharmacies past the
    program's threshold are also listed in the report for an interview. Period = the month count."""
    rows = run.session.execute(
        select(PAY.c.id, PAY.c.amount, PAY.c.due_on, INST.c.id, INST.c.name, INST.c.email, INST.c.district,
               type_coerce(INST.c.kind, String),  # the plain value: 100,000 enum constructions cost seconds
               PAY.c.due_on_provisional)
        .select_from(PAY.join(ORD, ORD.c.id == PAY.c.order_id).join(INST, INST.c.id == PAY.c.institution_id))
        .where(ORD.c.program_id == run.program_id, _unpaid(run.today), PAY.c.due_on < run.today)
        .order_by(PAY.c.due_on, PAY.c.id)
    ).all()
    threshold = run.defn.rules.overdue_interview_after_months
    months_of = {due_on: months_overdue(due_on, run.today) for due_on in {r[2] for r in rows}}
    flagged: dict[int, tuple[InterviewCandidate, list[int], list[Decimal]]] = {}
    for pay_id, amount, due_on, inst_id, name, _email, district, kind, _provisional in rows:
        months = months_of[due_on]
        if months > threshold and kind in _INTERVIEW_KINDS:
            if inst_id not in flagged:
                # Rows come oldest first: the first payment seen is the oldest and the most overdue.
                flagged[inst_id] = (InterviewCandidate(inst_id, name, district, kind, months, Decimal(0), due_on, ()),
                                    [], [])
            flagged[inst_id][1].append(pay_id)
            flagged[inst_id][2].append(amount)
    report.overdue_payments = len(rows)
    report.interview_due = [replace(c, amount=sum(amounts, Decimal(0)), payment_ids=tuple(ids))
                            for c, ids, amounts in flagged.values()]

    def build(key: str, r: Any) -> NoticeDraft:
        _pay_id, amount, due_on, inst_id, name, email, _district, _kind, provisional = r
        return run.draft(key, PAYMENT_OVERDUE, "institution", int(inst_id), name, email,
                         {"amount": str(amount), "due_on": due_on.isoformat(),  # the name: render_context
                          "due_provisional": bool(provisional), "months_overdue": months_of[due_on]})

    return _Due(PAYMENT_OVERDUE, [(f"reminder:payment_overdue:{r[0]}:{months_of[r[2]]}", r) for r in rows], build)


@dataclass(frozen=True)
class _Reviewer:
    id: int
    name: str
    districts: frozenset[str]
    email: str | None = None


def _calendar_unpublished(run: _Run) -> _Due[Any]:
    """Once per year and manager: next year's holiday schedule is still not entered (issue 12's warning).

    The key names the year and the person, not the program: a manager of several programs gets one letter.
    """
    from core.settings import get_settings
    from tasks.calendar.schedules import unofficial_year_to_warn

    year = unofficial_year_to_warn(run.session, run.today, get_settings().calendar_warning_from_day)
    if year is None:
        return _Due(CALENDAR_UNPUBLISHED, [], lambda key, r: run.draft(key, CALENDAR_UNPUBLISHED, "user", 0, "", None, {}))
    mine = _program_managers(run)

    def build(key: str, m: tuple[int, str, str | None]) -> NoticeDraft:
        return run.draft(key, CALENDAR_UNPUBLISHED, "user", m[0], m[1], m[2], {"manager_name": m[1], "year": year})

    return _Due(CALENDAR_UNPUBLISHED, [(f"calendar_unpublished:{year}:{m[0]}", m) for m in mine], build)


def _program_managers(run: _Run) -> list[tuple[int, str, str | None]]:
    """(id, how a letter addresses them, e-mail) of the program's active managers (few rows)."""
    managers = run.session.execute(
        select(USR.c.id, USR.c.display_name, USR.c.unit, USR.c.email, USR.c.program_slugs)
        .where(USR.c.role == Role.PROGRAM_MANAGER.value, USR.c.active.is_(True)).order_by(USR.c.id)).tuples()
    return [(int(i), addressee(display_name=display, unit=unit) if display or unit else "项目管理员", email)
            for i, display, unit, email, slugs in managers if not slugs or run.program.slug in slugs]


def _audit_chain_broken(run: _Run) -> _Due[Any]:
    """Once per break and manager: the daily check of the audit trail's hash chains found a row edited, deleted
    or inserted behind the application's back (issue #18). The key names the break, so a new one alerts again."""
    from tasks.trust.audit_check import chain_break

    broken = chain_break(run.session, run.program_id)
    if broken is None:
        return _Due(AUDIT_CHAIN_BROKEN, [], lambda key, r: run.draft(key, AUDIT_CHAIN_BROKEN, "user", 0, "", None, {}))
    managers = run.session.execute(
        select(USR.c.id, USR.c.name, USR.c.display_name, USR.c.email, USR.c.program_slugs)
        .where(USR.c.role == Role.PROGRAM_MANAGER.value, USR.c.active.is_(True)).order_by(USR.c.id)).tuples()
    mine = [(int(i), display or name, email) for i, name, display, email, slugs in managers
            if not slugs or run.program.slug in slugs]
    problem = broken.message().split(" / ")[0]
    where = f"{broken.chain}:{broken.kind}:{broken.audit_id}:{broken.position}"

    def build(key: str, m: tuple[int, str, str | None]) -> NoticeDraft:
        return run.draft(key, AUDIT_CHAIN_BROKEN, "user", m[0], m[1], m[2],
                         {"manager_name": m[1], "problem": problem, "checked_on": run.today.isoformat()})

    return _Due(AUDIT_CHAIN_BROKEN, [(f"audit_chain_broken:{where}:{m[0]}", m) for m in mine], build)


def _reviewers(run: _Run) -> list[_Reviewer]:
    """Active district reviewers responsible for at least one of the program's districts (few rows)."""
    ours = {d.name for d in run.defn.districts}
    rows = run.session.execute(
        select(USR.c.id, USR.c.display_name, USR.c.unit, USR.c.districts, USR.c.email)
        .where(USR.c.role == Role.DISTRICT_REVIEWER.value, USR.c.active.is_(True)).order_by(USR.c.id)
    ).tuples()
    out = []
    for user_id, display, unit, districts, email in rows:
        mine = frozenset(districts or ()) & ours
        if mine:  # addressed by unit and name, never by the login name (issue #19)
            out.append(_Reviewer(int(user_id), addressee(display_name=display, unit=unit, districts=sorted(mine)),
                                 mine, email))
    return out


def _quarter_to_report(run: _Run) -> tuple[int, int, date] | None:
    """(year, quarter, due date) of the statistics to ask for today, or None.

    None outside a quarter's first month, for a program without the rule, when the quarter ended
    before the program began (nothing to count), or when that quarter's report is already in.
    """
    if run.defn.rules.quarterly_report_due is None or run.today.month % 3 != 1:
        return None
    year, quarter = previous_quarter(run.today)
    quarter_end = date(year, 3 * quarter, 1) + relativedelta(day=31)
    began = min((p.window.opens for p in run.defn.timeline()), default=None)
    if began is None or quarter_end < began:
        return None
    submitted = run.session.execute(
        select(QR.c.id).where(QR.c.program_id == run.program_id, QR.c.year == year, QR.c.quarter == quarter,
                              QR.c.submitted_at.is_not(None))).first()
    if submitted is not None:
        return None
    # Due by the end of the quarter's first month (001 §四(四) "每季度第一个月").
    return year, quarter, run.wdays.first_month_of_quarter_deadline(run.today)


def _quarterly(run: _Run, report: ReminderReport) -> _Due[tuple[int, str, str | None]]:
    """In a quarter's first month, while last quarter's table is not yet issued, tell the program's managers what is
    still theirs to do: have the quarter's data complete, then review the table the system issues and forward it.

    Nobody fills the table in any more (tasks/reports/issue.py issues it, and its issue stops these reminders), so
    district bureaus are not asked for it. Period = the reported quarter, per recipient.
    """
    period = _quarter_to_report(run)

    def build(key: str, m: tuple[int, str, str | None]) -> NoticeDraft:
        assert period is not None
        year, quarter, due_on = period
        return run.draft(key, QUARTERLY, "user", m[0], m[1], m[2],
                         {"year": year, "quarter": quarter, "due_on": due_on.isoformat()})

    if period is None:
        return _Due(QUARTERLY, [], build)
    year, quarter, _ = period
    report.quarter_reminded = (year, quarter)
    return _Due(QUARTERLY, [(f"reminder:quarterly:{run.program_id}:{year}Q{quarter}:{m[0]}", m)
                            for m in _program_managers(run)], build)


def _escalations(run: _Run, lag: Sequence[Laggard], reviewers: Sequence[_Reviewer],
                 report: ReminderReport) -> _Due[tuple[str, _Reviewer]]:
    """Passed account/contract deadlines, one list per district to each of its own reviewers, weekly.

    A reviewer only ever sees institutions of the districts they are bound to (the same boundary
    as district review). Period = the ISO week, so the list is repeated while the lateness lasts
    but not every day.
    """
    late: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in lag:  # already most-late first
        if not g.overdue:
            continue
        what = _WHAT[g.what]
        if g.enterprises:
            what = f"{what}（{'、'.join(g.enterprises)}）"
        late[g.district].append({"name": g.name, "what": what, "due_on": g.due_on.isoformat(),
                                 "due_provisional": g.due_provisional, "days_late": g.days_late})
    by_district: dict[str, list[_Reviewer]] = defaultdict(list)
    for r in reviewers:
        for d in r.districts:
            by_district[d].append(r)
    iso = run.today.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    items: list[tuple[str, tuple[str, _Reviewer]]] = []
    for district in sorted(late):
        if not by_district.get(district):
            report.unescalated_districts.append(district)
        items += [(f"escalation:{run.program_id}:{district}:{r.id}:{week}", (district, r))
                  for r in by_district.get(district, ())]

    def build(key: str, item: tuple[str, _Reviewer]) -> NoticeDraft:
        district, r = item
        return run.draft(key, ESCALATION, "user", r.id, r.name, r.email,
                         {"reviewer_name": r.name, "district": district, "items": late[district]})

    return _Due(ESCALATION, items, build)


def _gates(run: _Run, report: ReminderReport) -> list[_Due[NoticeDraft]]:
    """Open gates: their deciders before and on the due date, the managers daily after it (gate_reminders.py)."""
    found = gate_reminders(run.session, program_id=run.program_id, slug=run.program.slug,
                           program_name=run.program_name, defn=run.defn, wdays=run.wdays, today=run.today)
    report.gates_without_decider = found.without_decider
    return [_Due(kind, found.drafts.get(kind, []), lambda _key, d: d) for kind in (GATE_WAITING, GATE_OVERDUE)]


# --------------------------------------------------------------------------- entry point


def _new_drafts(session: Session, due: _Due[Any]) -> list[NoticeDraft]:
    """Drafts for the keys not in the outbox yet.

    The outbox's unique key alone keeps re-runs correct (enqueue_notices skips conflicts, also
    against a concurrent run); looking the keys up first keeps them cheap, since an index lookup
    per key costs far less than building and writing 100,000 conflicting rows, JSON and all.
    """
    if not due.items:
        return []
    # All the keys as one JSON parameter joined to the outbox's unique index: one statement. IN lists
    # of 900 took 112 round trips with 900 parameters bound each (1.0 s of 7 on PostgreSQL at 100,000).
    keys = json_rows(session, "keys", [("key", String())], [(key,) for key, _ in due.items])
    present = set(session.execute(select(NOTICE.c.idempotency_key)
                                  .join_from(keys, NOTICE, NOTICE.c.idempotency_key == keys.c.key)).scalars())
    return [due.build(key, item) for key, item in due.items if key not in present]


_DRAFT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("idempotency_key", String()), ("program_id", Integer()), ("kind", String()), ("recipient_type", String()),
    ("recipient_id", Integer()), ("recipient_name", String()), ("email", String()), ("context", JSON()))


def _enqueue(session: Session, drafts: Sequence[NoticeDraft], now: datetime) -> int:
    """`enqueue_notices` for many drafts: one JSON parameter, read as a table by the INSERT … SELECT.

    Binding 100,000 rows one by one (aware timestamps, enums, a JSON context each) cost ~3 s on
    SQLite here, most of a first run's time; the database reads the same rows from one document in
    a fraction of that. Same rules: a key already in the outbox is skipped; no address → no_address.
    """
    added = 0
    for start in range(0, len(drafts), _ENQUEUE_SLICE):  # slices: one 100,000-row document doubled the peak RSS
        rows = [(d.key, d.program_id, d.kind, d.recipient_type, d.recipient_id, d.recipient_name, d.email, d.context)
                for d in drafts[start : start + _ENQUEUE_SLICE]]
        source = json_rows(session, "drafts", _DRAFT_COLUMNS, rows)
        added += enqueue_notices_from(session, select(*(source.c[name] for name, _ in _DRAFT_COLUMNS)), now)
    return added


_ENQUEUE_SLICE = 10_000


def send_reminders(engine: Engine, slug: str, *, clock: Clock) -> ReminderReport:
    """Enqueue every reminder and escalation due today under the program's rules; safe to run any number of times.

    Only writes the outbox, in one transaction; the notices go out with the next send_pending.
    """
    today = clock.today()
    lag = laggards(engine, slug, clock=clock)  # bulk, and the same list the dashboard shows
    report = ReminderReport(today=today)
    now = clock.now()
    with transaction(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        # Idempotency keys already keep a notice from being written twice; the lock keeps two runs from both
        # computing the same day's escalations and from counting each other's rows in their reports.
        lock_program(session, program.id, slug=slug, what="reminders")
        run = _Run(session, program, program.id, defn, display_days(session), today)  # horizons only: never refuses
        reviewers = _reviewers(run)
        accounts, contracts = _deadline_reminders(run, lag)
        rules: list[_Due[Any]] = [
            accounts,
            contracts,
            _payments_due(run),
            _payments_overdue(run, report),
            _quarterly(run, report),
            _escalations(run, lag, reviewers, report),
            _calendar_unpublished(run),
            *_gates(run, report),
            _audit_chain_broken(run),
        ]
        for due in rules:
            report.due[due.kind] = len(due.items)
            report.enqueued[due.kind] = _enqueue(session, _new_drafts(session, due), now)
    return report
