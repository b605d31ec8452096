"""Which run waits on a gate: the newest attached, and only on gates still open when it is about to wait."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlmodel import Session

from models.enrollment import Gate
from models.states import GateKind, InstitutionKind
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import attach_waiting_run
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import clock_at, make_applications, make_institution, make_program, make_reviewers, shanghai

SLUG = "shenyang-2025"


def _district_gates(engine: Engine) -> tuple[list[Gate], dict[str, str], object]:
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区", "沈河区"])
    insts = [make_institution(engine, district=d, kind=InstitutionKind.CHAIN_PHARMACY) for d in ("和平区", "沈河区")]
    make_applications(engine, program, insts, submitted_at=shanghai(2025, 9, 12, 10))
    clock = clock_at(2025, 9, 12, 12)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    with Session(engine) as session:
        gates = list(session.execute(select(Gate).where(Gate.kind == GateKind.DISTRICT_REVIEW)
                                     .order_by(Gate.id)).scalars())  # type: ignore[arg-type]
    return gates, reviewers, clock


def test_a_gate_decided_while_the_run_reconciled_is_not_waited_on(engine: Engine) -> None:
    gates, reviewers, clock = _district_gates(engine)
    first, second = gates
    decide_gate(engine, first.id, approve=first.items, user_name=reviewers[first.district], clock=clock)  # type: ignore[arg-type]
    still_open, superseded = attach_waiting_run(engine, [first.id, second.id], "run-a")  # type: ignore[list-item]
    assert still_open == [second.id] and superseded == []


def test_a_newer_waiting_run_supersedes_the_one_attached_before(engine: Engine) -> None:
    gates, _, _ = _district_gates(engine)
    ids = [g.id for g in gates]
    attach_waiting_run(engine, ids, "run-a")  # type: ignore[arg-type]
    still_open, superseded = attach_waiting_run(engine, ids, "run-b")  # type: ignore[arg-type]
    assert still_open == ids and superseded == ["run-a"]
    assert attach_waiting_run(engine, ids, "run-b") == (ids, [])  # re-attaching itself supersedes nobody
    with Session(engine) as session:
        assert {g.flow_run_id for g in session.execute(select(Gate)).scalars()} == {"run-b"}
