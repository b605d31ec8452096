"""The daily run checks the audit trail: a broken chain alerts the program's managers, once per break (issue #18)."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlmodel import Session, select

from models.clock import FixedClock
from models.outbox import Notice
from models.states import Role
from notifications.render import render_notice
from tasks.outbox.reminders import send_reminders
from tasks.outbox.send_notices import render_context
from tasks.trust.audit_check import verify_audit
from tasks.users import add_user
from tests.factories import make_program, shanghai

SLUG = "shenyang-2025"


def _alerts(engine: Engine) -> list[Notice]:
    with Session(engine) as session:
        return list(session.exec(select(Notice).where(Notice.kind == "audit_chain_broken")).all())


def test_an_edited_audit_row_alerts_each_manager_once_and_names_the_row(engine: Engine) -> None:
    program = make_program(engine)
    add_user(engine, "wang", Role.PROGRAM_MANAGER, display_name="王经理", email="wang@example.cn")
    add_user(engine, "li", Role.PROGRAM_MANAGER, display_name="李经理")
    clock = FixedClock(shanghai(2025, 10, 9, 8))
    assert send_reminders(engine, SLUG, clock=clock).due["audit_chain_broken"] == 0
    assert verify_audit(engine, SLUG).broken is None
    with engine.begin() as conn:  # someone with the database's password rewrites who loaded the program
        victim = int(conn.execute(text("SELECT min(id) FROM auditevent WHERE program_id = :p"),
                                  {"p": program.id}).scalar_one())
        conn.execute(text("UPDATE auditevent SET actor = 'nobody' WHERE id = :i"), {"i": victim})
    first = send_reminders(engine, SLUG, clock=clock)
    again = send_reminders(engine, SLUG, clock=FixedClock(shanghai(2025, 10, 10, 8)))
    assert first.enqueued["audit_chain_broken"] == 2 and again.enqueued["audit_chain_broken"] == 0
    alerts = _alerts(engine)
    assert sorted(a.recipient_name for a in alerts) == ["李经理", "王经理"]
    rendered = render_notice(alerts[0].kind, render_context(alerts[0], {program.id or 0: program.name}), strict=True)
    assert f"#{victim}" in rendered.text and "被改动" in rendered.text and "审计记录校验失败" in rendered.subject


def test_a_deleted_user_audit_row_is_a_break_of_every_program_check(engine: Engine) -> None:
    """Rows of no program (users, roles, the clock) are their own chain, checked with each program's."""
    make_program(engine)
    add_user(engine, "wang", Role.PROGRAM_MANAGER, display_name="王经理")
    add_user(engine, "zhao", Role.OBSERVER)
    with engine.begin() as conn:
        first = int(conn.execute(text("SELECT min(id) FROM auditevent WHERE program_id IS NULL")).scalar_one())
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": first})
    broken = verify_audit(engine, SLUG).broken
    assert broken is not None and broken.kind == "deleted" and broken.chain == 0
    send_reminders(engine, SLUG, clock=FixedClock(shanghai(2025, 10, 9, 8)))
    assert [a.recipient_name for a in _alerts(engine)] == ["王经理"]
