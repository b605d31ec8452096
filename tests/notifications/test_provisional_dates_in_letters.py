"""Every provisional date a letter shows says 暂定 (issue #19's leftovers): the alliance invitation's answer date, the
dates of the weekly escalation list and an overdue payment's original due date. A provisional date rests on a year
whose holiday schedule is not yet official; stated as final, a recipient would plan on a day that may still move."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from models.operations import Payment, PlatformAccount
from models.outbox import Notice
from models.states import InstitutionKind, Role
from models.workdays import Deadline
from notifications.render import render_notice
from tasks.outbox.reminders import send_reminders
from tasks.outbox.send_notices import render_context
from tasks.phases import alliance
from tasks.phases.alliance import reconcile_alliance
from tasks.users import add_user
from tests.factories import clock_at, make_program
from tests.notifications.samples import sample
from tests.tasks.test_reminders import SLUG, _account, _notices, _payment, _running


def _letter(notice: Notice) -> tuple[str, str]:
    rendered = render_notice(notice.kind, render_context(notice, {}), strict=True)
    return rendered.text, rendered.html


@pytest.mark.parametrize(("kind", "flag"), [
    ("alliance_invitation", {"response_due_provisional": True}),
    ("payment_overdue", {"due_provisional": True}),
])
def test_a_provisional_date_is_marked_and_a_final_one_is_not(kind: str, flag: dict[str, Any]) -> None:
    final = render_notice(kind, sample(kind), strict=True)
    provisional = render_notice(kind, {**sample(kind), **flag}, strict=True)
    assert "暂定" not in final.text and "暂定" not in final.html
    assert "（暂定）" in provisional.text and "（暂定）" in provisional.html


def test_the_escalation_list_marks_each_provisional_date() -> None:
    context = sample("escalation")
    items = [dict(context["items"][0], due_provisional=True), context["items"][1]]
    rendered = render_notice("escalation", {**context, "items": items}, strict=True)
    assert rendered.text.count("（暂定）") == 1 and rendered.html.count("（暂定）") == 1
    assert "2025年11月28日（暂定）" in rendered.text


def test_the_alliance_invitation_says_its_answer_date_is_provisional_when_it_is(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    make_program(engine)
    real = alliance.working_days_for

    class Unofficial:
        """The program's calendar, but the year it counts through has no official schedule yet."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def deadline(self, start: date, n: int) -> Deadline:
            return self.inner.deadline(start, n)._replace(provisional=True)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    monkeypatch.setattr(alliance, "working_days_for", lambda db, defn: Unofficial(real(db, defn)))
    reconcile_alliance(engine, SLUG, clock=clock_at(2025, 8, 7, 10))
    invitations = _notices(engine, "alliance_invitation")
    assert invitations and all(n.context["response_due_provisional"] is True for n in invitations)
    text, html = _letter(invitations[0])
    assert "2025年8月14日（暂定）前" in text and "（暂定）" in html


def test_an_official_answer_date_is_stated_plainly(engine: Engine) -> None:
    make_program(engine)
    reconcile_alliance(engine, SLUG, clock=clock_at(2025, 8, 7, 10))
    invitations = _notices(engine, "alliance_invitation")
    assert invitations and all(n.context["response_due_provisional"] is False for n in invitations)
    assert "暂定" not in _letter(invitations[0])[0]


def test_reminders_carry_a_payments_and_an_accounts_provisional_due_date_into_the_letters(engine: Engine) -> None:
    program = make_program(engine)
    pharmacy = _running(engine, program, district="和平区", kind=InstitutionKind.CHAIN_PHARMACY)
    add_user(engine, "hp", Role.DISTRICT_REVIEWER, districts=["和平区"])
    payment = _payment(engine, program, pharmacy, "1000.00", date(2026, 12, 31))
    _account(engine, program, pharmacy, date(2027, 1, 8))
    with Session(engine) as session:  # 2027's holidays are not official yet: both dates are 暂定
        for row in (session.get(Payment, payment),
                    session.query(PlatformAccount).filter_by(institution_id=pharmacy.id).one()):
            assert row is not None
            row.due_on_provisional = True
            session.add(row)
        session.commit()
    send_reminders(engine, SLUG, clock=clock_at(2027, 1, 13, 8))
    (overdue,) = _notices(engine, "payment_overdue")
    assert overdue.context["due_provisional"] is True
    assert "2026年12月31日（暂定）前结清" in _letter(overdue)[0]
    (escalation,) = _notices(engine, "escalation")
    assert [i["due_provisional"] for i in escalation.context["items"]] == [True]
    text, html = _letter(escalation)
    assert "2027年1月8日（暂定）" in text and "（暂定）" in html


def test_the_managers_overdue_gate_list_marks_a_provisional_due_date() -> None:
    context = sample("gate_overdue")
    marked = {**context, "items": [dict(context["items"][0], due_provisional=True)]}
    assert "暂定" not in render_notice("gate_overdue", context, strict=True).text
    rendered = render_notice("gate_overdue", marked, strict=True)
    assert "2025年10月9日（暂定）" in rendered.text and "（暂定）" in rendered.html
