"""Gates nobody can forget: whoever may decide an open gate is reminded before and on its due date, once per
stage; past it, the program manager is told every day until someone decides (issue 19)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from models.enrollment import Gate
from models.gate_deadlines import EXPIRY_RULES, OnExpiry, ReminderStage, reminder_stage
from models.outbox import Notice
from models.program import Program, User
from models.states import GateKind, GateState, Role
from models.workdays import fixed_deadline
from notifications.render import render_notice
from tasks.gates.rows import GateSpec, open_gates
from tasks.outbox.reminders import send_reminders
from tasks.outbox.send_notices import render_context
from tasks.users import add_user
from tests.factories import clock_at, make_program

SLUG = "shenyang-2025"
DUE = date(2025, 10, 20)  # a Monday; 2 working days before it is Thursday 10-16


def _gate(engine: Engine, program: Program, *, kind: GateKind = GateKind.DISTRICT_REVIEW,
          district: str | None = "康平县", role: Role = Role.DISTRICT_REVIEWER, key: str = "kp") -> int:
    with Session(engine) as session:
        open_gates(session, [GateSpec(natural_key=key, program_id=program.id or 0, phase="enrollment", kind=kind,
                                      title=f"第3批 {district or '市级'} 医药机构申请初审", subject_type="batch",
                                      subject_id=None, items=[1, 2, 3], decider_role=role, district=district,
                                      due=fixed_deadline(DUE))], clock_at(2025, 10, 9, 9))
        session.commit()
        return int(session.exec(select(Gate.id).where(Gate.natural_key == key)).one() or 0)


def _people(engine: Engine) -> None:
    add_user(engine, "kangping", Role.DISTRICT_REVIEWER, districts=["康平县"], email="kp@example.cn")
    add_user(engine, "heping", Role.DISTRICT_REVIEWER, districts=["和平区"], email="hp@example.cn")
    add_user(engine, "manager", Role.PROGRAM_MANAGER, email="pm@example.cn")


def _letters(engine: Engine, kind: str) -> list[tuple[str, str]]:
    """(recipient login name, idempotency key without its recipient id) of every notice of `kind`."""
    with Session(engine) as session:
        names = {u.id: u.name for u in session.exec(select(User)).all()}
        notices = session.exec(select(Notice).where(Notice.kind == kind).order_by(Notice.id)).all()  # type: ignore[arg-type]
        return [(names[n.recipient_id], n.idempotency_key.rsplit(":", 1)[0]) for n in notices]


def _remind(engine: Engine, *day: int) -> None:
    send_reminders(engine, SLUG, clock=clock_at(*day, 8, 30))


def test_reminder_stages_follow_the_due_date() -> None:
    assert reminder_stage(date(2025, 10, 15), DUE, 3, before=2) is None
    assert reminder_stage(date(2025, 10, 16), DUE, 2, before=2) is ReminderStage.BEFORE
    assert reminder_stage(DUE, DUE, 0, before=2) is ReminderStage.DUE
    assert reminder_stage(date(2025, 10, 21), DUE, -1, before=2) is ReminderStage.OVERDUE


def test_every_gate_kind_has_an_expiry_rule() -> None:
    assert set(EXPIRY_RULES) == set(GateKind)
    assert EXPIRY_RULES[GateKind.DISTRICT_REVIEW] is OnExpiry.CARRY_OVER
    assert EXPIRY_RULES[GateKind.LIST_APPROVAL] is OnExpiry.ESCALATE


def test_a_district_gate_is_reminded_to_its_own_reviewer_once_per_stage(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    _people(engine)
    gate_id = _gate(engine, program)

    _remind(engine, 2025, 10, 15)  # three working days before: too early
    assert _letters(engine, "gate_waiting") == []

    _remind(engine, 2025, 10, 16)
    _remind(engine, 2025, 10, 16)  # the same day again
    _remind(engine, 2025, 10, 17)  # one working day before: still the same stage
    assert _letters(engine, "gate_waiting") == [("kangping", f"gate_waiting:{gate_id}:before:{DUE}")]

    _remind(engine, 2025, 10, 20)
    _remind(engine, 2025, 10, 20)
    assert _letters(engine, "gate_waiting")[1:] == [("kangping", f"gate_waiting:{gate_id}:due:{DUE}")]
    assert _letters(engine, "gate_overdue") == []  # nobody is escalated on the due date


def test_an_overdue_gate_is_escalated_to_the_manager_every_day_until_decided(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    _people(engine)
    gate_id = _gate(engine, program)

    _remind(engine, 2025, 10, 21)
    _remind(engine, 2025, 10, 21)
    _remind(engine, 2025, 10, 22)
    assert [r for r, _ in _letters(engine, "gate_overdue")] == ["manager", "manager"]

    with Session(engine) as session:
        notice = session.exec(select(Notice).where(Notice.kind == "gate_overdue")).first()
        assert notice is not None
        text = render_notice("gate_overdue", render_context(notice, {program.id or 0: program.name})).text
    assert "第3批 康平县 医药机构申请初审" in text and "kangping" in text and "已逾期1天" in text

    with Session(engine) as session:  # decided (what tasks/gates/deciding.py leaves behind)
        session.execute(update(Gate).where(Gate.id == gate_id).values(state=GateState.DECIDED))  # type: ignore[arg-type]
        session.commit()
    _remind(engine, 2025, 10, 23)
    assert len(_letters(engine, "gate_overdue")) == 2  # decided: no more escalation


def test_a_gate_the_manager_decides_reminds_the_manager(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    _people(engine)
    _gate(engine, program, kind=GateKind.LIST_APPROVAL, district=None, role=Role.PROGRAM_MANAGER, key="list")
    _remind(engine, 2025, 10, 16)
    assert [r for r, _ in _letters(engine, "gate_waiting")] == ["manager"]


def test_a_district_without_a_reviewer_is_named_in_the_report_and_escalated(engine: Engine) -> None:
    program = make_program(engine, SLUG)
    add_user(engine, "manager", Role.PROGRAM_MANAGER, email="pm@example.cn")
    _gate(engine, program)
    report = send_reminders(engine, SLUG, clock=clock_at(2025, 10, 21, 8, 30))
    assert report.gates_without_decider == ["第3批 康平县 医药机构申请初审"]
    assert report.enqueued["gate_overdue"] == 1
