"""Reminders as policy: once per rule and period, working days with 调休, 代采 exempt, reviewers see their own district."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.catalog import Enterprise
from models.clock import FixedClock
from models.enrollment import Institution
from models.operations import Contract, Payment, PlatformAccount, PurchaseOrder, QuarterlyReport
from models.outbox import Notice
from models.program import Program
from models.states import AccountState, ContractState, GateKind, InstitutionKind, NoticeStatus, Role
from models.workdays import fixed_deadline
from notifications.render import render_notice
from tasks.gates.rows import GateSpec, open_gates
from tasks.outbox.reminders import months_overdue, previous_quarter, send_reminders
from tasks.outbox.send_notices import render_context
from tasks.users import add_user
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_product,
    make_program,
    make_running_application,
    shanghai,
)

SLUG = "shenyang-2025"
RAN = shanghai(2025, 9, 30, 18)


# --------------------------------------------------------------------------- helpers


def _running(engine: Engine, program: Program, *, district: str, kind: InstitutionKind,
             email: str | None = "inst@example.cn", proxy_parent_id: int | None = None) -> Institution:
    inst = make_institution(engine, district=district, kind=kind, email=email, proxy_parent_id=proxy_parent_id)
    make_running_application(engine, program, inst, running_at=RAN)
    return inst


def _account(engine: Engine, program: Program, inst: Institution, due_on: date,
             state: AccountState = AccountState.PENDING) -> None:
    with Session(engine) as session:
        session.add(PlatformAccount(program_id=program.id or 0, institution_id=inst.id or 0, state=state,
                                    due_on=due_on))
        session.commit()


def _contract(engine: Engine, program: Program, inst: Institution, enterprise: Enterprise, due_on: date) -> None:
    with Session(engine) as session:
        session.add(Contract(program_id=program.id or 0, institution_id=inst.id or 0,
                             enterprise_id=enterprise.id or 0, year=2025, state=ContractState.PENDING,
                             due_on=due_on))
        session.commit()


def _payment(engine: Engine, program: Program, inst: Institution, amount: str, due_on: date,
             paid_on: date | None = None) -> int:
    enterprise = make_enterprise(engine)
    product = make_product(engine, enterprise)
    with Session(engine) as session:
        order = PurchaseOrder(program_id=program.id or 0, order_no=f"PO-{product.id}", institution_id=inst.id or 0,
                              product_id=product.id or 0, enterprise_id=enterprise.id or 0, distributor="配送企业",
                              quantity=10, unit_price=Decimal(amount) / 10, amount=Decimal(amount),
                              ordered_at=shanghai(2025, 10, 1, 9), accepted_on=date(2025, 10, 3))
        session.add(order)
        session.flush()
        payment = Payment(order_id=order.id or 0, institution_id=inst.id or 0, amount=Decimal(amount),
                          due_on=due_on, paid_on=paid_on)
        session.add(payment)
        session.commit()
        return payment.id or 0


def _notices(engine: Engine, kind: str | None = None) -> list[Notice]:
    with Session(engine) as session:
        query = select(Notice).order_by(col(Notice.id))
        if kind is not None:
            query = query.where(col(Notice.kind) == kind)
        return list(session.execute(query).scalars())


def _run(engine: Engine, *day: int) -> None:
    send_reminders(engine, SLUG, clock=clock_at(*day, 8, 30))


@dataclass
class World:
    program: Program
    pharmacy: Institution


@pytest.fixture
def world(engine: Engine) -> World:
    program = make_program(engine, SLUG)
    return World(program, _running(engine, program, district="和平区", kind=InstitutionKind.CHAIN_PHARMACY))


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(("due_on", "today", "months"), [
    (date(2025, 8, 31), date(2025, 8, 31), 0),  # due today: not overdue
    (date(2025, 8, 31), date(2025, 9, 1), 1),
    (date(2025, 8, 31), date(2025, 9, 30), 1),  # one month end to the next: exactly one month
    (date(2025, 8, 31), date(2025, 10, 1), 2),
    (date(2025, 8, 31), date(2025, 10, 31), 2),  # exactly two months: not yet "超过2个月"
    (date(2025, 8, 31), date(2025, 11, 1), 3),
    (date(2025, 9, 30), date(2025, 10, 31), 1),  # month ends stay month ends (10-31, not 10-30)
    (date(2025, 9, 30), date(2025, 11, 1), 2),
    (date(2025, 12, 1), date(2026, 2, 1), 2),  # a rolled-forward due date counts by its day
    (date(2025, 12, 1), date(2026, 2, 2), 3),
    (date(2024, 1, 31), date(2025, 1, 31), 12),
])
def test_months_overdue_counts_started_months_so_more_than_two_means_past_two_whole_months(
        due_on: date, today: date, months: int) -> None:
    assert months_overdue(due_on, today) == months


@pytest.mark.parametrize(("today", "expected"), [
    (date(2025, 10, 9), (2025, 3)), (date(2026, 1, 5), (2025, 4)), (date(2026, 4, 1), (2026, 1)),
])
def test_quarterly_statistics_ask_for_the_previous_quarter(today: date, expected: tuple[int, int]) -> None:
    assert previous_quarter(today) == expected


# --------------------------------------------------------------------------- accounts and contracts


def test_a_reminder_run_twice_on_the_same_day_enqueues_once(engine: Engine, world: World) -> None:
    _account(engine, world.program, world.pharmacy, date(2025, 11, 30))
    clock = clock_at(2025, 11, 24, 8, 30)
    first = send_reminders(engine, SLUG, clock=clock)
    second = send_reminders(engine, SLUG, clock=clock)
    assert first.enqueued["account_reminder"] == 1
    assert second.due["account_reminder"] == 1 and second.enqueued["account_reminder"] == 0
    (notice,) = _notices(engine)
    assert notice.kind == "account_reminder" and notice.recipient_id == world.pharmacy.id
    assert notice.context["due_on"] == "2025-11-30" and notice.context["working_days_left"] == 4


def test_reminders_written_in_several_slices_are_each_written_once_with_their_context(
        engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tasks.outbox.reminders._ENQUEUE_SLICE", 2)  # 5 reminders: slices of 2, 2 and 1
    others = [_running(engine, world.program, district="和平区", kind=InstitutionKind.SINGLE_PHARMACY,
                       email=None if i == 3 else f"p{i}@example.cn") for i in range(4)]
    for inst in [world.pharmacy, *others]:
        _account(engine, world.program, inst, date(2025, 11, 30))
    clock = clock_at(2025, 11, 24, 8, 30)
    assert send_reminders(engine, SLUG, clock=clock).enqueued["account_reminder"] == 5
    assert send_reminders(engine, SLUG, clock=clock).enqueued["account_reminder"] == 0
    notices = {n.recipient_id: n for n in _notices(engine, "account_reminder")}
    assert set(notices) == {i.id for i in [world.pharmacy, *others]}
    for inst in [world.pharmacy, *others]:
        notice = notices[inst.id]
        # The program's and the institution's names are the row's to give (its program, its recipient; issue #17).
        assert (notice.program_id, notice.recipient_name) == (world.program.id, inst.name)
        assert notice.context == {"due_on": "2025-11-30", "due_provisional": False, "working_days_left": 4}
        assert (notice.email, notice.status) == ((inst.email, NoticeStatus.PENDING) if inst.email
                                                 else (None, NoticeStatus.NO_ADDRESS))


def test_the_next_day_is_still_the_same_period_so_still_one_reminder(engine: Engine, world: World) -> None:
    _account(engine, world.program, world.pharmacy, date(2025, 11, 30))
    _run(engine, 2025, 11, 24)
    _run(engine, 2025, 11, 25)
    _run(engine, 2025, 11, 28)
    assert len(_notices(engine, "account_reminder")) == 1


@pytest.mark.parametrize(("due_on", "too_early", "first_day"), [
    # 2025-11-30 is a Sunday: five working days before it start on Monday 11-24, so Friday 11-21 is the
    # first day with only five working days (11-24..11-28) left.
    (date(2025, 11, 30), date(2025, 11, 20), date(2025, 11, 21)),
    # Across 国庆 (10-01..10-08 off, Sunday 09-28 worked as 调休): from Friday 09-26 only 09-28, 09-29,
    # 09-30, 10-09 and 10-10 are working days — 14 calendar days, 10 weekdays, but 5 working days.
    (date(2025, 10, 10), date(2025, 9, 25), date(2025, 9, 26)),
])
def test_an_account_reminder_starts_n_working_days_before_the_deadline(
        engine: Engine, world: World, due_on: date, too_early: date, first_day: date) -> None:
    _account(engine, world.program, world.pharmacy, due_on)
    _run(engine, too_early.year, too_early.month, too_early.day)
    assert _notices(engine) == []
    _run(engine, first_day.year, first_day.month, first_day.day)
    (notice,) = _notices(engine, "account_reminder")
    assert notice.context["working_days_left"] == 5  # Rules.account_reminder_working_days_before_close


def test_a_contract_reminder_lists_the_unsigned_enterprises(engine: Engine, world: World) -> None:
    a, b = make_enterprise(engine, "甲制药有限公司"), make_enterprise(engine, "乙制药有限公司")
    for enterprise in (a, b):
        _contract(engine, world.program, world.pharmacy, enterprise, date(2025, 11, 30))
    _run(engine, 2025, 11, 26)
    (notice,) = _notices(engine, "contract_reminder")
    assert notice.context["enterprise_names"] == ["乙制药有限公司", "甲制药有限公司"]
    assert notice.context["working_days_left"] == 2  # Thursday and Friday; 11-29, 11-30 are a weekend
    assert notice.idempotency_key.startswith("reminder:contract:")


def test_a_proxy_procured_clinic_is_never_reminded_nor_escalated(engine: Engine, world: World) -> None:
    parent = _running(engine, world.program, district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    clinic = _running(engine, world.program, district="和平区", kind=InstitutionKind.VILLAGE_CLINIC,
                      proxy_parent_id=parent.id)
    enterprise = make_enterprise(engine)
    # Even a stray pending account and contract (the clinic became 代采 later) must not remind it.
    for inst in (parent, clinic):
        _account(engine, world.program, inst, date(2025, 11, 30))
        _contract(engine, world.program, inst, enterprise, date(2025, 11, 30))
    add_user(engine, "hp", Role.DISTRICT_REVIEWER, districts=["和平区"])
    _run(engine, 2025, 11, 26)  # reminders
    _run(engine, 2025, 12, 3)  # escalation
    reminded = {n.recipient_id for n in _notices(engine) if n.kind in ("account_reminder", "contract_reminder")}
    assert reminded == {parent.id}
    (escalation,) = _notices(engine, "escalation")
    assert clinic.name not in {item["name"] for item in escalation.context["items"]}


def test_an_institution_without_email_still_gets_a_notice_row(engine: Engine, world: World) -> None:
    inst = _running(engine, world.program, district="沈河区", kind=InstitutionKind.PRIVATE_CLINIC, email=None)
    _account(engine, world.program, inst, date(2025, 11, 30))
    _run(engine, 2025, 11, 26)
    (notice,) = _notices(engine, "account_reminder")
    assert notice.status == NoticeStatus.NO_ADDRESS and notice.email is None


# --------------------------------------------------------------------------- payments


def test_payments_due_within_five_working_days_are_one_notice_per_institution_and_due_date(
        engine: Engine, world: World) -> None:
    _payment(engine, world.program, world.pharmacy, "100.10", date(2025, 11, 30))
    _payment(engine, world.program, world.pharmacy, "200.25", date(2025, 11, 30))
    _payment(engine, world.program, world.pharmacy, "999.00", date(2025, 11, 30), paid_on=date(2025, 11, 20))
    _payment(engine, world.program, world.pharmacy, "50.00", date(2025, 12, 31))  # not yet
    _run(engine, 2025, 11, 20)  # six working days before: too early
    assert _notices(engine, "payment_due") == []
    _run(engine, 2025, 11, 21)
    _run(engine, 2025, 11, 24)
    (notice,) = _notices(engine, "payment_due")
    assert notice.recipient_id == world.pharmacy.id
    assert Decimal(notice.context["amount"]) == Decimal("300.35") and notice.context["order_count"] == 2
    assert notice.context["due_on"] == "2025-11-30"


def test_an_overdue_payment_is_reminded_once_per_month_and_flagged_for_interview_past_two_months(
        engine: Engine, world: World) -> None:
    township = _running(engine, world.program, district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    late = _payment(engine, world.program, world.pharmacy, "1000.00", date(2025, 8, 31))
    _payment(engine, world.program, township, "500.00", date(2025, 8, 31))
    _payment(engine, world.program, world.pharmacy, "7.00", date(2025, 8, 31), paid_on=date(2025, 9, 5))

    first = send_reminders(engine, SLUG, clock=clock_at(2025, 9, 15, 8))
    assert first.enqueued["payment_overdue"] == 2 and first.interview_due == []
    again = send_reminders(engine, SLUG, clock=clock_at(2025, 9, 30, 8))
    assert again.enqueued["payment_overdue"] == 0  # still the first month
    send_reminders(engine, SLUG, clock=clock_at(2025, 10, 31, 8))  # two months exactly
    third = send_reminders(engine, SLUG, clock=clock_at(2025, 11, 1, 8))  # 超过2个月
    mine = [n for n in _notices(engine, "payment_overdue") if n.recipient_id == world.pharmacy.id]
    assert [n.context["months_overdue"] for n in mine] == [1, 2, 3]
    assert {n.idempotency_key for n in mine} == {f"reminder:payment_overdue:{late}:{m}" for m in (1, 2, 3)}
    # 000 §四(三): the interview is for private institutions and pharmacies, not the township centre.
    (candidate,) = third.interview_due
    assert candidate.institution_id == world.pharmacy.id and candidate.months_overdue == 3
    assert candidate.amount == Decimal("1000.00") and candidate.payment_ids == (late,)


# --------------------------------------------------------------------------- quarterly statistics


def test_the_quarterly_reminder_goes_once_per_quarter_and_only_in_its_first_month(
        engine: Engine, world: World) -> None:
    """The system issues the table (tasks/reports/issue.py): nobody is asked to fill it in. The program's managers are
    told what is still theirs — complete data, then review and forward the issued table; district bureaus get nothing."""
    from tests.factories import ensure_user

    ensure_user(engine, "manager", Role.PROGRAM_MANAGER, display_name="王科长", unit="沈阳市医疗保障局")
    ensure_user(engine, "deputy", Role.PROGRAM_MANAGER, display_name="李科长", unit="沈阳市医疗保障局")
    add_user(engine, "hp", Role.DISTRICT_REVIEWER, districts=["和平区"])
    add_user(engine, "sh", Role.DISTRICT_REVIEWER, districts=["沈河区", "大东区"])

    report = send_reminders(engine, SLUG, clock=clock_at(2025, 10, 9, 8))
    assert report.quarter_reminded == (2025, 3)
    notices = _notices(engine, "quarterly_report_reminder")
    assert len(notices) == 2 and all("科长" in n.recipient_name for n in notices)  # the managers, by name
    assert {(n.context["year"], n.context["quarter"], n.context["due_on"]) for n in notices} == {
        (2025, 3, "2025-10-31")}
    letter = render_notice("quarterly_report_reminder", render_context(notices[0], {}))
    assert "无需另行填报" in letter.text and "审核" in letter.text and "报送上级医保部门" in letter.text
    assert "请于2025年10月31日前报送2025年第3季度" not in letter.text  # no longer asks for the table itself
    _run(engine, 2025, 10, 20)
    _run(engine, 2025, 11, 3)  # second month of the quarter: nothing
    _run(engine, 2025, 12, 1)
    assert len(_notices(engine, "quarterly_report_reminder")) == 2
    _run(engine, 2026, 1, 5)
    later = _notices(engine, "quarterly_report_reminder")[2:]
    assert len(later) == 2 and {(n.context["year"], n.context["quarter"]) for n in later} == {(2025, 4)}


def test_no_quarterly_reminder_once_the_report_is_submitted_or_before_the_program_began(
        engine: Engine, world: World) -> None:
    add_user(engine, "hp", Role.DISTRICT_REVIEWER, districts=["和平区"])
    _run(engine, 2025, 7, 10)  # Q2 2025 ended before the program's first window (2025-08-07)
    with Session(engine) as session:
        session.add(QuarterlyReport(program_id=world.program.id or 0, year=2025, quarter=3,
                                    due_on=date(2025, 10, 31), submitted_at=shanghai(2025, 10, 8, 10)))
        session.commit()
    _run(engine, 2025, 10, 9)
    assert _notices(engine, "quarterly_report_reminder") == []


# --------------------------------------------------------------------------- escalation


def test_escalation_goes_only_to_the_institutions_own_district_reviewers(engine: Engine, world: World) -> None:
    on_time = _running(engine, world.program, district="沈河区", kind=InstitutionKind.PRIVATE_CLINIC)
    far_off = _running(engine, world.program, district="大东区", kind=InstitutionKind.PRIVATE_CLINIC)
    _account(engine, world.program, world.pharmacy, date(2025, 11, 30))  # 和平区, will be late
    _account(engine, world.program, on_time, date(2025, 11, 30), state=AccountState.REGISTERED)
    _account(engine, world.program, far_off, date(2025, 12, 31))
    enterprise = make_enterprise(engine, "丙制药有限公司")
    _contract(engine, world.program, world.pharmacy, enterprise, date(2025, 11, 30))
    hp1 = add_user(engine, "hp1", Role.DISTRICT_REVIEWER, districts=["和平区"])
    hp2 = add_user(engine, "hp2", Role.DISTRICT_REVIEWER, districts=["和平区", "沈河区"])
    add_user(engine, "sh", Role.DISTRICT_REVIEWER, districts=["沈河区"])
    add_user(engine, "dd", Role.DISTRICT_REVIEWER, districts=["大东区"])
    add_user(engine, "manager", Role.PROGRAM_MANAGER)

    _run(engine, 2025, 12, 3)  # Wednesday: 12-01..12-03 are three working days late
    escalations = _notices(engine, "escalation")
    assert sorted(n.recipient_id or 0 for n in escalations) == sorted([hp1.id or 0, hp2.id or 0])
    for notice in escalations:
        assert notice.context["district"] == "和平区"
        assert [(i["name"], i["what"], i["days_late"]) for i in notice.context["items"]] == [
            (world.pharmacy.name, "招采子系统账号注册", 3),
            (world.pharmacy.name, "购销协议签订（丙制药有限公司）", 3),
        ]
    _run(engine, 2025, 12, 5)  # same ISO week
    assert len(_notices(engine, "escalation")) == 2
    _run(engine, 2025, 12, 8)  # next week: the list goes out again
    assert len(_notices(engine, "escalation")) == 4


def test_late_institutions_of_a_district_without_reviewer_are_reported(engine: Engine, world: World) -> None:
    _account(engine, world.program, world.pharmacy, date(2025, 11, 30))
    report = send_reminders(engine, SLUG, clock=clock_at(2025, 12, 3, 8))
    assert report.unescalated_districts == ["和平区"] and _notices(engine, "escalation") == []


# --------------------------------------------------------------------------- the templates' contract


def test_every_notice_renders_with_its_templates_keys(engine: Engine, world: World) -> None:
    add_user(engine, "hp", Role.DISTRICT_REVIEWER, districts=["和平区"])
    enterprise = make_enterprise(engine)
    other = _running(engine, world.program, district="和平区", kind=InstitutionKind.PRIVATE_CLINIC)
    _account(engine, world.program, world.pharmacy, date(2026, 1, 9))
    _contract(engine, world.program, world.pharmacy, enterprise, date(2026, 1, 9))
    _account(engine, world.program, other, date(2025, 12, 15))  # late by 2026-01-05
    _payment(engine, world.program, world.pharmacy, "12.50", date(2026, 1, 7))
    _payment(engine, world.program, other, "12.50", date(2025, 10, 31))
    add_user(engine, "pm", Role.PROGRAM_MANAGER)
    with Session(engine) as session:  # a district gate due tomorrow, and one the manager let pass
        open_gates(session, [
            GateSpec(natural_key=f"g{n}", program_id=world.program.id or 0, phase="enrollment", kind=kind,
                     title=f"审批事项{n}", subject_type="batch", subject_id=None, items=[1], decider_role=role,
                     district=district, due=fixed_deadline(due))
            for n, (kind, role, district, due) in enumerate([
                (GateKind.DISTRICT_REVIEW, Role.DISTRICT_REVIEWER, "和平区", date(2026, 1, 6)),
                (GateKind.LIST_APPROVAL, Role.PROGRAM_MANAGER, None, date(2025, 12, 31))])], clock_at(2025, 12, 1, 9))
        session.commit()
    clock = FixedClock(shanghai(2026, 1, 5, 8))
    report = send_reminders(engine, SLUG, clock=clock)
    alerts_only = ("calendar_unpublished", "audit_chain_broken")
    assert all(report.due[kind] >= 1 for kind in report.due if kind not in alerts_only), report.due
    names = {world.program.id or 0: world.program.name}
    for notice in _notices(engine):
        rendered = render_notice(notice.kind, render_context(notice, names), strict=True)
        assert world.program.name in rendered.subject
