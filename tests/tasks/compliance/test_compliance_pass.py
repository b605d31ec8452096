"""The compliance pass over a program, on SQLite and PostgreSQL: each rule's boundary through SQL, re-runs, cures."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlmodel import Session

from core.audit_chain import verify_chain
from models.audit import AuditEvent
from models.catalog import DeclarationItem, Product
from models.clock import FixedClock
from models.compliance.codes import ViolationRule, ViolationState
from models.enrollment import Application, Institution
from models.operations import LowestPrice, Payment, PriceReport, Selection, Violation
from models.program import Program
from models.states import ApplicationState, InstitutionKind
from tasks.compliance.compliance_pass import run_compliance_pass
from tests.factories import (
    clock_at,
    make_delivery,
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_running_application,
    make_sale_price,
    make_settlement,
    publish_drug_list,
    shanghai,
    table_counts,
)


def violations(engine: Engine, rule: ViolationRule) -> list[Violation]:
    with Session(engine) as session:
        return list(session.execute(select(Violation).where(Violation.rule == rule)  # type: ignore[arg-type]
                                    .order_by(Violation.id)).scalars())  # type: ignore[arg-type]


def run(engine: Engine, program: Program, clock: FixedClock, *rules: ViolationRule) -> None:
    run_compliance_pass(engine, program.slug, clock=clock, rules=list(rules) or None)


def _setup(engine: Engine, slug: str = "shenyang-2025", kind: InstitutionKind = InstitutionKind.CHAIN_PHARMACY,
           ) -> tuple[Program, Institution, Product]:
    program = make_program(engine, slug)
    inst = make_institution(engine, kind=kind)
    product = make_product(engine, make_enterprise(engine))
    return program, inst, product


def test_a_delivery_at_exactly_72_hours_is_on_time_and_at_72_hours_1_minute_is_a_violation(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    ordered = shanghai(2025, 12, 1, 9, 0)
    on_time = make_order(engine, program, inst, product, ordered_at=ordered, order_no="PO-ON-TIME")
    late = make_order(engine, program, inst, product, ordered_at=ordered, order_no="PO-LATE")
    make_delivery(engine, on_time, arrived_at=ordered + timedelta(hours=72))
    make_delivery(engine, late, arrived_at=ordered + timedelta(hours=72, minutes=1))
    run(engine, program, clock_at(2025, 12, 10, 8), ViolationRule.LATE_DELIVERY)
    found = violations(engine, ViolationRule.LATE_DELIVERY)
    assert [(v.object_key, v.subject_id, v.state) for v in found] == [
        ("PO-LATE", product.enterprise_id, ViolationState.CLOSED)]  # delivered since: recorded as history
    assert found[0].district == inst.district


def test_an_undelivered_order_opens_a_violation_that_closes_when_the_goods_arrive(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    ordered = shanghai(2025, 12, 1, 9, 0)
    order = make_order(engine, program, inst, product, ordered_at=ordered, quantity=10)
    make_delivery(engine, order, arrived_at=ordered + timedelta(hours=5), quantity=4)  # short: not 足量
    run(engine, program, clock_at(2025, 12, 4, 9, 0), ViolationRule.LATE_DELIVERY)
    assert violations(engine, ViolationRule.LATE_DELIVERY) == []  # exactly 72 h: not yet late
    run(engine, program, clock_at(2025, 12, 4, 9, 1), ViolationRule.LATE_DELIVERY)
    [open_one] = violations(engine, ViolationRule.LATE_DELIVERY)
    assert open_one.state is ViolationState.OPEN
    make_delivery(engine, order, arrived_at=shanghai(2025, 12, 6, 15, 0), quantity=6)
    run(engine, program, clock_at(2025, 12, 7, 8), ViolationRule.LATE_DELIVERY)
    [closed] = violations(engine, ViolationRule.LATE_DELIVERY)
    assert (closed.id, closed.state, closed.closed_on) == (open_one.id, ViolationState.CLOSED, date(2025, 12, 6))
    assert closed.closed_reason and "送达" in closed.closed_reason


def test_rerunning_the_pass_changes_nothing(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    ordered = shanghai(2025, 12, 1, 9, 0)
    make_order(engine, program, inst, product, ordered_at=ordered)
    late = make_order(engine, program, inst, product, ordered_at=ordered)
    make_delivery(engine, late, arrived_at=ordered + timedelta(hours=80), accepted_on=date(2025, 12, 4))
    make_sale_price(engine, program, inst, product, offline="13.00", effective_on=date(2025, 12, 1))
    clock = clock_at(2026, 2, 2, 8)
    first = run_compliance_pass(engine, program.slug, clock=clock)
    counts = table_counts(engine)
    assert first.opened == counts["violation"]  # counted on both databases (psycopg's rowcount can be -1)
    with Session(engine) as session:
        before = [(v.id, v.state, v.evidence) for v in session.execute(select(Violation)).scalars()]
    assert counts["violation"] >= 3 and counts["auditevent"] > 0
    again = run_compliance_pass(engine, program.slug, clock=clock)
    assert (again.opened, again.closed) == (0, 0)
    assert table_counts(engine) == counts
    with Session(engine) as session:
        assert [(v.id, v.state, v.evidence) for v in session.execute(select(Violation)).scalars()] == before


def test_the_pass_audits_each_rule_s_openings_and_closings_as_one_sealed_row_naming_every_violation(
        engine: Engine) -> None:
    """Opened, cured-on-sight and closed violations: one audit row per rule, action and resulting state (not one
    per violation, tasks/compliance/violation_audit.py), naming every violation it covers, sealed into the chain."""
    program, inst, product = _setup(engine)
    ordered = shanghai(2025, 12, 1, 9, 0)
    undelivered = [make_order(engine, program, inst, product, ordered_at=ordered, order_no=f"PO-OPEN-{k}")
                   for k in range(3)]
    late = make_order(engine, program, inst, product, ordered_at=ordered, order_no="PO-CURED")
    make_delivery(engine, late, arrived_at=ordered + timedelta(hours=80), accepted_on=date(2025, 12, 4))
    make_sale_price(engine, program, inst, product, offline="13.00", effective_on=date(2025, 12, 1))
    first = run_compliance_pass(engine, program.slug, clock=clock_at(2025, 12, 10, 8))
    for order in undelivered[:2]:
        make_delivery(engine, order, arrived_at=shanghai(2025, 12, 11, 9, 0), accepted_on=date(2025, 12, 11))
    closed = run_compliance_pass(engine, program.slug, clock=clock_at(2025, 12, 12, 8)).closed
    assert closed == 2
    with Session(engine) as session:
        rows = list(session.execute(select(AuditEvent).where(  # type: ignore[call-overload]
            AuditEvent.entity == "violation").order_by(AuditEvent.chain_seq)).scalars())
        late_rows = [(r.action, r.to_state, r.data["violations"]) for r in rows if r.entity_id == "late_delivery"]
        assert late_rows == [("violation_opened", "closed", 1), ("violation_opened", "open", 3),
                             ("violation_closed", "closed", 2)]
        # Every violation the passes opened is named by exactly one opening row, every closed one by a closing row.
        named = {(r.action, i) for r in rows for a, b in r.data["ids"] for i in range(a, b + 1)}
        opened_ids = {v.id for v in session.execute(select(Violation)).scalars()}
        assert {i for action, i in named if action == "violation_opened"} == opened_ids
        assert sum(r.data["violations"] for r in rows if r.action == "violation_opened") == first.opened
        closing = next(r for r in rows if r.action == "violation_closed")
        assert closing.reason and closing.from_state == "open" and closing.actor == "system"
        unsealed = session.execute(select(AuditEvent.id).where(AuditEvent.chain_seq.is_(None))).all()  # type: ignore[union-attr]
        assert unsealed == []
        report = verify_chain(session.connection(), program.id)
    assert report.broken is None and report.rows >= len(rows)


def test_evidence_edited_after_the_pass_no_longer_matches_the_digest_its_audit_row_sealed(engine: Engine) -> None:
    from tasks.compliance.violation_audit import batch_digest

    program, inst, product = _setup(engine)
    for k in range(2):
        make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, 1, 9, 0), order_no=f"PO-{k}")
    run(engine, program, clock_at(2025, 12, 10, 8), ViolationRule.LATE_DELIVERY)
    with Session(engine) as session:
        [row] = session.execute(select(AuditEvent).where(AuditEvent.entity == "violation")).scalars()  # type: ignore[arg-type]
        assert batch_digest(session.connection(), row.data["ids"], "open") == row.data["sha256"]
        victim = session.execute(select(Violation).order_by(Violation.id)).scalars().first()  # type: ignore[arg-type]
        assert victim is not None
        session.execute(update(Violation).where(Violation.id == victim.id)  # type: ignore[arg-type]
                        .values(evidence={"订单编号": "forged"}))
        assert batch_digest(session.connection(), row.data["ids"], "open") != row.data["sha256"]


def test_each_sealed_digest_covers_exactly_the_violations_its_row_names_in_each_state_hashed_in_chunks(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Violations found open and found already cured, opened by one statement, ids interleaved: each state's row
    names its own ids, and its digest, hashed a few lines at a time, is the one `batch_digest` recomputes."""
    from tasks.compliance import violation_audit
    from tasks.compliance.violation_audit import batch_digest

    monkeypatch.setattr(violation_audit, "_CHUNK", 2)  # several chunks per state at test scale
    program, inst, product = _setup(engine)
    ordered = shanghai(2025, 12, 1, 9, 0)
    for k in range(7):
        order = make_order(engine, program, inst, product, ordered_at=ordered, order_no=f"PO-{k}", quantity=10)
        if k % 2:  # delivered late: history, closed when first seen
            make_delivery(engine, order, arrived_at=ordered + timedelta(days=4), quantity=10)
    run(engine, program, clock_at(2025, 12, 10, 8), ViolationRule.LATE_DELIVERY)
    with Session(engine) as session:
        rows = list(session.execute(select(AuditEvent).where(AuditEvent.entity == "violation")  # type: ignore[arg-type]
                                    .order_by(AuditEvent.id)).scalars())  # type: ignore[arg-type]
        assert [(r.to_state, r.data["violations"]) for r in rows] == [("closed", 3), ("open", 4)]
        for row in rows:
            named = [i for a, b in row.data["ids"] for i in range(a, b + 1)]
            states = session.execute(select(Violation.state).where(Violation.id.in_(named))).scalars().all()  # type: ignore[attr-defined]
            assert len(named) == row.data["violations"] and set(states) == {ViolationState(row.to_state)}
            assert batch_digest(session.connection(), row.data["ids"], row.to_state) == row.data["sha256"]


def test_paid_on_the_last_day_of_the_next_month_is_on_time_and_the_day_after_is_a_violation(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    on_time = make_order(engine, program, inst, product, ordered_at=shanghai(2025, 10, 14, 9), order_no="A")
    late = make_order(engine, program, inst, product, ordered_at=shanghai(2025, 10, 14, 9), order_no="B")
    for order in (on_time, late):
        make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), accepted_on=date(2025, 10, 15))
    make_settlement(engine, on_time, paid_on=date(2025, 11, 30), amount="125.00")  # 次月底 = 11-30 (a Sunday)
    make_settlement(engine, late, paid_on=date(2025, 12, 1), amount="125.00")
    run(engine, program, clock_at(2025, 12, 5, 8), ViolationRule.LATE_PAYMENT)
    [found] = violations(engine, ViolationRule.LATE_PAYMENT)
    assert found.object_key.startswith("B#") and found.state is ViolationState.CLOSED
    assert found.closed_on == date(2025, 12, 1)


def test_partial_payments_add_up_and_an_unpaid_payable_closes_when_the_rest_arrives(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    order = make_order(engine, program, inst, product, ordered_at=shanghai(2025, 10, 14, 9))
    make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), accepted_on=date(2025, 10, 15))
    make_settlement(engine, order, paid_on=date(2025, 11, 10), amount="100.00")
    run(engine, program, clock_at(2025, 12, 1, 8), ViolationRule.LATE_PAYMENT)
    [open_one] = violations(engine, ViolationRule.LATE_PAYMENT)
    assert open_one.state is ViolationState.OPEN
    with Session(engine) as session:
        payable = session.execute(select(Payment)).scalar_one()
        assert (payable.amount, payable.due_on, payable.paid_on) == (Decimal("125.00"), date(2025, 11, 30), None)
    make_settlement(engine, order, paid_on=date(2025, 12, 3), amount="25.00")
    run(engine, program, clock_at(2025, 12, 4, 8), ViolationRule.LATE_PAYMENT)
    [closed] = violations(engine, ViolationRule.LATE_PAYMENT)
    assert (closed.state, closed.closed_on) == (ViolationState.CLOSED, date(2025, 12, 3))
    with Session(engine) as session:
        actions = [a.action for a in session.execute(select(AuditEvent).where(
            AuditEvent.entity == "violation")).scalars()]  # type: ignore[arg-type]
    assert actions == ["violation_opened", "violation_closed"]


def test_a_settlement_imported_late_with_an_earlier_date_moves_the_paid_day_of_a_paid_order(engine: Engine) -> None:
    """The pass recomputes only orders with something new since it last ran; a settlement is new when it arrives,
    whatever day it was paid: the order here was fully paid (on 12-05) before the earlier payment was imported."""
    program, inst, product = _setup(engine)
    order = make_order(engine, program, inst, product, ordered_at=shanghai(2025, 10, 14, 9))
    make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), accepted_on=date(2025, 10, 15))
    make_settlement(engine, order, paid_on=date(2025, 11, 10), amount="100.00")
    make_settlement(engine, order, paid_on=date(2025, 12, 5), amount="25.00")
    run(engine, program, clock_at(2025, 12, 10, 8), ViolationRule.LATE_PAYMENT)
    with Session(engine) as session:
        assert session.execute(select(Payment.paid_on)).scalar_one() == date(2025, 12, 5)  # type: ignore[call-overload]
    make_settlement(engine, order, paid_on=date(2025, 11, 20), amount="25.00")
    run(engine, program, clock_at(2025, 12, 11, 8), ViolationRule.LATE_PAYMENT)
    with Session(engine) as session:
        assert session.execute(select(Payment.paid_on)).scalar_one() == date(2025, 11, 20)  # type: ignore[call-overload]


def payables(engine: Engine) -> list[tuple[int | None, date | None]]:
    """(delivery, paid day) of every stored payable, in the order written."""
    with Session(engine) as session:
        return [(p.delivery_id, p.paid_on)
                for p in session.execute(select(Payment).order_by(Payment.id)).scalars()]  # type: ignore[arg-type]


def test_a_second_delivery_after_a_payable_paid_on_time_is_owed_in_full_and_is_late_when_unpaid(engine: Engine) -> None:
    """The pass does not write a payable its order's one settlement paid on time; when the order gets another
    delivery the skipped one is written with it, so that settlement pays it and not the new one (oldest due first)."""
    program, inst, product = _setup(engine)
    order = make_order(engine, program, inst, product, ordered_at=shanghai(2025, 10, 14, 9), quantity=20,
                       order_no="PO-RE")
    make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), quantity=10)  # 125.00, due 11-30
    make_settlement(engine, order, paid_on=date(2025, 11, 20), amount="125.00")
    run(engine, program, clock_at(2025, 12, 5, 8), ViolationRule.LATE_PAYMENT)
    assert violations(engine, ViolationRule.LATE_PAYMENT) == []
    assert payables(engine) == []  # paid on time: read by no one, not written
    make_delivery(engine, order, arrived_at=shanghai(2025, 11, 10, 9), quantity=10)  # 125.00, due 12-31
    run(engine, program, clock_at(2026, 1, 5, 8), ViolationRule.LATE_PAYMENT)
    [late] = violations(engine, ViolationRule.LATE_PAYMENT)
    assert late.state is ViolationState.OPEN and late.object_key.startswith("PO-RE#")
    assert [paid_on for _, paid_on in payables(engine)] == [date(2025, 11, 20), None]
    run(engine, program, clock_at(2026, 1, 5, 8), ViolationRule.LATE_PAYMENT)
    assert len(payables(engine)) == 2 and len(violations(engine, ViolationRule.LATE_PAYMENT)) == 1


def test_orders_paid_on_time_beside_orders_that_need_running_sums_get_every_late_payable_once(engine: Engine) -> None:
    """The first pass skips the payables paid on time and still writes, through the running sums, those of orders
    with two settlements or two deliveries; a rerun (nothing new) writes none of the skipped ones."""
    program, inst, product = _setup(engine)
    ordered, arrived = shanghai(2025, 10, 14, 9), shanghai(2025, 10, 15, 9)  # due 11-30
    on_time = make_order(engine, program, inst, product, ordered_at=ordered, order_no="A")
    make_delivery(engine, on_time, arrived_at=arrived)
    make_settlement(engine, on_time, paid_on=date(2025, 11, 30), amount="125.00")
    two_payments = make_order(engine, program, inst, product, ordered_at=ordered, order_no="B")
    make_delivery(engine, two_payments, arrived_at=arrived)
    make_settlement(engine, two_payments, paid_on=date(2025, 11, 10), amount="100.00")
    make_settlement(engine, two_payments, paid_on=date(2025, 12, 2), amount="25.00")
    two_deliveries = make_order(engine, program, inst, product, ordered_at=ordered, quantity=20, order_no="C")
    make_delivery(engine, two_deliveries, arrived_at=arrived)
    make_delivery(engine, two_deliveries, arrived_at=arrived + timedelta(hours=1))
    make_settlement(engine, two_deliveries, paid_on=date(2025, 11, 20), amount="125.00")
    clock = clock_at(2025, 12, 5, 8)
    run(engine, program, clock, ViolationRule.LATE_PAYMENT)
    found = {(v.object_key.split("#")[0], v.state, v.closed_on) for v in violations(engine, ViolationRule.LATE_PAYMENT)}
    assert found == {("B", ViolationState.CLOSED, date(2025, 12, 2)), ("C", ViolationState.OPEN, None)}
    written = payables(engine)
    assert len(written) == 3  # B's and C's two, not A's
    run(engine, program, clock, ViolationRule.LATE_PAYMENT)
    assert payables(engine) == written and len(violations(engine, ViolationRule.LATE_PAYMENT)) == 2


def test_each_payable_is_due_at_the_end_of_the_month_after_its_own_acceptance_day(engine: Engine) -> None:
    """Deliveries accepted weeks apart, with days between them on which nothing was accepted: each unpaid payable
    gets the 次月底 of its own acceptance day (PostgreSQL looks the due day up by day offset, `_due_by_day`)."""
    program, inst, product = _setup(engine)
    accepted = [date(2025, 10, 1), date(2025, 10, 31), date(2025, 11, 1), date(2025, 12, 2)]
    for k, day in enumerate(accepted):
        order = make_order(engine, program, inst, product, ordered_at=shanghai(day.year, day.month, day.day, 8),
                           order_no=f"D{k}")
        make_delivery(engine, order, arrived_at=shanghai(day.year, day.month, day.day, 9), accepted_on=day)
    run(engine, program, clock_at(2026, 3, 2, 8), ViolationRule.LATE_PAYMENT)
    with Session(engine) as session:
        due = {p.delivery_id: p.due_on for p in session.execute(select(Payment)).scalars()}
    assert sorted(due.values()) == [date(2025, 11, 30), date(2025, 11, 30), date(2025, 12, 31), date(2026, 1, 31)]
    assert len(violations(engine, ViolationRule.LATE_PAYMENT)) == 4


def test_an_order_delivered_in_parts_is_complete_when_the_ordered_quantity_has_arrived(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    ordered = shanghai(2025, 12, 1, 9, 0)
    order = make_order(engine, program, inst, product, ordered_at=ordered, quantity=10, order_no="PO-TWO")
    make_delivery(engine, order, arrived_at=ordered + timedelta(hours=70), quantity=6)
    make_delivery(engine, order, arrived_at=ordered + timedelta(hours=73), quantity=4)
    full_then_more = make_order(engine, program, inst, product, ordered_at=ordered, quantity=10, order_no="PO-MORE")
    make_delivery(engine, full_then_more, arrived_at=ordered + timedelta(hours=70), quantity=10)  # complete here
    make_delivery(engine, full_then_more, arrived_at=ordered + timedelta(hours=80), quantity=2)
    run(engine, program, clock_at(2025, 12, 10, 8), ViolationRule.LATE_DELIVERY)
    [late] = violations(engine, ViolationRule.LATE_DELIVERY)
    assert (late.object_key, late.state) == ("PO-TWO", ViolationState.CLOSED)
    assert late.closed_on == (ordered + timedelta(hours=73)).date()


def test_a_pharmacy_unpaid_more_than_two_months_after_the_due_date_is_an_interview_candidate(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    public = make_institution(engine, kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    for who in (inst, public):
        order = make_order(engine, program, who, product, ordered_at=shanghai(2025, 10, 14, 9))
        make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), accepted_on=date(2025, 10, 15))
    run(engine, program, clock_at(2026, 1, 30, 8), ViolationRule.OVERDUE_INTERVIEW)  # due 11-30 + 2 months
    assert violations(engine, ViolationRule.OVERDUE_INTERVIEW) == []
    run(engine, program, clock_at(2026, 1, 31, 8), ViolationRule.OVERDUE_INTERVIEW)
    assert [v.subject_id for v in violations(engine, ViolationRule.OVERDUE_INTERVIEW)] == [inst.id]


def test_pharmacy_markup_of_15_00_percent_with_the_index_is_allowed_and_15_01_percent_is_not(engine: Engine) -> None:
    program = make_program(engine, "jiangxi-2025")
    product = make_product(engine, make_enterprise(engine))
    with Session(engine) as session:
        session.execute(update(Product).where(Product.id == product.id).values(winning_price=Decimal("100.00")))
        session.commit()
    ok, over, no_index = (make_institution(engine, district="南昌市") for _ in range(3))
    with Session(engine) as session:
        session.execute(update(Institution).where(Institution.id.in_([ok.id, over.id]))  # type: ignore[union-attr]
                        .values(price_index_ok=True))
        session.commit()
    make_sale_price(engine, program, ok, product, offline="115.00", online="115.00", effective_on=date(2025, 12, 1))
    make_sale_price(engine, program, over, product, offline="115.01", effective_on=date(2025, 12, 1))
    make_sale_price(engine, program, no_index, product, offline="115.00", online="114.00",
                    effective_on=date(2025, 12, 1))
    clock = clock_at(2025, 12, 2, 8)
    run(engine, program, clock, ViolationRule.SALE_PRICE, ViolationRule.ONLINE_OFFLINE_PRICE)
    assert {v.subject_id for v in violations(engine, ViolationRule.SALE_PRICE)} == {over.id, no_index.id}
    assert [v.subject_id for v in violations(engine, ViolationRule.ONLINE_OFFLINE_PRICE)] == [no_index.id]
    # The price in force is the latest by date: a corrected price closes the violation.
    make_sale_price(engine, program, over, product, offline="115.00", effective_on=date(2025, 12, 3))
    run(engine, program, clock_at(2025, 12, 3, 8), ViolationRule.SALE_PRICE)
    states = {v.subject_id: v.state for v in violations(engine, ViolationRule.SALE_PRICE)}
    assert states == {over.id: ViolationState.CLOSED, no_index.id: ViolationState.OPEN}


def test_public_institution_selling_below_or_above_the_winning_price_is_a_violation(engine: Engine) -> None:
    program, _, product = _setup(engine)
    at, below = (make_institution(engine, kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER) for _ in range(2))
    make_sale_price(engine, program, at, product, offline="12.50", effective_on=date(2025, 12, 1))
    make_sale_price(engine, program, below, product, offline="12.49", effective_on=date(2025, 12, 1))
    run(engine, program, clock_at(2025, 12, 2, 8), ViolationRule.SALE_PRICE)
    assert [v.subject_id for v in violations(engine, ViolationRule.SALE_PRICE)] == [below.id]


def _carry(engine: Engine, program: Program, inst: Institution, products: list[Product], *,
           recommended: int = 0) -> None:
    with Session(engine) as session:
        session.execute(insert(Selection), [{"program_id": program.id, "institution_id": inst.id,
                                              "product_id": p.id, "annual_volume": 1} for p in products])
        if recommended:
            ids = [p.id for p in products[:recommended]]
            session.execute(update(DeclarationItem).where(DeclarationItem.product_id.in_(ids))  # type: ignore[attr-defined]
                            .values(recommended=True))
        session.commit()


def test_a_private_tertiary_hospital_with_79_drugs_is_a_violation_and_with_80_is_not(engine: Engine) -> None:
    program = make_program(engine, "jiangxi-2025")
    enterprise = make_enterprise(engine)
    products = [make_product(engine, enterprise) for _ in range(80)]
    publish_drug_list(engine, program, products, clock=clock_at(2025, 9, 1, 9))
    hospitals = [make_institution(engine, kind=InstitutionKind.PRIVATE_HOSPITAL, district="南昌市") for _ in range(2)]
    with Session(engine) as session:
        session.execute(update(Institution).where(Institution.id.in_([h.id for h in hospitals]))  # type: ignore[union-attr]
                        .values(private_tertiary=True))
        session.commit()
    for hospital, n in zip(hospitals, (79, 80), strict=True):
        make_running_application(engine, program, hospital, running_at=shanghai(2025, 10, 1, 9))
        _carry(engine, program, hospital, products[:n], recommended=60 if n == 80 else 0)
    run(engine, program, clock_at(2025, 12, 1, 8), ViolationRule.TOO_FEW_DRUGS, ViolationRule.RECOMMENDED_SHARE)
    [short] = violations(engine, ViolationRule.TOO_FEW_DRUGS)
    assert (short.subject_id, short.evidence["配备品种数"], short.evidence["应配备品种数"]) == (hospitals[0].id, 79, 80)
    # 48 of 80 = 60 % recommended is enough; the first hospital's items became recommended too (48/79 = 60.8 %).
    assert violations(engine, ViolationRule.RECOMMENDED_SHARE) == []


def test_a_proxy_procured_village_clinic_carries_what_its_township_centre_buys_for_it(engine: Engine) -> None:
    """Seed 001 §二(二)1: the township centre 统一负责 the village clinic's 报量、采购; the clinic is not judged alone."""
    program = make_program(engine, "shenyang-2025")  # enforces each institution's committed count (60)
    enterprise = make_enterprise(engine)
    products = [make_product(engine, enterprise) for _ in range(60)]
    publish_drug_list(engine, program, products, clock=clock_at(2025, 9, 1, 9))
    centre = make_institution(engine, kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    proxied = make_institution(engine, kind=InstitutionKind.VILLAGE_CLINIC, proxy_parent_id=centre.id)
    alone = make_institution(engine, kind=InstitutionKind.VILLAGE_CLINIC)  # buys for itself, selected nothing
    for inst in (centre, proxied, alone):
        make_running_application(engine, program, inst, running_at=shanghai(2025, 10, 1, 9))
    _carry(engine, program, centre, products)
    run(engine, program, clock_at(2025, 12, 1, 8), ViolationRule.TOO_FEW_DRUGS)
    assert [v.subject_id for v in violations(engine, ViolationRule.TOO_FEW_DRUGS)] == [alone.id]


def test_a_selection_that_has_ended_is_no_longer_carried(engine: Engine) -> None:
    """A drug whose enterprise left the list ends the selection: from that day the institution no longer has it."""
    program = make_program(engine, "jiangxi-2025")
    enterprise = make_enterprise(engine)
    products = [make_product(engine, enterprise) for _ in range(60)]
    publish_drug_list(engine, program, products, clock=clock_at(2025, 9, 1, 9))
    pharmacy = make_institution(engine, district="南昌市")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 10, 1, 9))
    _carry(engine, program, pharmacy, products, recommended=60)
    with Session(engine) as session:
        session.execute(update(Selection).where(Selection.product_id == products[0].id)  # type: ignore[arg-type]
                        .values(ended_on=date(2025, 12, 1)))
        session.commit()
    run(engine, program, clock_at(2025, 11, 30, 8), ViolationRule.TOO_FEW_DRUGS)
    assert violations(engine, ViolationRule.TOO_FEW_DRUGS) == []  # ends tomorrow: still 60 today
    run(engine, program, clock_at(2025, 12, 1, 8), ViolationRule.TOO_FEW_DRUGS)
    [short] = violations(engine, ViolationRule.TOO_FEW_DRUGS)
    assert (short.subject_id, short.evidence["配备品种数"], short.evidence["应配备品种数"]) == (pharmacy.id, 59, 60)


def test_a_recommended_share_below_60_percent_is_a_violation(engine: Engine) -> None:
    program = make_program(engine, "jiangxi-2025")
    enterprise = make_enterprise(engine)
    products = [make_product(engine, enterprise) for _ in range(50)]
    publish_drug_list(engine, program, products, clock=clock_at(2025, 9, 1, 9))
    pharmacy = make_institution(engine, district="南昌市")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 10, 1, 9))
    _carry(engine, program, pharmacy, products, recommended=29)
    clock = clock_at(2025, 12, 1, 8)
    run(engine, program, clock, ViolationRule.RECOMMENDED_SHARE)
    [low] = violations(engine, ViolationRule.RECOMMENDED_SHARE)
    assert (low.evidence["推荐品种数"], low.evidence["配备品种数"]) == (29, 50)
    with Session(engine) as session:  # one more recommended drug: 30 of 50 = 60 %
        session.execute(update(DeclarationItem).where(DeclarationItem.product_id == products[29].id)
                        .values(recommended=True))
        session.commit()
    run(engine, program, clock, ViolationRule.RECOMMENDED_SHARE)
    assert [v.state for v in violations(engine, ViolationRule.RECOMMENDED_SHARE)] == [ViolationState.CLOSED]


def test_a_special_drug_carried_by_a_non_designated_institution_is_a_violation(engine: Engine) -> None:
    program = make_program(engine)
    special = make_product(engine, make_enterprise(engine), special=True)
    plain, designated = make_institution(engine), make_institution(engine, special=True)
    for inst in (plain, designated):
        _carry(engine, program, inst, [special])
    run(engine, program, clock_at(2025, 12, 1, 8), ViolationRule.SPECIAL_DRUG)
    assert [v.subject_id for v in violations(engine, ViolationRule.SPECIAL_DRUG)] == [plain.id]


def test_leaving_before_one_year_is_a_violation(engine: Engine) -> None:
    program = make_program(engine)
    early, after = make_institution(engine), make_institution(engine)
    for inst, left in ((early, date(2026, 9, 30)), (after, date(2026, 10, 1))):
        app_id = make_running_application(engine, program, inst, running_at=shanghai(2025, 10, 1, 9))
        with Session(engine) as session:
            session.execute(update(Application).where(Application.id == app_id)
                            .values(state=ApplicationState.EXITED, left_on=left))
            session.commit()
    run(engine, program, clock_at(2026, 10, 2, 8), ViolationRule.EARLY_EXIT)
    assert [v.subject_id for v in violations(engine, ViolationRule.EARLY_EXIT)] == [early.id]


def test_a_price_report_on_working_day_20_across_national_day_is_in_time_and_on_day_21_late(engine: Engine) -> None:
    program = make_program(engine)
    in_time, late = (make_product(engine, make_enterprise(engine)) for _ in range(2))
    with Session(engine) as session:
        for p, reported in ((in_time, date(2025, 10, 24)), (late, date(2025, 10, 27))):
            session.add(LowestPrice(program_id=program.id or 0, drug_code=p.drug_code, price=Decimal("1.00"),
                                    effective_on=date(2025, 9, 22)))
            session.add(PriceReport(program_id=program.id or 0, drug_code=p.drug_code, reported_on=reported))
        session.commit()
    run(engine, program, clock_at(2025, 11, 3, 8), ViolationRule.LATE_PRICE_REPORT)
    [found] = violations(engine, ViolationRule.LATE_PRICE_REPORT)
    assert (found.subject_id, found.state, found.closed_on) == (late.enterprise_id, ViolationState.CLOSED,
                                                                date(2025, 10, 27))


def test_an_unreported_lowest_price_is_open_from_working_day_21(engine: Engine) -> None:
    program = make_program(engine)
    product = make_product(engine, make_enterprise(engine))
    with Session(engine) as session:
        session.add(LowestPrice(program_id=program.id or 0, drug_code=product.drug_code, price=Decimal("1.00"),
                                effective_on=date(2025, 9, 22)))
        session.commit()
    run(engine, program, clock_at(2025, 10, 24, 18), ViolationRule.LATE_PRICE_REPORT)
    assert violations(engine, ViolationRule.LATE_PRICE_REPORT) == []
    run(engine, program, clock_at(2025, 10, 25, 8), ViolationRule.LATE_PRICE_REPORT)
    assert [v.state for v in violations(engine, ViolationRule.LATE_PRICE_REPORT)] == [ViolationState.OPEN]


def test_a_listed_product_without_orders_for_a_year_is_proposed_for_closing(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    sold = make_product(engine, make_enterprise(engine))
    publish_drug_list(engine, program, [product, sold], clock=clock_at(2025, 9, 1, 9))
    make_order(engine, program, inst, sold, ordered_at=shanghai(2025, 12, 1, 9))
    run(engine, program, clock_at(2026, 9, 1, 8), ViolationRule.NO_SALES)
    assert violations(engine, ViolationRule.NO_SALES) == []
    run(engine, program, clock_at(2026, 9, 2, 8), ViolationRule.NO_SALES)
    assert [v.subject_id for v in violations(engine, ViolationRule.NO_SALES)] == [product.id]


def test_purchase_prices_above_the_median_raise_red_yellow_and_blue_alerts(engine: Engine) -> None:
    program, _, product = _setup(engine)
    prices = ["100.00", "100.00", "100.00", "110.00", "120.00", "130.00", "109.99"]
    insts = [make_institution(engine) for _ in prices]
    for inst, price in zip(insts, prices, strict=True):
        make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, 1, 9), unit_price=price)
    rules = (ViolationRule.PRICE_ALERT_RED, ViolationRule.PRICE_ALERT_YELLOW, ViolationRule.PRICE_ALERT_BLUE)
    run(engine, program, clock_at(2025, 12, 2, 8), *rules)
    # Median of the seven prices is 109.99; bands from 120.989 (+10 %), 131.988 (+20 %), 142.987 (+30 %).
    assert [v.subject_id for v in violations(engine, ViolationRule.PRICE_ALERT_BLUE)] == [insts[5].id]  # 130.00
    assert [v.subject_id for v in violations(engine, ViolationRule.PRICE_ALERT_YELLOW)] == []
    assert [v.subject_id for v in violations(engine, ViolationRule.PRICE_ALERT_RED)] == []
    make_order(engine, program, insts[5], product, ordered_at=shanghai(2025, 12, 3, 9), unit_price="143.00")
    make_order(engine, program, insts[4], product, ordered_at=shanghai(2025, 12, 3, 9), unit_price="131.99")
    make_order(engine, program, insts[3], product, ordered_at=shanghai(2025, 12, 3, 9), unit_price="120.99")
    run(engine, program, clock_at(2025, 12, 4, 8), *rules)
    assert [v.subject_id for v in violations(engine, ViolationRule.PRICE_ALERT_RED)] == [insts[5].id]
    assert [v.subject_id for v in violations(engine, ViolationRule.PRICE_ALERT_YELLOW)] == [insts[4].id]
    blue = {v.subject_id: v.state for v in violations(engine, ViolationRule.PRICE_ALERT_BLUE)}
    assert blue == {insts[5].id: ViolationState.CLOSED, insts[3].id: ViolationState.OPEN}


def test_an_enterprise_with_three_late_orders_in_90_days_is_flagged(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    for day in (1, 2, 3):
        make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, day, 9))
    run(engine, program, clock_at(2025, 12, 5, 8), ViolationRule.DELIVERY_PATTERN)
    assert violations(engine, ViolationRule.DELIVERY_PATTERN) == []  # the third is not late yet
    run(engine, program, clock_at(2025, 12, 6, 10), ViolationRule.DELIVERY_PATTERN)
    [flag] = violations(engine, ViolationRule.DELIVERY_PATTERN)
    assert (flag.subject_id, flag.evidence["超时订单数"]) == (product.enterprise_id, 3)
    run(engine, program, clock_at(2026, 3, 1, 10), ViolationRule.DELIVERY_PATTERN)
    assert [v.state for v in violations(engine, ViolationRule.DELIVERY_PATTERN)] == [ViolationState.CLOSED]


def test_a_rolled_forward_payment_due_date_in_2027_is_provisional_until_the_schedule_is_entered(
        engine: Engine, tmp_path: Path) -> None:
    from models.holiday_notice import parse_holiday_notice
    from tasks.calendar.schedules import enter_schedule
    from tasks.programs import load_program
    from tests.factories import PROGRAM_FILES, make_reviewers
    from tests.fixtures_notice_2027 import NOTICE_2027

    program, inst, product = _setup(engine)
    rolling = tmp_path / "shenyang-2025.yaml"
    rolling.write_text(PROGRAM_FILES["shenyang-2025"].read_text(encoding="utf-8").replace(
        "payment_due_roll_forward_to_working_day: false", "payment_due_roll_forward_to_working_day: true"),
        encoding="utf-8")
    load_program(engine, rolling, clock=clock_at(2026, 12, 1, 9))
    order = make_order(engine, program, inst, product, ordered_at=shanghai(2027, 1, 4, 9))
    make_delivery(engine, order, arrived_at=shanghai(2027, 1, 5, 9), accepted_on=date(2027, 1, 5))
    run(engine, program, clock_at(2027, 1, 20, 8), ViolationRule.LATE_PAYMENT)
    with Session(engine) as session:
        [payable] = session.execute(select(Payment)).scalars()
    # 次月底 is Sunday 2027-02-28; rolled to the next working day of a year with no official schedule yet.
    assert (payable.due_on, payable.due_on_provisional) == (date(2027, 3, 1), True)
    make_reviewers(engine, [])
    enter_schedule(engine, parse_holiday_notice(NOTICE_2027), NOTICE_2027, user_name="manager",
                   clock=clock_at(2027, 1, 20, 9))
    with Session(engine) as session:
        [payable] = session.execute(select(Payment)).scalars()
        audited = session.execute(select(AuditEvent).where(AuditEvent.entity == "payment")).scalars().all()
    assert (payable.due_on, payable.due_on_provisional, payable.due_from) == (date(2027, 3, 1), False, None)
    assert [a.action for a in audited] == ["deadline_recomputed"]


def _set_rules(engine: Engine, program: Program, **changes: object) -> None:
    """Edit the program's stored rules as a changed program file would."""
    with Session(engine) as session:
        row = session.get(Program, program.id)
        assert row is not None
        definition = dict(row.definition)
        definition["rules"] = {**definition["rules"], **changes}
        row.definition = definition
        session.add(row)
        session.commit()


def test_an_order_above_the_winning_price_breaks_the_enterprise_s_commitment(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    at_price = make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, 1, 9), order_no="PO-AT")
    above = str(product.winning_price + Decimal("0.01"))
    make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, 1, 9), unit_price=above,
               order_no="PO-ABOVE")
    assert at_price
    run(engine, program, clock_at(2025, 12, 2, 8), ViolationRule.SUPPLY_ABOVE_WINNING_PRICE)
    [found] = violations(engine, ViolationRule.SUPPLY_ABOVE_WINNING_PRICE)
    assert (found.object_key, found.subject_id, found.state) == ("PO-ABOVE", product.enterprise_id,
                                                                ViolationState.OPEN)
    _set_rules(engine, program, commit_at_or_below_winning_price=False)
    run(engine, program, clock_at(2025, 12, 3, 8), ViolationRule.SUPPLY_ABOVE_WINNING_PRICE)
    assert [v.state for v in violations(engine, ViolationRule.SUPPLY_ABOVE_WINNING_PRICE)] == [
        ViolationState.CLOSED]


def test_the_late_delivery_pattern_counts_what_the_program_file_says(engine: Engine) -> None:
    program, inst, product = _setup(engine)
    _set_rules(engine, program, delivery_pattern_count=2, delivery_pattern_days=30)
    for day in (1, 2):
        make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, day, 9))
    run(engine, program, clock_at(2025, 12, 6, 10), ViolationRule.DELIVERY_PATTERN)
    [flag] = violations(engine, ViolationRule.DELIVERY_PATTERN)
    assert (flag.evidence["超时订单数"], flag.evidence["阈值"]) == (2, 2)
    run(engine, program, clock_at(2026, 1, 2, 10), ViolationRule.DELIVERY_PATTERN)  # both older than 30 days
    assert [v.state for v in violations(engine, ViolationRule.DELIVERY_PATTERN)] == [ViolationState.CLOSED]


def test_price_alert_bands_come_from_the_program_file(engine: Engine) -> None:
    program, _, product = _setup(engine)
    _set_rules(engine, program, price_alerts={"blue": "0.04", "yellow": "0.08", "red": "0.12"})
    insts = [make_institution(engine) for _ in range(3)]
    for inst, price in zip(insts, ["100.00", "100.00", "105.00"], strict=True):
        make_order(engine, program, inst, product, ordered_at=shanghai(2025, 12, 1, 9), unit_price=price)
    run(engine, program, clock_at(2025, 12, 2, 8), ViolationRule.PRICE_ALERT_BLUE)
    assert [v.subject_id for v in violations(engine, ViolationRule.PRICE_ALERT_BLUE)] == [insts[2].id]
