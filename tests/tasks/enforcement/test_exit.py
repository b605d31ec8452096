"""Enterprise exit (001 §五): the manager approves at a gate; the products leave the list on the date, not before."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.catalog import Enterprise, ListVersion
from models.enrollment import Gate
from models.operations import Contract, Selection
from models.outbox import Notice
from models.states import ContractState, EnterpriseState, GateKind, GateState, ListKind
from tasks.enforcement.exit import ExitRefused, request_exit
from tasks.enforcement.ladder import reconcile_enforcement
from tasks.enforcement.lookup import ManagersOnly
from tasks.gates.deciding import decide_gate
from tasks.platform.contracts import reconcile_contracts
from tasks.platform.selections import SelectionRow, record_selections
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_product,
    make_program,
    make_reviewers,
    make_running_application,
    publish_drug_list,
    shanghai,
    table_counts,
)

SLUG = "shenyang-2025"
NAME = "期满制药有限公司"


def _drug_versions(engine: Engine) -> list[tuple[int, int]]:
    with Session(engine) as session:
        return [(v.number, v.entry_count) for v in session.execute(select(ListVersion).where(
            col(ListVersion.kind) == ListKind.DRUGS).order_by(col(ListVersion.number))).scalars()]


def test_an_exit_on_a_future_date_takes_effect_on_that_date_and_not_before(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区"])
    clock = clock_at(2025, 10, 9, 10)
    leaving, staying = make_enterprise(engine, NAME), make_enterprise(engine)
    p1, p2 = make_product(engine, leaving), make_product(engine, staying)
    publish_drug_list(engine, program, [p1, p2], clock=clock)
    pharmacy = make_institution(engine)
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 9, 30, 9))
    record_selections(engine, SLUG, [SelectionRow(pharmacy.insurance_code, p.drug_code, Decimal("12.50"), 5)
                                     for p in (p1, p2)], clock=clock)
    reconcile_contracts(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 12, 1, 9))
    with pytest.raises(ManagersOnly):
        request_exit(engine, SLUG, NAME, exits_on=date(2025, 12, 20), reason="协议期满", user_name=reviewers["和平区"],
                     clock=clock)
    with pytest.raises(ExitRefused):
        request_exit(engine, SLUG, NAME, exits_on=date(2025, 12, 20), reason=" ", user_name="manager", clock=clock)
    gate_id = request_exit(engine, SLUG, NAME, exits_on=date(2025, 12, 20), reason="协议期满", user_name="manager",
                           clock=clock)
    assert request_exit(engine, SLUG, NAME, exits_on=date(2025, 12, 20), reason="协议期满", user_name="manager",
                        clock=clock) == gate_id  # asking twice opens one gate
    with Session(engine) as session:
        gate = session.get(Gate, gate_id)
        assert gate is not None and gate.kind == GateKind.ENTERPRISE_EXIT and gate.state == GateState.OPEN
    decide_gate(engine, gate_id, approve=gate.items, user_name="manager", clock=clock)
    clock.set(shanghai(2025, 12, 19, 23, 59))
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert _drug_versions(engine) == [(1, 2)]  # the day before: still listed
    clock.set(shanghai(2025, 12, 20, 8))
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert _drug_versions(engine) == [(1, 2), (2, 1)]
    with Session(engine) as session:
        assert session.get(Enterprise, leaving.id).state == EnterpriseState.EXITED  # type: ignore[union-attr]
        told = session.execute(select(Notice).where(col(Notice.idempotency_key).like("products_removed:%"))).scalars().all()
        assert [n.recipient_id for n in told] == [pharmacy.id]
        contracts = {c.enterprise_id: c.state for c in session.execute(select(Contract)).scalars()}
        assert contracts == {leaving.id: ContractState.TERMINATED, staying.id: ContractState.PENDING}
        ended = {s.product_id: s.ended_on for s in session.execute(select(Selection)).scalars()}
        assert ended == {p1.id: date(2025, 12, 20), p2.id: None}
    before = table_counts(engine)
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert table_counts(engine) == before


def test_recording_an_exit_application_is_audited_once_with_who_asked(engine: Engine) -> None:
    from models.audit import AuditEvent

    make_program(engine, SLUG)
    make_reviewers(engine, [])
    make_enterprise(engine, NAME)
    clock = clock_at(2025, 12, 1, 9)
    for _ in range(2):
        request_exit(engine, SLUG, NAME, exits_on=date(2026, 1, 1), reason="协议期满", user_name="manager", clock=clock)
    with Session(engine) as session:
        (event,) = session.execute(select(AuditEvent).where(col(AuditEvent.entity) == "enterprise_exit")).scalars()
    assert (event.action, event.actor, event.reason) == ("open", "manager", "协议期满")
