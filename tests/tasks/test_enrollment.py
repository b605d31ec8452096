"""Enrollment as policy: "申报一批、成熟一批、运行一批", district review before city, reruns change nothing."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

import tasks.phases.enrollment
from models.catalog import ListVersion
from models.enrollment import Application, Batch, Gate
from models.operations import PlatformAccount
from models.outbox import Notice
from models.states import AccountState, ApplicationState, BatchState, GateKind, GateState, InstitutionKind
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import BadItems, NotAllowedToDecide, NotYourDistrict
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import (
    clock_at,
    make_applications,
    make_institution,
    make_program,
    make_reviewers,
    shanghai,
    table_counts,
)

SLUG = "shenyang-2025"



def _gates(engine: Engine, kind: GateKind) -> list[Gate]:
    with Session(engine) as session:
        return list(session.exec(select(Gate).where(Gate.kind == kind).order_by(Gate.id)).scalars())  # type: ignore[call-overload]


@pytest.fixture
def world(engine: Engine):
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区", "沈河区"])
    parent = make_institution(engine, district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    clinic = make_institution(engine, district="和平区", kind=InstitutionKind.VILLAGE_CLINIC, proxy_parent_id=parent.id,
                              email=None)
    pharmacies = [make_institution(engine, district=d) for d in ("和平区", "和平区", "沈河区")]
    apps = make_applications(engine, program, [parent, clinic, *pharmacies], submitted_at=shanghai(2025, 9, 12, 10))
    return {"program": program, "reviewers": reviewers, "apps": apps, "clinic": clinic, "parent": parent}


def _through_district_review(engine: Engine, world, clock) -> None:
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    for gate in _gates(engine, GateKind.DISTRICT_REVIEW):
        decide_gate(engine, gate.id, approve=gate.items, user_name=world["reviewers"][gate.district], clock=clock)


def test_applications_wait_in_an_open_batch_until_its_cutoff(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    report = reconcile_enrollment(engine, SLUG, clock=clock)
    assert report.batched == 5 and report.declared == [] and report.gates_opened == 0
    clock.set(shanghai(2025, 9, 20, 9))  # the day after Shenyang's first cut-off (2025-09-19)
    report = reconcile_enrollment(engine, SLUG, clock=clock)
    assert report.declared == [1]
    district_gates = _gates(engine, GateKind.DISTRICT_REVIEW)
    assert sorted(g.district for g in district_gates) == ["和平区", "沈河区"]
    assert _gates(engine, GateKind.CITY_REVIEW) == []  # the city waits for every district


def test_a_district_reviewer_cannot_decide_another_districts_applications(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    shenhe = next(g for g in _gates(engine, GateKind.DISTRICT_REVIEW) if g.district == "沈河区")
    with pytest.raises(NotYourDistrict, match="沈河区"):
        decide_gate(engine, shenhe.id, approve=shenhe.items, user_name=world["reviewers"]["和平区"], clock=clock)
    with pytest.raises(NotAllowedToDecide):
        decide_gate(engine, shenhe.id, approve=shenhe.items, user_name="manager", clock=clock)
    with Session(engine) as session:
        assert session.get(Gate, shenhe.id).state == GateState.OPEN  # type: ignore[union-attr]


def test_a_rejection_needs_a_reason(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    gate = _gates(engine, GateKind.DISTRICT_REVIEW)[0]
    with pytest.raises(BadItems, match="理由"):
        decide_gate(engine, gate.id, reject=gate.items[:1], user_name=world["reviewers"][gate.district], clock=clock)


def test_batch_matures_only_when_every_level_has_decided(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    _through_district_review(engine, world, clock)
    report = reconcile_enrollment(engine, SLUG, clock=clock)
    assert report.matured == []  # districts done, the city not yet
    (city,) = _gates(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items[:-1], user_name="manager", clock=clock)
    assert reconcile_enrollment(engine, SLUG, clock=clock).matured == []  # one item still undecided
    decide_gate(engine, city.id, reject=city.items[-1:], reason="药品配备承诺不足", user_name="manager", clock=clock)
    report = reconcile_enrollment(engine, SLUG, clock=clock)
    assert report.matured == [1] and report.running == [1]
    with Session(engine) as session:
        states = dict(session.execute(select(Application.id, Application.state)).all())
        assert states[city.items[-1]] == ApplicationState.REJECTED
        assert sum(s == ApplicationState.RUNNING for s in states.values()) == 4
        assert session.execute(select(Batch.state)).scalar_one() == BatchState.RUNNING
        version = session.execute(select(ListVersion)).scalar_one()
        assert version.entry_count == 4 and version.added == 4


def test_a_proxy_procured_clinic_is_never_asked_for_an_account(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    _through_district_review(engine, world, clock)
    reconcile_enrollment(engine, SLUG, clock=clock)
    (city,) = _gates(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    reconcile_enrollment(engine, SLUG, clock=clock)
    with Session(engine) as session:
        accounts = {a.institution_id: a for a in session.exec(select(PlatformAccount)).scalars()}  # type: ignore[call-overload]
    assert accounts[world["clinic"].id].state == AccountState.EXEMPT
    assert accounts[world["clinic"].id].due_on is None
    assert accounts[world["parent"].id].state == AccountState.PENDING


def test_rerunning_enrollment_changes_nothing(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    _through_district_review(engine, world, clock)
    reconcile_enrollment(engine, SLUG, clock=clock)
    (city,) = _gates(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    reconcile_enrollment(engine, SLUG, clock=clock)
    before = table_counts(engine)
    for _ in range(3):
        reconcile_enrollment(engine, SLUG, clock=clock)
    assert table_counts(engine) == before
    with Session(engine) as session:
        keys = session.execute(select(Notice.idempotency_key)).scalars().all()
    assert len(keys) == len(set(keys))


def test_undecided_applications_carry_over_to_the_next_batch_after_the_window_closes(engine: Engine, world) -> None:
    clock = clock_at(2025, 9, 12, 12)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    heping = next(g for g in _gates(engine, GateKind.DISTRICT_REVIEW) if g.district == "和平区")
    shenhe = next(g for g in _gates(engine, GateKind.DISTRICT_REVIEW) if g.district == "沈河区")
    decide_gate(engine, shenhe.id, approve=shenhe.items, user_name=world["reviewers"]["沈河区"], clock=clock)
    clock.set(shanghai(2025, 10, 20, 9))  # window closed 09-30, 和平区's gate long overdue
    reconcile_enrollment(engine, SLUG, clock=clock)
    with Session(engine) as session:
        assert session.get(Gate, heping.id).state == GateState.EXPIRED  # type: ignore[union-attr]
        moved = session.execute(select(Application.batch_id).where(Application.id.in_(heping.items))).scalars().all()
    assert None not in moved and 1 not in {b for b in moved if b}  # now in a later batch


def test_two_workers_reconciling_one_program_at_once_make_one_batch(engine: Engine, world,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A has batched the applications but not committed when B starts; unguarded, B sees them unbatched too."""
    clock = clock_at(2025, 9, 12, 12)
    a_batched, b_started = threading.Event(), threading.Event()
    real = tasks.phases.enrollment.assign_to_batches

    def slow_for_a(t) -> None:
        real(t)
        if threading.current_thread().name == "A":
            a_batched.set()
            b_started.wait(timeout=20)
            time.sleep(1.0)  # B reaches its reads now; with the program lock it waits for A's commit instead

    monkeypatch.setattr(tasks.phases.enrollment, "assign_to_batches", slow_for_a)
    reports: dict[str, object] = {}

    def run() -> None:
        name = threading.current_thread().name
        if name == "B":
            b_started.set()
        try:
            reports[name] = reconcile_enrollment(engine, SLUG, clock=clock)
        except BaseException as exc:  # a thread's exception would otherwise vanish
            reports[name] = exc

    a, b = threading.Thread(target=run, name="A"), threading.Thread(target=run, name="B")
    a.start()
    assert a_batched.wait(timeout=30)
    b.start()
    a.join(timeout=60)
    b.join(timeout=60)
    assert [getattr(reports[n], "batched", reports[n]) for n in ("A", "B")] == [5, 0]
    with Session(engine) as session:
        batches = session.exec(select(Batch)).scalars().all()  # type: ignore[call-overload]
        batched = {a.batch_id for a in session.exec(select(Application)).scalars()}  # type: ignore[call-overload]
    assert [b.number for b in batches] == [1]
    assert batched == {batches[0].id}


def test_a_batch_runs_with_the_cycle_collector_paused(engine: Engine, world) -> None:
    """The batch run keeps its list rows alive while it writes them, the audit rows and the notices: no cycle
    collection (a full one walks every object of the worker) while any of its statements runs."""
    import gc

    from sqlalchemy import event

    clock = clock_at(2025, 9, 12, 12)
    _through_district_review(engine, world, clock)
    reconcile_enrollment(engine, SLUG, clock=clock)
    (city,) = _gates(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    collector_on: list[bool] = []

    def seen(conn, cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        collector_on.append(gc.isenabled())

    assert gc.isenabled()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        report = reconcile_enrollment(engine, SLUG, clock=clock)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert report.running == [1]
    assert collector_on and not any(collector_on)
    assert gc.isenabled()


def test_a_reconciliation_finds_unbatched_applications_by_the_batch_index_not_by_walking_the_program(
        engine: Engine, world) -> None:
    """Every reconciliation counts the applications still waiting for a batch (none, after the first one of a
    batch). SQLite has no statistics: given the program's equality it walked every application of the program
    (the unique (program, institution, attempt) index) to find none; the batch index finds them directly."""
    from sqlalchemy import event

    clock = clock_at(2025, 9, 12, 12)
    reconcile_enrollment(engine, SLUG, clock=clock)  # the batch takes every application
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, *_: object) -> None:  # type: ignore[no-untyped-def]
        if "batch_id IS NULL" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        report = reconcile_enrollment(engine, SLUG, clock=clock)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert report.batched == 0
    assert seen, "the reconciliation did not ask for unbatched applications"
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL plans from statistics: the plain column, nothing to check here
    with engine.connect() as conn:
        for statement, parameters in seen:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                         parameters).all())  # type: ignore[arg-type]
            assert "ix_application_batch_id (batch_id=?)" in plan, plan
