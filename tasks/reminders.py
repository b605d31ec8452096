"""Reminders and escalations: who is due by the program's rules today, written into the outbox once per period.

The flows run this every day (and a bureau may run it by hand as often as it likes), so every notice
carries an idempotency key naming its rule, its subject and its period; the outbox's unique key turns
a second run in the same period into a no-op. Sending is someone else's job (tasks/send_notices.py).

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
  escalation").

Everything is read with a handful of bulk queries and written with one bulk insert per notice kind,
never a query per institution: 100,000 institutions take seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, Table, func, or_, select
from sqlmodel import Session, SQLModel

from models.clock import Clock
from models.enrollment import Institution
from models.operations import Payment, PurchaseOrder, QuarterlyReport
from models.program import Program, User
from models.program_definition import ProgramDefinition
from models.states import InstitutionCategory, InstitutionKind, Role, category_of
from models.workdays import WorkingDays, quarter_of
from sanjin.db import transaction
from tasks.accounts_contracts import Laggard, laggards
from tasks.calendar import working_days_for
from tasks.outbox import NoticeDraft, enqueue_notices
from tasks.programs import get_program

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
_INTERVIEW_CATEGORIES = frozenset({InstitutionCategory.PRIVATE_MEDICAL, InstitutionCategory.RETAIL_PHARMACY})

_WHAT = {"account": "招采子系统账号注册", "contract": "购销协议签订"}

ACCOUNT_REMINDER, CONTRACT_REMINDER = "account_reminder", "contract_reminder"
PAYMENT_DUE, PAYMENT_OVERDUE = "payment_due", "payment_overdue"
QUARTERLY, ESCALATION = "quarterly_report_reminder", "escalation"
KINDS: tuple[str, ...] = (ACCOUNT_REMINDER, CONTRACT_REMINDER, PAYMENT_DUE, PAYMENT_OVERDUE, QUARTERLY, ESCALATION)


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


PAY, ORD, INST, QR, USR = (_table(m) for m in (Payment, PurchaseOrder, Institution, QuarterlyReport, User))


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


# --------------------------------------------------------------------------- drafts per rule


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
        return NoticeDraft(key=key, kind=kind, recipient_type=recipient_type, recipient_id=recipient_id,
                           recipient_name=recipient_name, email=email, program_id=self.program_id,
                           context={"program_name": self.program.name, **context})


def _deadline_reminders(run: _Run, lag: Sequence[Laggard]) -> tuple[list[NoticeDraft], list[NoticeDraft]]:
    """Account and contract reminders to institutions whose deadline is near and not yet passed.

    The laggards are already limited to running, non-proxy institutions within the program's
    working-day horizon; a passed deadline is the reviewers' business (escalation), and a letter
    saying "请于…前" after that date would be wrong. Period = the deadline itself.
    """
    accounts: list[NoticeDraft] = []
    contracts: list[NoticeDraft] = []
    for g in lag:
        if g.overdue:
            continue
        common = {"institution_name": g.name, "due_on": g.due_on.isoformat(), "working_days_left": g.working_days_left}
        if g.what == "account":
            accounts.append(run.draft(f"reminder:account:{run.program_id}:{g.institution_id}:{g.due_on}",
                                      ACCOUNT_REMINDER, "institution", g.institution_id, g.name, g.email, common))
        else:
            contracts.append(run.draft(f"reminder:contract:{run.program_id}:{g.institution_id}:{g.due_on}",
                                       CONTRACT_REMINDER, "institution", g.institution_id, g.name, g.email,
                                       {**common, "enterprise_names": list(g.enterprises)}))
    return accounts, contracts


def _unpaid(today: date) -> Any:
    # "Unpaid on the clock's day": a payment recorded later than a simulated today still counts as open.
    return or_(PAY.c.paid_on.is_(None), PAY.c.paid_on > today)


def _payments_due(run: _Run) -> list[NoticeDraft]:
    """Unpaid payments due within the next few working days, one notice per institution and due date.

    Payments of one month's deliveries share their 次月底, so grouping makes one letter with the
    sum instead of one per order. Period = the due date.
    """
    horizon = _horizon(run.wdays, run.today, PAYMENT_DUE_REMINDER_WORKING_DAYS)
    rows = run.session.execute(
        select(INST.c.id, INST.c.name, INST.c.email, PAY.c.due_on, func.sum(PAY.c.amount), func.count())
        .select_from(PAY.join(ORD, ORD.c.id == PAY.c.order_id).join(INST, INST.c.id == PAY.c.institution_id))
        .where(ORD.c.program_id == run.program_id, _unpaid(run.today), PAY.c.due_on >= run.today,
               PAY.c.due_on <= horizon)
        .group_by(INST.c.id, INST.c.name, INST.c.email, PAY.c.due_on)
    ).tuples()
    return [run.draft(f"reminder:payment_due:{run.program_id}:{inst_id}:{due_on}", PAYMENT_DUE, "institution",
                      int(inst_id), name, email,
                      {"institution_name": name, "amount": str(Decimal(amount)), "due_on": due_on.isoformat(),
                       "order_count": int(count)})
            for inst_id, name, email, due_on, amount, count in rows]


def _payments_overdue(run: _Run, report: ReminderReport) -> list[NoticeDraft]:
    """One notice per overdue payment per started month; private institutions and pharmacies past the
    program's threshold are also listed in the report for an interview. Period = the month count."""
    rows = run.session.execute(
        select(PAY.c.id, PAY.c.amount, PAY.c.due_on, INST.c.id, INST.c.name, INST.c.email, INST.c.district,
               INST.c.kind)
        .select_from(PAY.join(ORD, ORD.c.id == PAY.c.order_id).join(INST, INST.c.id == PAY.c.institution_id))
        .where(ORD.c.program_id == run.program_id, _unpaid(run.today), PAY.c.due_on < run.today)
        .order_by(PAY.c.due_on, PAY.c.id)
    ).tuples()
    threshold = run.defn.rules.overdue_interview_after_months
    months_of: dict[date, int] = {}  # 100,000 payments share a few month-end due dates
    flagged: dict[int, list[tuple[int, Decimal, date, int]]] = defaultdict(list)
    names: dict[int, tuple[str, str, str]] = {}
    drafts: list[NoticeDraft] = []
    for pay_id, amount, due_on, inst_id, name, email, district, kind in rows:
        if due_on not in months_of:
            months_of[due_on] = months_overdue(due_on, run.today)
        months = months_of[due_on]
        drafts.append(run.draft(f"reminder:payment_overdue:{pay_id}:{months}", PAYMENT_OVERDUE, "institution",
                                int(inst_id), name, email,
                                {"institution_name": name, "amount": str(Decimal(amount)),
                                 "due_on": due_on.isoformat(), "months_overdue": months}))
        if months > threshold and category_of(InstitutionKind(kind)) in _INTERVIEW_CATEGORIES:
            flagged[int(inst_id)].append((int(pay_id), Decimal(amount), due_on, months))
            names[int(inst_id)] = (name, district, str(InstitutionKind(kind).value))
    report.overdue_payments = len(drafts)
    report.interview_due = [
        InterviewCandidate(institution_id=inst_id, name=names[inst_id][0], district=names[inst_id][1],
                           kind=names[inst_id][2], months_overdue=max(p[3] for p in pays),
                           amount=sum((p[1] for p in pays), Decimal(0)), oldest_due_on=min(p[2] for p in pays),
                           payment_ids=tuple(p[0] for p in pays))
        for inst_id, pays in sorted(flagged.items(), key=lambda kv: (min(p[2] for p in kv[1]), kv[0]))]
    return drafts


@dataclass(frozen=True)
class _Reviewer:
    id: int
    name: str
    districts: frozenset[str]


def _reviewers(run: _Run) -> list[_Reviewer]:
    """Active district reviewers responsible for at least one of the program's districts (few rows)."""
    ours = {d.name for d in run.defn.districts}
    rows = run.session.execute(
        select(USR.c.id, USR.c.name, USR.c.display_name, USR.c.districts)
        .where(USR.c.role == Role.DISTRICT_REVIEWER.value, USR.c.active.is_(True)).order_by(USR.c.id)
    ).tuples()
    out = []
    for user_id, name, display, districts in rows:
        mine = frozenset(districts or ()) & ours
        if mine:
            out.append(_Reviewer(int(user_id), display or name, mine))
    return out


def _quarterly(run: _Run, reviewers: Sequence[_Reviewer], report: ReminderReport) -> list[NoticeDraft]:
    """In a quarter's first month, ask every district bureau of the program for last quarter's table.

    Skipped when the program has no such rule, when the quarter ended before the program began
    (nothing to count), or when that quarter's report was already submitted. Period = the quarter.
    """
    if run.defn.rules.quarterly_report_due is None or run.today.month % 3 != 1:
        return []
    year, quarter = previous_quarter(run.today)
    quarter_end = date(year, 3 * quarter, 1) + relativedelta(day=31)
    began = min((p.window.opens for p in run.defn.timeline()), default=None)
    if began is None or quarter_end < began:
        return []
    submitted = run.session.execute(
        select(QR.c.id).where(QR.c.program_id == run.program_id, QR.c.year == year, QR.c.quarter == quarter,
                              QR.c.submitted_at.is_not(None))).first()
    if submitted is not None:
        return []
    report.quarter_reminded = (year, quarter)
    # The table is due by the end of the quarter's first month (001 §四(四) "每季度第一个月").
    due_on = run.wdays.first_month_of_quarter_deadline(run.today)
    return [run.draft(f"reminder:quarterly:{run.program_id}:{year}Q{quarter}:{r.id}", QUARTERLY, "user", r.id,
                      r.name, None, {"year": year, "quarter": quarter, "due_on": due_on.isoformat()})
            for r in reviewers]


def _escalations(run: _Run, lag: Sequence[Laggard], reviewers: Sequence[_Reviewer],
                 report: ReminderReport) -> list[NoticeDraft]:
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
                                 "days_late": g.days_late})
    by_district: dict[str, list[_Reviewer]] = defaultdict(list)
    for r in reviewers:
        for d in r.districts:
            by_district[d].append(r)
    iso = run.today.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    drafts: list[NoticeDraft] = []
    for district in sorted(late):
        if not by_district.get(district):
            report.unescalated_districts.append(district)
            continue
        for r in by_district[district]:
            drafts.append(run.draft(f"escalation:{run.program_id}:{district}:{r.id}:{week}", ESCALATION, "user",
                                    r.id, r.name, None,
                                    {"reviewer_name": r.name, "district": district, "items": late[district]}))
    return drafts


# --------------------------------------------------------------------------- entry point


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
        run = _Run(session, program, program.id, defn, working_days_for(defn), today)
        reviewers = _reviewers(run)
        accounts, contracts = _deadline_reminders(run, lag)
        batches: Iterable[tuple[str, list[NoticeDraft]]] = (
            (ACCOUNT_REMINDER, accounts),
            (CONTRACT_REMINDER, contracts),
            (PAYMENT_DUE, _payments_due(run)),
            (PAYMENT_OVERDUE, _payments_overdue(run, report)),
            (QUARTERLY, _quarterly(run, reviewers, report)),
            (ESCALATION, _escalations(run, lag, reviewers, report)),
        )
        for kind, drafts in batches:
            report.due[kind] = len(drafts)
            report.enqueued[kind] = enqueue_notices(session, drafts, now)
    return report
