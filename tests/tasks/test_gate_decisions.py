"""What a review decision leaves behind, whatever the gate's size: one audit row per application moved (actor,
role, gate), one review per decision, each institution's notice once, and batches filled in order."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from models.audit import AuditEvent
from models.enrollment import Application, Batch, Gate, Review
from models.gate_decisions import decided_ids
from models.outbox import Notice
from models.program import Program
from models.states import (
    ApplicationState,
    Decision,
    GateKind,
    GateState,
    InstitutionKind,
    NoticeStatus,
    ReviewLevel,
    Role,
)
from models.transitions import InvalidTransition
from tasks.gates.deciding import decide_gate
from tasks.gates.rows import BadItems
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


@pytest.fixture
def world(engine: Engine) -> dict[str, Any]:
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区", "沈河区"])
    heping = [make_institution(engine, district="和平区") for _ in range(4)]
    silent = make_institution(engine, district="和平区", kind=InstitutionKind.PRIVATE_CLINIC, email=None)
    shenhe = [make_institution(engine, district="沈河区") for _ in range(2)]
    apps = make_applications(engine, program, [*heping, silent, *shenhe], submitted_at=shanghai(2025, 9, 12, 10))
    clock = clock_at(2025, 9, 12, 12)
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))  # after the first cut-off: the batch is declared, district gates open
    reconcile_enrollment(engine, SLUG, clock=clock)
    return {"program": program, "reviewers": reviewers, "apps": apps, "clock": clock,
            "silent_app": apps[4], "silent": silent}


def _gate(engine: Engine, kind: GateKind, district: str | None = None) -> Gate:
    with Session(engine) as session:
        query = select(Gate).where(Gate.kind == kind, Gate.state == GateState.OPEN)
        if district is not None:
            query = query.where(Gate.district == district)
        return session.execute(query).scalars().one()


def _audit(engine: Engine, entity: str = "application") -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.entity == entity)
                                    .order_by(AuditEvent.id)).scalars())


def _state(engine: Engine, app_id: int) -> ApplicationState:
    with Session(engine) as session:
        return session.execute(select(Application.state).where(Application.id == app_id)).scalar_one()


def test_each_decided_application_gets_one_audit_row_naming_who_decided_in_which_gate(engine: Engine, world) -> None:
    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    approve, reject = gate.items[:-1], gate.items[-1:]
    decide_gate(engine, gate.id, approve=approve, reject=reject, reason="材料不全",
                user_name=world["reviewers"]["和平区"], clock=world["clock"])
    rows = {int(a.entity_id): a for a in _audit(engine)}
    assert sorted(rows) == sorted(gate.items)
    for app_id in approve:
        a = rows[app_id]
        assert (a.action, a.from_state, a.to_state, a.reason) == ("district_approve", "submitted",
                                                                   "district_approved", None)
    a = rows[reject[0]]
    assert (a.action, a.from_state, a.to_state, a.reason) == ("district_reject", "submitted", "rejected", "材料不全")
    for a in rows.values():
        assert (a.actor, a.role, a.data, a.program_id) == (world["reviewers"]["和平区"], Role.DISTRICT_REVIEWER,
                                                           {"gate_id": gate.id}, world["program"].id)
        assert a.at == world["clock"].now()
    gate_rows = _audit(engine, "gate")
    assert [(g.entity_id, g.action, g.actor) for g in gate_rows] == [(str(gate.id), "decide",
                                                                       world["reviewers"]["和平区"])]


def test_each_decision_is_one_review_row_with_its_own_reason(engine: Engine, world) -> None:
    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    first, second, *rest = gate.items
    decide_gate(engine, gate.id, reject=[first, second], reasons={first: "地址与执业许可证不符", second: "联系电话错误"},
                user_name=world["reviewers"]["和平区"], clock=world["clock"])
    decide_gate(engine, gate.id, approve=rest, user_name=world["reviewers"]["和平区"], clock=world["clock"])
    with Session(engine) as session:
        reviews = {r.application_id: r for r in session.execute(select(Review)).scalars()}
        reasons = dict(session.execute(select(Application.id, Application.reason)).tuples().all())
    assert sorted(reviews) == sorted(gate.items)
    assert {i: (r.decision, r.reason) for i, r in reviews.items() if i in (first, second)} == {
        first: (Decision.REJECT, "地址与执业许可证不符"), second: (Decision.REJECT, "联系电话错误")}
    assert all(reviews[i].decision == Decision.APPROVE and reviews[i].reason is None for i in rest)
    assert all((r.level, r.reviewer, r.gate_id) == (ReviewLevel.DISTRICT, world["reviewers"]["和平区"], gate.id)
               for r in reviews.values())
    assert (reasons[first], reasons[second]) == ("地址与执业许可证不符", "联系电话错误")  # shown to the institution
    assert _state(engine, first) == ApplicationState.REJECTED
    assert all(_state(engine, i) == ApplicationState.DISTRICT_APPROVED for i in rest)
    with Session(engine) as session:
        assert session.get(Gate, gate.id).state == GateState.DECIDED  # type: ignore[union-attr]


def test_the_gate_row_keeps_each_outcome_once_with_the_items_it_covers(engine: Engine, world) -> None:
    """Not a document entry per item (10.7 MB for a city gate of 100,000, issue #17): one per outcome."""
    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    first, second, *rest = gate.items
    reviewer = world["reviewers"]["和平区"]
    decide_gate(engine, gate.id, reject=[first, second], reasons={first: "地址与执业许可证不符", second: "地址与执业许可证不符"},
                user_name=reviewer, clock=world["clock"])
    with Session(engine) as session:
        assert decided_ids(session.get(Gate, gate.id).decision) == {first, second}  # type: ignore[union-attr]
    with pytest.raises(BadItems, match="already decided"):  # an item is decided once
        decide_gate(engine, gate.id, approve=[first, *rest], user_name=reviewer, clock=world["clock"])
    decide_gate(engine, gate.id, approve=rest, user_name=reviewer, clock=world["clock"])
    with Session(engine) as session:
        stored = session.get(Gate, gate.id).decision  # type: ignore[union-attr]
    at = world["clock"].now().isoformat()
    assert stored == {"outcomes": [
        {"decision": "reject", "reason": "地址与执业许可证不符", "by": reviewer, "at": at, "items": sorted([first, second])},
        {"decision": "approve", "reason": None, "by": reviewer, "at": at, "items": sorted(rest)}]}


def test_a_district_rejection_is_told_at_once_an_approval_waits_for_the_city(engine: Engine, world) -> None:
    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    silent = world["silent_app"]
    approve = [i for i in gate.items if i != silent]
    decide_gate(engine, gate.id, approve=approve, reject=[silent], reason="未签署承诺书",
                user_name=world["reviewers"]["和平区"], clock=world["clock"])
    with Session(engine) as session:
        notices = list(session.execute(select(Notice).where(Notice.kind == "application_decision")).scalars())
    assert len(notices) == 1
    (notice,) = notices
    assert notice.idempotency_key == f"application_decision:{silent}:district"
    assert notice.recipient_id == world["silent"].id and notice.recipient_name == world["silent"].name
    # The program's and the institution's names are the row's to give (its program, its recipient; issue #17).
    assert notice.context == {"application_id": silent, "decision": "reject", "level": "district",
                              "reason": "未签署承诺书", "can_reapply": True, "district": world["silent"].district}
    # No e-mail address: kept for print or phone follow-up, never tried by the sender.
    assert (notice.status, notice.email, notice.next_attempt_at) == (NoticeStatus.NO_ADDRESS, None, None)


def _through_city(engine: Engine, world, **city_decision: Any) -> Gate:
    for district in ("和平区", "沈河区"):
        gate = _gate(engine, GateKind.DISTRICT_REVIEW, district)
        decide_gate(engine, gate.id, approve=gate.items, user_name=world["reviewers"][district], clock=world["clock"])
    reconcile_enrollment(engine, SLUG, clock=world["clock"])
    city = _gate(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, user_name="manager", clock=world["clock"], **city_decision)
    return city


def test_the_city_decision_tells_every_institution_once(engine: Engine, world) -> None:
    city = _through_city(engine, world, approve=world["apps"][1:], reject=world["apps"][:1], reason="同意")
    with Session(engine) as session:
        notices = {n.context["application_id"]: n for n in session.execute(
            select(Notice).where(Notice.kind == "application_decision")).scalars()}
        audit = session.execute(select(func.count()).where(AuditEvent.action.in_(["city_approve", "city_reject"]),  # type: ignore[attr-defined]
                                                             AuditEvent.data["gate_id"].as_integer() == city.id)).scalar_one()
    assert sorted(notices) == sorted(world["apps"]) and audit == len(world["apps"])
    approved = notices[world["apps"][1]]
    assert approved.context["decision"] == "approve" and approved.context["can_reapply"] is False
    assert approved.context["reason"] is None  # the general reason is the gate's, not the item's
    assert approved.status == NoticeStatus.PENDING and approved.next_attempt_at is not None
    assert notices[world["apps"][0]].context["reason"] == "同意"  # a rejection carries its reason
    assert _state(engine, world["apps"][0]) == ApplicationState.REJECTED
    assert all(_state(engine, i) == ApplicationState.APPROVED for i in world["apps"][1:])


def test_a_decision_on_an_application_that_left_review_changes_nothing(engine: Engine, world) -> None:
    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    with Session(engine) as session:  # withdrawn after the gate opened
        session.execute(update(Application).where(Application.id == gate.items[0])  # type: ignore[arg-type]
                        .values(state=ApplicationState.WITHDRAWN))
        session.commit()
    before = table_counts(engine)
    with pytest.raises(InvalidTransition, match=str(gate.items[0])):
        decide_gate(engine, gate.id, approve=gate.items, user_name=world["reviewers"]["和平区"], clock=world["clock"])
    assert table_counts(engine) == before
    assert all(_state(engine, i) == ApplicationState.SUBMITTED for i in gate.items[1:])
    with Session(engine) as session:
        assert session.get(Gate, gate.id).state == GateState.OPEN  # type: ignore[union-attr]


def test_a_running_batch_audits_each_start_and_tells_each_institution_once(engine: Engine, world) -> None:
    _through_city(engine, world, approve=world["apps"])
    report = reconcile_enrollment(engine, SLUG, clock=world["clock"])
    assert report.running == [1]
    started = [a for a in _audit(engine) if a.action == "start_running"]
    assert sorted(int(a.entity_id) for a in started) == sorted(world["apps"])
    assert all((a.from_state, a.to_state, a.actor, a.role, a.data) == ("approved", "running", "system", Role.SYSTEM,
                                                                        {"batch": 1}) for a in started)
    (run,) = [a for a in _audit(engine, "batch") if a.action == "run"]
    assert run.data == {"institutions": len(world["apps"])}
    with Session(engine) as session:
        published = list(session.execute(select(Notice).where(Notice.kind == "batch_published")).scalars())
        institutions = set(session.execute(select(Application.institution_id)).scalars())
    assert len(published) == len(world["apps"]) and {n.recipient_id for n in published} == institutions
    assert {n.idempotency_key for n in published} == {f"batch_published:1:{i}" for i in institutions}
    assert all(n.context["batch_number"] == 1 and n.context["list_url"] is None
               and n.context["published_on"] == "2025-09-20" for n in published)
    before = table_counts(engine)
    reconcile_enrollment(engine, SLUG, clock=world["clock"])
    assert table_counts(engine) == before


def _limit_batches(engine: Engine, size: int) -> None:
    with Session(engine) as session:
        program = session.execute(select(Program).where(Program.slug == SLUG)).scalars().one()
        definition = dict(program.definition)
        definition["batching"] = {**definition["batching"], "max_applications": size}
        session.execute(update(Program).where(Program.id == program.id).values(definition=definition))  # type: ignore[arg-type]
        session.commit()


def test_batches_fill_to_their_limit_in_the_order_applications_came(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    _limit_batches(engine, 3)
    apps = make_applications(engine, program, [make_institution(engine) for _ in range(7)],
                             submitted_at=shanghai(2025, 9, 12, 10))
    report = reconcile_enrollment(engine, SLUG, clock=clock_at(2025, 9, 12, 12))
    assert report.batched == 7 and report.declared == [1, 2]  # two full batches declared at once
    with Session(engine) as session:
        batch_of = dict(session.execute(select(Application.id, Batch.number)
                                        .join(Batch, Batch.id == Application.batch_id)).tuples().all())  # type: ignore[arg-type]
    assert [batch_of[i] for i in apps] == [1, 1, 1, 2, 2, 2, 3]


def test_a_gate_decision_runs_with_the_cycle_collector_paused(engine: Engine, world) -> None:
    """A city decision reads and moves every item of the batch: no cycle collection (a full one walks every object
    of the worker) while any of its statements runs, and the collector is on again afterwards."""
    import gc

    from sqlalchemy import event

    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    collector_on: list[bool] = []

    def seen(conn, cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        collector_on.append(gc.isenabled())

    assert gc.isenabled()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        decide_gate(engine, gate.id, approve=gate.items, user_name=world["reviewers"]["和平区"], clock=world["clock"])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert collector_on and not any(collector_on)
    assert gc.isenabled()


def test_a_decision_naming_an_item_twice_or_one_the_gate_lacks_is_refused_and_writes_nothing(engine: Engine,
                                                                                              world) -> None:
    """The item checks (each id set built once since issue #17's rev7) still refuse before anything is written."""
    gate = _gate(engine, GateKind.DISTRICT_REVIEW, "和平区")
    first, *rest = gate.items
    reviewer = world["reviewers"]["和平区"]
    before = table_counts(engine)
    with pytest.raises(BadItems, match="both approved and rejected"):
        decide_gate(engine, gate.id, approve=gate.items, reject=[first], reasons={first: "联系电话错误"},
                    user_name=reviewer, clock=world["clock"])
    with pytest.raises(BadItems, match="has no items"):
        decide_gate(engine, gate.id, approve=[*gate.items, max(gate.items) + 1000], user_name=reviewer,
                    clock=world["clock"])
    with pytest.raises(BadItems, match="has no items"):
        decide_gate(engine, gate.id, approve=rest, reject=[max(gate.items) + 1000], reasons={max(gate.items) + 1000: "x"},
                    user_name=reviewer, clock=world["clock"])
    assert table_counts(engine) == before
    decide_gate(engine, gate.id, approve=gate.items, user_name=reviewer, clock=world["clock"])
    with Session(engine) as session:
        assert decided_ids(session.get(Gate, gate.id).decision) == set(gate.items)  # type: ignore[union-attr]
