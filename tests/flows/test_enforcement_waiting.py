"""A waiting continuous-review run pauses on the enforcement ladder's gates too, and a decision given with
`sanjin enforcement decide` in another process wakes it like any other gate's."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from core.clock_store import DatabaseClock
from flows.continuous_review import continuous_review_flow
from models.enforcement import EnforcementCase, LadderState
from models.enrollment import Gate
from models.states import GateKind, GateState
from tests.factories import (
    make_delivery,
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_reviewers,
    make_running_application,
    shanghai,
)
from tests.flows.test_gate_waiting import SANJIN, SLUG, _env, _run_state, _wait_for

pytestmark = pytest.mark.prefect


def _enforcement_gate(engine: Engine, title_part: str) -> Gate | None:
    with Session(engine) as session:
        gates = session.execute(select(Gate).where(col(Gate.kind) == GateKind.ENFORCEMENT,
                                                   col(Gate.state) == GateState.OPEN,
                                                   col(Gate.flow_run_id).is_not(None))).scalars()
        return next((g for g in gates if title_part in g.title), None)


def _decide(gate: Gate, user: str, env: dict[str, str]) -> str:
    done = subprocess.run([SANJIN, "enforcement", "decide", str(gate.id), "--approve", "--as", user],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_waiting_review_pauses_on_an_enforcement_gate_and_the_cli_decision_wakes_it(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    program = make_program(engine, SLUG)
    reviewer = make_reviewers(engine, ["和平区"])["和平区"]
    pharmacy = make_institution(engine, district="和平区")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 9, 30, 9))
    order = make_order(engine, program, pharmacy, make_product(engine, make_enterprise(engine)),
                       ordered_at=shanghai(2025, 10, 14, 9))
    make_delivery(engine, order, arrived_at=shanghai(2025, 10, 15, 9), accepted_on=date(2025, 10, 15))
    DatabaseClock(engine).set(shanghai(2026, 2, 2, 9))  # unpaid for more than two months past its due date

    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=contextvars.copy_context().run, daemon=True, args=(
        lambda: outcome.update(result=asyncio.run(continuous_review_flow(
            SLUG, artifact=False, wait=True, poll_seconds=1, rearm_seconds=600))),))
    thread.start()
    env = _env(database_url, prefect_api)

    interview = _wait_for(lambda: _enforcement_gate(engine, "约谈"), timeout=120, what="the run to wait on 约谈")
    run_id = interview.flow_run_id
    _wait_for(lambda: _run_state(run_id) == "PAUSED", what="the run to pause")
    assert "resumed" in _decide(interview, reviewer, env)

    rectification = _wait_for(lambda: _enforcement_gate(engine, "限期整改"), timeout=120, what="the next rung")
    assert rectification.flow_run_id == run_id  # the same run, woken and waiting again
    _wait_for(lambda: _run_state(run_id) == "PAUSED", what="the run to pause again")
    assert "resumed" in _decide(rectification, reviewer, env)

    thread.join(timeout=120)
    assert not thread.is_alive(), "the waiting run did not finish once nobody had anything left to decide"
    assert outcome["result"]["enforcement_open_gates"] == []
    with Session(engine) as session:
        assert session.execute(select(EnforcementCase.state)).scalar_one() == LadderState.RECTIFYING
