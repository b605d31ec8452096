"""Which violation opens which ladder, at which rung, under the program's seeds (models/enforcement.py LADDER_PLANS),
and the sign-removal rung (摘除标识牌, Ningxia's 001 §三(四)): the pharmacy leaves the published list but keeps running,
and a cure gives the sign back."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from core.db import transaction
from models.catalog import ListEntry, ListVersion
from models.clock import FixedClock
from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.enforcement import EnforcementCase, LadderState
from models.enrollment import Application, Gate
from models.operations import Violation
from models.outbox import Notice
from models.program import Program
from models.states import ApplicationState, GateKind, GateState, ListKind
from tasks.enforcement.ladder import reconcile_enforcement
from tasks.gates.deciding import decide_gate
from tasks.lists.versions import publish_list
from tasks.programs import get_program
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_program,
    make_reviewers,
    make_running_application,
    shanghai,
    table_counts,
)

SLUG = "ningxia-2025"  # seed 001: sign removal for 配备数量未达到条件 / 未规范执行价格政策


def _violation(engine: Engine, program: Program, rule: ViolationRule, subject_type: SubjectType, subject_id: int,
               clock: FixedClock, *, object_key: str = "", district: str | None = None) -> int:
    with Session(engine) as session:
        v = Violation(program_id=program.id or 0, rule=rule, subject_type=subject_type, subject_id=subject_id,
                      object_key=object_key, district=district, evidence={"drug_count": 3, "required": 5},
                      detected_on=clock.today(), detected_at=clock.now())
        session.add(v)
        session.commit()
        return v.id or 0


def _open_gates(engine: Engine) -> list[Gate]:
    with Session(engine) as session:
        return list(session.execute(select(Gate).where(col(Gate.kind) == GateKind.ENFORCEMENT,
                                                       col(Gate.state) == GateState.OPEN)).scalars())


def _cases(engine: Engine) -> list[EnforcementCase]:
    with Session(engine) as session:
        return list(session.execute(select(EnforcementCase).order_by(col(EnforcementCase.id))).scalars())


def _republished(engine: Engine, clock: FixedClock) -> set[str]:
    """The institution list as the daily republication publishes it: the insurance codes of its latest version."""
    with transaction(engine) as session:
        program, defn = get_program(session, SLUG)
        publish_list(session, program, defn, "institutions", clock=clock, reason="scheduled republication")
    with Session(engine) as session:
        latest = session.execute(select(ListVersion).where(col(ListVersion.kind) == ListKind.INSTITUTIONS)
                                 .order_by(col(ListVersion.number).desc())).scalars().first()
        assert latest is not None
        return set(session.execute(select(ListEntry.key).where(col(ListEntry.version_id) == latest.id)).scalars())


@pytest.fixture
def pharmacy(engine: Engine) -> dict[str, Any]:
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["兴庆区"])
    inst = make_institution(engine, district="兴庆区")
    make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))
    return {"program": program, "inst": inst, "reviewer": reviewers["兴庆区"], "clock": clock_at(2025, 12, 1, 9)}


def test_a_pharmacy_carrying_too_few_drugs_loses_its_sign_not_its_qualification_and_a_cure_gives_it_back(
        engine: Engine, pharmacy: dict[str, Any]) -> None:
    program, inst, clock = pharmacy["program"], pharmacy["inst"], pharmacy["clock"]
    violation = _violation(engine, program, ViolationRule.TOO_FEW_DRUGS, SubjectType.INSTITUTION, inst.id or 0,
                           clock, district="兴庆区")
    for step in ("约谈", "限期整改"):
        reconcile_enforcement(engine, SLUG, clock=clock)
        (gate,) = _open_gates(engine)
        assert step in gate.title
        decide_gate(engine, gate.id or 0, approve=gate.items, user_name=pharmacy["reviewer"], clock=clock)
    clock.set(shanghai(2025, 12, 22, 9))  # ten working days have passed; still too few drugs
    reconcile_enforcement(engine, SLUG, clock=clock)
    (gate,) = _open_gates(engine)
    assert "摘除标识牌" in gate.title and "取消" not in gate.title and gate.decider_role.value == "program_manager"
    assert _republished(engine, clock) == {inst.insurance_code}
    decide_gate(engine, gate.id or 0, approve=gate.items, user_name="manager", clock=clock)

    assert [c.state for c in _cases(engine)] == [LadderState.SIGN_REMOVED]
    assert _republished(engine, clock) == set()  # off the list at its next republication …
    with Session(engine) as session:  # … but still running: contracts and payments go on
        assert session.execute(select(Application.state)).scalar_one() == ApplicationState.RUNNING
        keys = [n.idempotency_key for n in session.execute(select(Notice).where(
            col(Notice.kind) == "enforcement_notice").order_by(col(Notice.id))).scalars()]
    case_id = _cases(engine)[0].id
    assert keys == [f"enforcement:{case_id}:{s}" for s in ("interview", "rectification", "sign_removal")]
    before = table_counts(engine)
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert table_counts(engine) == before

    with transaction(engine) as session:  # the pharmacy now carries enough drugs: the pass closes the violation
        session.execute(update(Violation).where(col(Violation.id) == violation)
                        .values(state=ViolationState.CLOSED, closed_on=date(2025, 12, 29)))
    clock.set(shanghai(2025, 12, 29, 9))
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert [c.state for c in _cases(engine)] == [LadderState.CURED]
    assert _republished(engine, clock) == {inst.insurance_code}  # the sign is back


def test_several_violations_of_one_matter_feed_one_ladder(engine: Engine, pharmacy: dict[str, Any]) -> None:
    program, inst, clock = pharmacy["program"], pharmacy["inst"], pharmacy["clock"]
    for drug in ("XA01", "XA02", "XA03"):  # three drugs sold above the committed price
        _violation(engine, program, ViolationRule.SALE_PRICE, SubjectType.INSTITUTION, inst.id or 0, clock,
                   object_key=drug, district="兴庆区")
    reconcile_enforcement(engine, SLUG, clock=clock)
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert len(_cases(engine)) == 1 and len(_open_gates(engine)) == 1
    (gate,) = _open_gates(engine)
    decide_gate(engine, gate.id or 0, reject=gate.items, reason="已当面核实，属系统录入差错",
                user_name=pharmacy["reviewer"], clock=clock)
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert [c.state for c in _cases(engine)] == [LadderState.DROPPED]  # the siblings do not ask again
    assert _open_gates(engine) == []


def test_rules_without_a_prescribed_measure_open_no_ladder_and_a_late_price_report_starts_at_disqualification(
        engine: Engine, pharmacy: dict[str, Any]) -> None:
    program, inst, clock = pharmacy["program"], pharmacy["inst"], pharmacy["clock"]
    enterprise = make_enterprise(engine, "迟报制药有限公司")
    _violation(engine, program, ViolationRule.PRICE_ALERT_BLUE, SubjectType.INSTITUTION, inst.id or 0, clock)
    _violation(engine, program, ViolationRule.LATE_PAYMENT, SubjectType.INSTITUTION, inst.id or 0, clock)
    _violation(engine, program, ViolationRule.LATE_PRICE_REPORT, SubjectType.ENTERPRISE, enterprise.id or 0, clock,
               object_key="2025-10-24")
    reconcile_enforcement(engine, SLUG, clock=clock)
    (case,) = _cases(engine)
    assert case.subject_type == SubjectType.ENTERPRISE and case.state == LadderState.DISQUALIFICATION_DUE
    (gate,) = _open_gates(engine)
    assert "取消" in gate.title and gate.decider_role.value == "program_manager"


def test_a_ladder_started_by_hand_on_a_matter_already_climbing_is_refused(engine: Engine,
                                                                        pharmacy: dict[str, Any]) -> None:
    from tasks.enforcement.manual import StartRefused, start_ladder

    program, inst, clock = pharmacy["program"], pharmacy["inst"], pharmacy["clock"]
    first = _violation(engine, program, ViolationRule.SALE_PRICE, SubjectType.INSTITUTION, inst.id or 0, clock,
                       object_key="XA01", district="兴庆区")
    sibling = _violation(engine, program, ViolationRule.SALE_PRICE, SubjectType.INSTITUTION, inst.id or 0, clock,
                         object_key="XA02", district="兴庆区")
    reconcile_enforcement(engine, SLUG, clock=clock)
    assert [c.violation_id for c in _cases(engine)] == [first]
    for cited in (first, sibling):
        with pytest.raises(StartRefused, match="已有"):
            start_ladder(engine, SLUG, user_name="manager", clock=clock, reason=None, violation_id=cited)
    assert len(_cases(engine)) == 1 and len(_open_gates(engine)) == 1


def test_an_enterprise_disqualified_by_two_ladders_is_disqualified_once_and_a_second_bad_record_extends_its_bar(
        engine: Engine, pharmacy: dict[str, Any]) -> None:
    from models.audit import AuditEvent
    from models.catalog import Enterprise

    program, clock = pharmacy["program"], pharmacy["clock"]
    enterprise = make_enterprise(engine, "屡犯制药有限公司")
    _violation(engine, program, ViolationRule.LATE_PRICE_REPORT, SubjectType.ENTERPRISE, enterprise.id or 0, clock,
               object_key="2025-10-24")
    _violation(engine, program, ViolationRule.DELIVERY_PATTERN, SubjectType.ENTERPRISE, enterprise.id or 0, clock,
               object_key="2025Q4")
    reconcile_enforcement(engine, SLUG, clock=clock)
    for _ in ("interview", "rectification"):  # the delivery ladder climbs; the price-report one waits at its gate
        gate = next(g for g in _open_gates(engine) if "取消" not in g.title)
        decide_gate(engine, gate.id or 0, approve=gate.items, user_name="manager", clock=clock)
        reconcile_enforcement(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 12, 22, 9))
    reconcile_enforcement(engine, SLUG, clock=clock)
    first, second = _open_gates(engine)
    assert "取消" in first.title and "取消" in second.title
    decide_gate(engine, first.id or 0, approve=first.items, user_name="manager", clock=clock,
                options={"bad_record": True})
    clock.set(shanghai(2026, 1, 5, 9))
    decide_gate(engine, second.id or 0, approve=second.items, user_name="manager", clock=clock,
                options={"bad_record": True})
    assert [c.state for c in _cases(engine)] == [LadderState.DISQUALIFIED] * 2
    with Session(engine) as session:
        ent = session.get(Enterprise, enterprise.id)
        assert ent is not None and ent.barred_until == date(2028, 1, 4)  # the later bar wins
        disqualified = session.execute(select(AuditEvent).where(col(AuditEvent.entity) == "enterprise",
                                                                col(AuditEvent.action) == "disqualify")).all()
        assert len(disqualified) == 1


def test_shenyangs_seed_prescribes_nothing_for_too_few_drugs_so_no_ladder_opens_there(engine: Engine) -> None:
    program = make_program(engine, "shenyang-2025")
    make_reviewers(engine, ["和平区"])
    inst = make_institution(engine, district="和平区")
    make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))
    clock = clock_at(2025, 12, 1, 9)
    _violation(engine, program, ViolationRule.TOO_FEW_DRUGS, SubjectType.INSTITUTION, inst.id or 0, clock,
               district="和平区")
    assert reconcile_enforcement(engine, "shenyang-2025", clock=clock).opened == 0
    assert _cases(engine) == [] and _open_gates(engine) == []
