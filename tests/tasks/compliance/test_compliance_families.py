"""The compliance pass's rule families side by side on PostgreSQL (issue #14): the same findings as one transaction,
one pass per program at a time, a family that fails rolls back alone and the next pass completes it, and every
family's audit rows sealed into an intact chain.
"""

from __future__ import annotations

import itertools
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlmodel import Session

from core.audit_chain import verify_chain
from models.audit import AuditEvent
from models.clock import FixedClock
from models.operations import Payment, PurchaseOrder, Violation
from models.program import Program
from models.states import InstitutionKind
from tasks.compliance import compliance_pass, supply
from tasks.compliance.compliance_pass import FAMILIES, CompliancePassIncomplete, run_compliance_pass
from tasks.compliance.violation_audit import batch_digest
from tests import factories
from tests.factories import (
    clock_at,
    make_delivery,
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_sale_price,
    make_settlement,
    shanghai,
)

CLOCK = clock_at(2026, 2, 2, 8)


@pytest.fixture(autouse=True)
def _serial_restored() -> Any:
    """`_world` restarts the factories' serial; the tests after these go on from where theirs was."""
    saved = factories._serial
    yield
    factories._serial = saved


def _world(engine: Engine, slug: str = "shenyang-2025", serial: int = 10_000) -> Program:
    """A program whose first pass opens violations in every family: late and undelivered orders (deliveries), late
    and unpaid payables (settlements), prices above the cap and purchase prices far above the median (prices).

    Built the same twice (names and codes from the factories' serial, restarted at `serial`)."""
    factories._serial = itertools.count(serial)
    program = make_program(engine, slug)
    pharmacy = make_institution(engine, kind=InstitutionKind.CHAIN_PHARMACY)
    product = make_product(engine, make_enterprise(engine))
    ordered = shanghai(2025, 12, 1, 9, 0)
    for k in range(4):
        order = make_order(engine, program, pharmacy, product, ordered_at=ordered + timedelta(hours=k),
                           order_no=f"PO-{slug}-{k}")
        if k:  # one never delivered; the others late (80 h), each accepted and paid late, early or not at all
            make_delivery(engine, order, arrived_at=ordered + timedelta(hours=80 + k), accepted_on=date(2025, 12, 4))
        if k == 2:
            make_settlement(engine, order, paid_on=date(2026, 1, 30), amount="125.00")
        if k == 3:
            make_settlement(engine, order, paid_on=date(2025, 12, 20), amount="100.00")  # short: open
    make_sale_price(engine, program, pharmacy, product, offline="13.00", effective_on=date(2025, 12, 1))
    for k, price in enumerate(["100.00", "100.00", "100.00", "150.00"]):
        buyer = make_institution(engine)
        make_order(engine, program, buyer, product, ordered_at=shanghai(2025, 12, 2, 9), unit_price=price,
                   order_no=f"PA-{slug}-{k}")
    return program


def _state(engine: Engine) -> dict[str, Any]:
    """What a pass leaves, ids aside: every violation, every payable, and per rule, action and resulting state the
    audit rows' count of violations (their digests are checked against the rows they name: `_digests_hold`)."""
    with Session(engine) as session:
        conn = session.connection()
        found = sorted((v.rule.value, v.subject_type.value, v.subject_id, v.object_key.split("#")[0], v.occurrence,
                        v.state.value, repr(sorted(v.evidence.items()) if v.evidence else None), v.district,
                        v.detected_on, v.closed_on, v.closed_reason)
                       for v in session.execute(select(Violation)).scalars())
        payables = sorted(conn.execute(
            select(PurchaseOrder.order_no, Payment.amount, Payment.due_on, Payment.paid_on)  # type: ignore[call-overload]
            .join(PurchaseOrder, PurchaseOrder.id == Payment.order_id)).all())
        audit = sorted((r.entity_id, r.action, r.to_state, r.data["violations"])
                       for r in session.execute(select(AuditEvent).where(AuditEvent.entity == "violation")).scalars())  # type: ignore[arg-type]
    return {"violations": found, "payables": payables, "audit": audit}


def _digests_hold(engine: Engine) -> None:
    with Session(engine) as session:
        rows = list(session.execute(select(AuditEvent).where(AuditEvent.entity == "violation")).scalars())  # type: ignore[arg-type]
        for row in rows:
            if row.action == "violation_opened":
                assert batch_digest(session.connection(), row.data["ids"], row.to_state) == row.data["sha256"]
        assert verify_chain(session.connection()).broken is None


def _fresh(engine: Engine) -> None:
    """Empty the test database between two passes over the same world (ids restart too)."""
    from tests.conftest import _truncate_all

    _truncate_all(engine)


def test_the_rule_families_side_by_side_find_open_and_close_what_one_transaction_does(engine: Engine) -> None:
    program = _world(engine)
    first = run_compliance_pass(engine, program.slug, clock=CLOCK, connections=1)
    one = _state(engine)
    assert {o.rule for o in first.outcomes} == set(compliance_pass._ALL) and first.opened >= 8
    again = run_compliance_pass(engine, program.slug, clock=CLOCK, connections=1)
    assert (again.opened, again.closed) == (0, 0)
    if engine.dialect.name == "sqlite":
        assert run_compliance_pass(engine, program.slug, clock=CLOCK, connections=3).connections == 1
        return
    _fresh(engine)
    program = _world(engine)
    side = run_compliance_pass(engine, program.slug, clock=CLOCK, connections=3)
    assert side.connections == 3
    assert [(o.rule, o.found, o.opened, o.closed) for o in side.outcomes] == \
        [(o.rule, o.found, o.opened, o.closed) for o in first.outcomes]  # reported in the same order
    assert side.payables_created == first.payables_created
    assert _state(engine) == one
    _digests_hold(engine)
    rerun = run_compliance_pass(engine, program.slug, clock=CLOCK, connections=2)
    assert (rerun.opened, rerun.closed) == (0, 0) and _state(engine) == one
    # A cure closes side by side as in one transaction: the undelivered order arrives.
    with Session(engine) as session:
        order = session.execute(select(PurchaseOrder.id).where(  # type: ignore[call-overload]
            PurchaseOrder.order_no == "PO-shenyang-2025-0")).scalar_one()
    make_delivery(engine, order, arrived_at=shanghai(2026, 2, 1, 9), accepted_on=date(2026, 2, 1))
    cured = run_compliance_pass(engine, program.slug, clock=clock_at(2026, 2, 3, 8), connections=2)
    assert cured.closed >= 1
    _digests_hold(engine)


@pytest.mark.parametrize("failing", ["deliveries", "settlements"])
def test_a_rule_family_that_fails_rolls_back_alone_and_the_next_pass_completes_what_is_missing(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs the pass in one transaction: it fails or commits whole")
    program = _world(engine)
    run_compliance_pass(engine, program.slug, clock=CLOCK, connections=1)
    clean = _state(engine)
    _fresh(engine)
    program = _world(engine)
    broken = {"deliveries": "late_deliveries", "settlements": "late_payments"}[failing]
    real = getattr(supply, broken)

    def fails_in_the_database(ctx: Any) -> Any:  # a statement the server refuses, mid-family
        return real(ctx).where(text("1 / 0 = 1"))

    monkeypatch.setattr(supply, broken, fails_in_the_database)
    with pytest.raises(CompliancePassIncomplete) as raised:
        run_compliance_pass(engine, program.slug, clock=CLOCK, connections=2)
    message = str(raised.value)
    assert "合规检查未全部完成" in message and "did not complete" in message and failing in message
    assert "1 / 0" not in message and "SELECT" not in message  # the error's kind, never its SQL
    family = next(f for f in FAMILIES if f.name == failing)
    partial = _state(engine)
    written = {v[0] for v in partial["violations"]}
    assert not written & {r.value for r in family.rules}  # the failed family: nothing of it
    assert written == {v[0] for v in clean["violations"]} - {r.value for r in family.rules}  # the others: all
    assert bool(partial["payables"]) is (failing != "settlements")
    _digests_hold(engine)
    monkeypatch.setattr(supply, broken, real)
    completed = run_compliance_pass(engine, program.slug, clock=CLOCK, connections=2)
    assert completed.opened == sum(1 for v in clean["violations"] if v[0] in {r.value for r in family.rules})
    assert _state(engine) == clean  # nothing found twice, nothing lost
    _digests_hold(engine)


def test_a_second_pass_of_a_program_waits_for_every_family_of_the_first(engine: Engine,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator holds the program's lock until its workers have committed: a pass started meanwhile waits
    and then finds everything there (opens nothing)."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs the pass in one transaction")
    program = _world(engine)
    slow, released = threading.Event(), threading.Event()
    real = supply.late_deliveries

    def held(ctx: Any) -> Any:  # the deliveries family, on a worker, waits here until released
        slow.set()
        assert released.wait(30)
        return real(ctx)

    monkeypatch.setattr(supply, "late_deliveries", held)
    outcome: dict[str, Any] = {}
    first = threading.Thread(target=lambda: outcome.setdefault(
        "first", run_compliance_pass(engine, program.slug, clock=CLOCK, connections=2)))
    first.start()
    assert slow.wait(30)
    second = threading.Thread(target=lambda: outcome.setdefault(
        "second", run_compliance_pass(engine, program.slug, clock=CLOCK, connections=2)))
    second.start()
    second.join(timeout=1.5)
    assert second.is_alive(), "a second pass ran while the first one's families were still running"
    released.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert outcome["first"].opened > 0 and (outcome["second"].opened, outcome["second"].closed) == (0, 0)
    _digests_hold(engine)


def test_passes_of_two_programs_at_once_seal_every_family_into_an_intact_chain(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer")
    programs = [_world(engine, "shenyang-2025"), _world(engine, "ningxia-2025", serial=20_000)]
    errors: list[BaseException] = []

    def run(program: Program, clock: FixedClock) -> None:
        try:
            run_compliance_pass(engine, program.slug, clock=clock, connections=3)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p, CLOCK)) for p in programs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    _digests_hold(engine)
    with Session(engine) as session:
        per_program = dict(session.execute(select(Violation.program_id, func.count())  # type: ignore[call-overload]
                                           .group_by(Violation.program_id)).all())
    assert len(per_program) == 2
    with Session(engine) as session:  # a forged evidence is still found
        session.execute(update(Violation).where(Violation.id == 1).values(evidence={"x": "forged"}))  # type: ignore[arg-type]
        session.commit()
    with Session(engine) as session:
        rows = list(session.execute(select(AuditEvent).where(AuditEvent.entity == "violation")).scalars())  # type: ignore[arg-type]
        assert any(batch_digest(session.connection(), r.data["ids"], r.to_state) != r.data["sha256"]
                   for r in rows if r.action == "violation_opened" and any(a <= 1 <= b for a, b in r.data["ids"]))


def test_compliance_pass_incomplete_is_a_message_for_a_person() -> None:
    from sanjin.errors import USER_ERRORS

    error = CompliancePassIncomplete("shenyang-2025", {"prices": ZeroDivisionError("SELECT 1/0")})
    assert isinstance(error, USER_ERRORS)
    assert "价格与配备类规则" in str(error) and "prices" in str(error) and "SELECT" not in str(error)
    assert compliance_pass.FAMILY_LABELS.keys() == {f.name for f in FAMILIES}
