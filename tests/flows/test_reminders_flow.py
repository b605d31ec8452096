"""The reminder flow under Prefect's test harness: each due notice reaches the maildir once, however often it runs."""

from __future__ import annotations

import asyncio
import mailbox
from datetime import date
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.clock_store import DatabaseClock
from core.settings import get_settings
from deploy.schedules import REMINDER_CRON, reminder_schedule
from flows.reminders import reminders_flow
from models.operations import PlatformAccount
from models.states import AccountState, InstitutionKind
from tests.factories import make_institution, make_program, make_running_application, shanghai

SLUG = "shenyang-2025"


def _subjects(maildir: Path) -> list[str]:
    box = mailbox.Maildir(maildir, create=False)
    return sorted(str(make_header(decode_header(message_from_bytes(m.as_bytes())["Subject"]))) for m in box)


@pytest.mark.prefect
def test_reminders_flow_sends_each_due_reminder_once_even_when_run_twice(
        engine: Engine, database_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    maildir = tmp_path / "maildir"
    monkeypatch.setenv("SANJIN_MAILER", "maildir")
    monkeypatch.setenv("SANJIN_MAILDIR", str(maildir))
    get_settings.cache_clear()
    program = make_program(engine, SLUG)
    with_mail = make_institution(engine, district="和平区", kind=InstitutionKind.CHAIN_PHARMACY, name="和平大药房")
    without_mail = make_institution(engine, district="沈河区", kind=InstitutionKind.PRIVATE_CLINIC, email=None)
    with Session(engine) as session:
        for inst in (with_mail, without_mail):
            make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 18))
            session.add(PlatformAccount(program_id=program.id or 0, institution_id=inst.id or 0,
                                        state=AccountState.PENDING, due_on=date(2025, 11, 30)))
        session.commit()
    DatabaseClock(engine).set(shanghai(2025, 11, 24, 8, 30))

    first = asyncio.run(reminders_flow(SLUG))
    second = asyncio.run(reminders_flow(SLUG))

    assert first["reminders"]["enqueued"]["account_reminder"] == 2
    assert first["notices"]["sent"] == 1  # the clinic without e-mail is kept as no_address, not sent
    assert second["reminders"]["enqueued"]["account_reminder"] == 0 and second["notices"]["sent"] == 0
    (subject,) = _subjects(maildir)
    assert "和平大药房" in subject and "账号注册" in subject


@pytest.mark.parametrize(("hhmm", "cron"), [("08:30", "30 8 * * *"), ("8:05", "5 8 * * *"), ("00:00", "0 0 * * *"),
                                            ("23:59", "59 23 * * *")])
def test_the_reminder_schedule_is_a_daily_cron_in_shanghai(hhmm: str, cron: str) -> None:
    assert reminder_schedule(hhmm) == {"cron": cron, "timezone": "Asia/Shanghai"}


@pytest.mark.parametrize("bad", ["24:00", "8:60", "0830", "30 8 * * *", "", "08:30:00", "八点半"])
def test_a_malformed_reminder_time_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        reminder_schedule(bad)


def test_the_default_reminder_cron_is_half_past_eight() -> None:
    assert REMINDER_CRON == "30 8 * * *" == reminder_schedule()["cron"]
