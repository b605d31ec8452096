"""The enforcement ladder as policy: 约谈 → 限期整改 → 暂停医保结算 → 取消资格, each rung a person's gate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core.db import transaction
from models.catalog import Enterprise, ListEntry, ListVersion
from models.clock import FixedClock
from models.compliance.codes import SubjectType, ViolationRule
from models.enforcement import BadRecord, EnforcementCase, LadderState
from models.enrollment import Application, Gate
from models.operations import Contract, Selection, Violation
from models.outbox import Notice
from models.states import ApplicationState, ContractState, EnterpriseState, GateKind, GateState, ListKind
from tasks.compliance.compliance_pass import run_compliance_pass
from tasks.enforcement.ladder import reconcile_enforcement
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import NotAllowedToDecide, NotYourDistrict
from tasks.lists.versions import SUSPENDED_MARK, publish_list
from tasks.platform.contracts import reconcile_contracts
from tasks.platform.selections import SelectionRow, record_selections
from tasks.programs import get_program
from tests.factories import (
    clock_at,
    make_delivery,
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_reviewers,
    make_running_application,
    make_settlement,
    publish_drug_list,
    shanghai,
    table_counts,
)

SLUG = "shenyang-2025"


def _open_gate(engine: Engine) -> Gate | None:
    with Session(engine) as session:
        return session.execute(select(Gate).where(Gate.kind == GateKind.ENFORCEMENT,  # type: ignore[arg-type]
                                                  Gate.state == GateState.OPEN)).scalars().first()  # type: ignore[arg-type]


def _case(engine: Engine) -> EnforcementCase:
    with Session(engine) as session:
        return session.execute(select(EnforcementCase)).scalar_one()


def _tick(engine: Engine, clock: FixedClock) -> None:
    run_compliance_pass(engine, SLUG, clock=clock, rules=[ViolationRule.OVERDUE_INTERVIEW])
    reconcile_enforcement(engine, SLUG, clock=clock)


@pytest.fixture
def overdue(engine: Engine):
    """A pharmacy of 和平区 that has not paid for a delivery accepted 2025-10-15 (due 11-30) by 2026-01-31."""
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区", "沈河区"])
    pharmacy = make_institution(engine, district="和平区")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 9, 30, 9))
    product = make_product(engine, make_enterprise(engine))
    order = make_order(engine, program, pharmacy, product, ordered_at=shanghai(2025, 10, 14, 9))
    make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), accepted_on=date(2025, 10, 15))
    clock = clock_at(2026, 2, 2, 9)
    _tick(engine, clock)
    return {"program": program, "pharmacy": pharmacy, "reviewers": reviewers, "order": order, "clock": clock}


def _notices(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [n.idempotency_key for n in session.execute(select(Notice).where(
            Notice.kind == "enforcement_notice").order_by(Notice.id)).scalars()]  # type: ignore[arg-type]


def _interview_and_order_rectification(engine: Engine, world) -> FixedClock:
    clock, reviewer = world["clock"], world["reviewers"]["和平区"]
    interview = _open_gate(engine)
    assert interview is not None and interview.district == "和平区" and "约谈" in interview.title
    decide_gate(engine, interview.id, approve=interview.items, user_name=reviewer, clock=clock)
    _tick(engine, clock)
    rectification = _open_gate(engine)
    assert rectification is not None and "限期整改" in rectification.title
    decide_gate(engine, rectification.id, approve=rectification.items, user_name=reviewer, clock=clock)
    _tick(engine, clock)
    return clock


def test_a_pharmacy_overdue_on_payment_climbs_to_suspension_and_the_republished_list_marks_it(
        engine: Engine, overdue) -> None:
    clock = _interview_and_order_rectification(engine, overdue)
    case = _case(engine)
    assert case.state == LadderState.RECTIFYING and case.due_on is not None
    assert _open_gate(engine) is None  # the deadline runs; nobody has anything to decide
    clock.set(shanghai(case.due_on.year, case.due_on.month, case.due_on.day, 18))
    _tick(engine, clock)
    assert _open_gate(engine) is None  # the last day of the deadline is still the institution's
    clock.set(shanghai(2026, 2, 24, 9))  # well after the deadline, still unpaid
    _tick(engine, clock)
    suspension = _open_gate(engine)
    assert suspension is not None and "暂停医保结算" in suspension.title and suspension.district is None
    with pytest.raises(NotAllowedToDecide):
        decide_gate(engine, suspension.id, approve=suspension.items, user_name=overdue["reviewers"]["和平区"],
                    clock=clock)
    decide_gate(engine, suspension.id, approve=suspension.items, user_name="manager", clock=clock)
    with Session(engine) as session:
        assert session.execute(select(Application.state)).scalar_one() == ApplicationState.SUSPENDED
    with transaction(engine) as session:
        program, defn = get_program(session, SLUG)
        version = publish_list(session, program, defn, "institutions", clock=clock, reason="scheduled republication")
        assert version is not None
        marks = [e.data for e in session.execute(select(ListEntry).where(ListEntry.version_id == version.id)).scalars()]  # type: ignore[arg-type]
    assert SUSPENDED_MARK in str(marks)
    case_id = _case(engine).id
    assert _notices(engine) == [f"enforcement:{case_id}:{step}" for step in ("interview", "rectification", "suspension")]
    before = table_counts(engine)
    _tick(engine, clock)
    assert table_counts(engine) == before  # re-running does nothing twice


def test_a_cured_violation_ends_the_ladder(engine: Engine, overdue) -> None:
    clock = _interview_and_order_rectification(engine, overdue)
    make_settlement(engine, overdue["order"], paid_on=date(2026, 2, 3), amount="125.00")
    clock.set(shanghai(2026, 2, 4, 9))
    _tick(engine, clock)
    assert _case(engine).state == LadderState.CURED
    clock.set(shanghai(2026, 3, 30, 9))
    _tick(engine, clock)
    assert _open_gate(engine) is None and _case(engine).state == LadderState.CURED
    with Session(engine) as session:
        assert session.execute(select(Application.state)).scalar_one() == ApplicationState.RUNNING


def test_a_district_reviewer_cannot_decide_another_districts_enforcement_gate(engine: Engine, overdue) -> None:
    gate = _open_gate(engine)
    assert gate is not None
    with pytest.raises(NotYourDistrict):
        decide_gate(engine, gate.id, approve=gate.items, user_name=overdue["reviewers"]["沈河区"],
                    clock=overdue["clock"])
    assert _case(engine).state == LadderState.PROPOSED


def test_a_rejected_rung_drops_the_ladder_and_opens_nothing_more(engine: Engine, overdue) -> None:
    gate = _open_gate(engine)
    assert gate is not None
    decide_gate(engine, gate.id, reject=gate.items, reason="已说明原因，系对账差错",
                user_name=overdue["reviewers"]["和平区"], clock=overdue["clock"])
    _tick(engine, overdue["clock"])
    assert _case(engine).state == LadderState.DROPPED and _open_gate(engine) is None


def test_an_enterprise_disqualified_for_late_deliveries_leaves_the_list_and_each_carrying_institution_is_told_once(
        engine: Engine) -> None:
    program = make_program(engine, SLUG)
    make_reviewers(engine, [])
    clock = clock_at(2025, 10, 9, 10)
    late, other = make_enterprise(engine, "迟送制药有限公司"), make_enterprise(engine, "守约制药有限公司")
    p1, p2, kept = make_product(engine, late), make_product(engine, late), make_product(engine, other)
    publish_drug_list(engine, program, [p1, p2, kept], clock=clock)
    both, one, neither = (make_institution(engine, district=d) for d in ("和平区", "沈河区", "沈河区"))
    for inst in (both, one, neither):
        make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))
    record_selections(engine, SLUG, [SelectionRow(both.insurance_code, p1.drug_code, Decimal("12.50"), 10),
                                     SelectionRow(both.insurance_code, p2.drug_code, Decimal("12.50"), 10),
                                     SelectionRow(one.insurance_code, p1.drug_code, Decimal("12.50"), 10),
                                     SelectionRow(neither.insurance_code, kept.drug_code, Decimal("12.50"), 10)],
                      clock=clock)
    reconcile_contracts(engine, SLUG, clock=clock)
    with Session(engine) as session:
        session.add(Violation(program_id=program.id or 0, rule=ViolationRule.DELIVERY_PATTERN,
                              subject_type=SubjectType.ENTERPRISE, subject_id=late.id or 0, object_key="2025Q4",
                              evidence={"late_orders": 5}, detected_on=date(2025, 12, 1), detected_at=clock.now()))
        session.commit()
    clock.set(shanghai(2025, 12, 1, 9))
    for _ in ("interview", "rectification"):
        reconcile_enforcement(engine, SLUG, clock=clock)
        gate = _open_gate(engine)
        assert gate is not None and gate.decider_role.value == "program_manager"
        decide_gate(engine, gate.id, approve=gate.items, user_name="manager", clock=clock)
    clock.set(shanghai(2025, 12, 22, 9))  # the rectification deadline (12-15) has passed
    reconcile_enforcement(engine, SLUG, clock=clock)
    gate = _open_gate(engine)
    assert gate is not None and "取消" in gate.title
    decide_gate(engine, gate.id, approve=gate.items, user_name="manager", clock=clock, options={"bad_record": True})
    with Session(engine) as session:
        latest = session.execute(select(ListVersion).where(ListVersion.kind == ListKind.DRUGS)  # type: ignore[arg-type]
                                 .order_by(ListVersion.number.desc())).scalars().first()  # type: ignore[attr-defined]
        assert latest is not None and latest.number == 2 and latest.removed == 2 and latest.entry_count == 1
        removed = [n.recipient_id for n in session.execute(select(Notice).where(
            Notice.idempotency_key.like("products_removed:%"))).scalars()]  # type: ignore[attr-defined]
        assert sorted(removed) == sorted([both.id, one.id])  # one notice each, none for `neither`
        contracts = {c.institution_id: c.state for c in session.execute(select(Contract)).scalars()}
        assert contracts == {both.id: ContractState.TERMINATED, one.id: ContractState.TERMINATED,
                             neither.id: ContractState.PENDING}
        ended = {s.product_id: s.ended_on for s in session.execute(select(Selection)).scalars()}
        assert ended == {p1.id: date(2025, 12, 22), p2.id: date(2025, 12, 22), kept.id: None}
        assert session.get(Enterprise, late.id).state == EnterpriseState.BARRED  # type: ignore[union-attr]
        bar = session.execute(select(BadRecord)).scalar_one()
        assert (bar.starts_on, bar.barred_until) == (date(2025, 12, 22), date(2027, 12, 21))
    before = table_counts(engine)
    reconcile_enforcement(engine, SLUG, clock=clock)
    reconcile_contracts(engine, SLUG, clock=clock)
    assert table_counts(engine) == before


def test_a_cure_while_a_rung_waits_cancels_its_gate(engine: Engine, overdue) -> None:
    gate = _open_gate(engine)
    assert gate is not None
    make_settlement(engine, overdue["order"], paid_on=date(2026, 2, 2), amount="125.00")
    clock = overdue["clock"]
    clock.set(shanghai(2026, 2, 3, 9))
    _tick(engine, clock)
    assert _case(engine).state == LadderState.CURED and _open_gate(engine) is None
    with Session(engine) as session:
        assert session.get(Gate, gate.id).state == GateState.CANCELLED  # type: ignore[union-attr]
