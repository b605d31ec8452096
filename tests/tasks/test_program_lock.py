"""One pass of a program at a time: every reconciler takes the program lock, on PostgreSQL and on SQLite.

Two workers (or a schedule and `sanjin run`) reconciling one program would both read "not there yet" and
both write it. A pass that finds the program held waits for the holder's transaction to end, and logs
that it waited; other programs go on. On SQLite the accounts and contracts passes used `FOR UPDATE`,
which SQLite ignores: they now take the same lock as the rest, SQLite's write lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from models.clock import FixedClock
from tasks.compliance.compliance_pass import run_compliance_pass
from tasks.enforcement.ladder import reconcile_enforcement
from tasks.outbox.reminders import send_reminders
from tasks.phases.alliance import reconcile_alliance
from tasks.phases.drug_list import reconcile_drug_list
from tasks.phases.enrollment import reconcile_enrollment
from tasks.platform.accounts import reconcile_accounts
from tasks.platform.contracts import reconcile_contracts
from tasks.programs import lock_program
from tests.factories import clock_at, make_program

SLUG = "shenyang-2025"
HELD_SECONDS = 2.0

PASSES: dict[str, Callable[[Engine, FixedClock], Any]] = {
    "alliance": lambda e, c: reconcile_alliance(e, SLUG, clock=c),
    "drug list": lambda e, c: reconcile_drug_list(e, SLUG, clock=c),
    "enrollment": lambda e, c: reconcile_enrollment(e, SLUG, clock=c),
    "enforcement": lambda e, c: reconcile_enforcement(e, SLUG, clock=c),
    "compliance": lambda e, c: run_compliance_pass(e, SLUG, clock=c),
    "reminders": lambda e, c: send_reminders(e, SLUG, clock=c),
    "accounts": lambda e, c: reconcile_accounts(e, SLUG, clock=c),
    "contracts": lambda e, c: reconcile_contracts(e, SLUG, clock=c),
}


@pytest.mark.parametrize("name", list(PASSES))
def test_a_pass_of_a_program_another_run_holds_waits_for_it_and_says_so(
        engine: Engine, name: str, caplog: pytest.LogCaptureFixture) -> None:
    program = make_program(engine, SLUG)
    assert program.id is not None
    clock = clock_at(2025, 10, 20, 9)
    PASSES[name](engine, clock)  # a first pass on its own: whatever it creates once is there
    outcome: dict[str, Any] = {}

    def second() -> None:
        started = time.monotonic()
        try:
            PASSES[name](engine, clock)
        except BaseException as exc:  # reported below
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    caplog.set_level(logging.WARNING, logger="tasks.programs")
    with Session(engine) as holder:  # the first run, mid-transaction: it holds the program
        lock_program(holder, program.id)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=HELD_SECONDS)
        assert thread.is_alive(), f"the {name} pass ran while another run held the program"
        holder.rollback()
    thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in outcome, outcome
    assert outcome["seconds"] >= HELD_SECONDS
    waited = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
    assert waited and f"program {SLUG}: waited" in waited[0], caplog.text
    if engine.dialect.name == "postgresql":  # said before the wait, too
        assert f"program {SLUG} is held by another run: waiting" in caplog.text


def test_a_pass_of_another_program_does_not_wait(engine: Engine) -> None:
    make_program(engine, SLUG)
    other = make_program(engine, "jiangxi-2025")
    assert other.id is not None
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer for the whole database: every program waits there")
    with Session(engine) as holder:
        lock_program(holder, other.id)
        started = time.monotonic()
        reconcile_enrollment(engine, SLUG, clock=clock_at(2025, 10, 20, 9))
        assert time.monotonic() - started < HELD_SECONDS
        holder.rollback()
