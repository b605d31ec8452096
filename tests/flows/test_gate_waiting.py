"""Durable waiting: a decision from another process wakes the waiting run; a killed run loses nothing."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core.clock_store import DatabaseClock
from flows.enrollment import enrollment_flow
from models.audit import AuditEvent
from models.enrollment import Batch, Gate, Review
from models.gate_decisions import decided_ids
from models.outbox import Notice
from models.states import ApplicationState, GateKind, GateState, InstitutionKind
from models.tables import Application
from tasks.gates.deciding import decide_gate
from tasks.phases.enrollment import reconcile_enrollment
from tests.factories import make_applications, make_institution, make_program, make_reviewers, shanghai

pytestmark = pytest.mark.prefect
SLUG = "shenyang-2025"
SANJIN = str(Path(sys.executable).parent / "sanjin")


def _env(database_url: str, prefect_api: str) -> dict[str, str]:
    return {**os.environ, "SANJIN_DATABASE_URL": database_url, "PREFECT_API_URL": prefect_api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}


def _wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _open_gate(engine: Engine, kind: GateKind, with_run: bool = True) -> Gate | None:
    with Session(engine) as session:
        query = select(Gate).where(Gate.kind == kind, Gate.state == GateState.OPEN)
        if with_run:
            query = query.where(Gate.flow_run_id.is_not(None))  # type: ignore[union-attr]
        return session.execute(query).scalars().first()


def _run_state(run_id: str) -> str | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
        return state.type.value if state else None


@pytest.fixture
def declared_batch(engine: Engine) -> dict[str, Any]:
    """Three applications in 和平区, their batch declared and the district gate open."""
    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区"])
    insts = [make_institution(engine, district="和平区", kind=InstitutionKind.CHAIN_PHARMACY) for _ in range(3)]
    make_applications(engine, program, insts, submitted_at=shanghai(2025, 9, 12, 10))
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 9, 12, 12))
    reconcile_enrollment(engine, SLUG, clock=clock)
    clock.set(shanghai(2025, 9, 20, 9))
    reconcile_enrollment(engine, SLUG, clock=clock)
    return {"reviewer": reviewers["和平区"], "clock": clock}


def _decide_in_subprocess(gate: Gate, user: str, env: dict[str, str]) -> str:
    done = subprocess.run([SANJIN, "gate", "decide", str(gate.id), "--approve-rest", "--as", user],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_gate_decided_from_a_second_process_resumes_the_waiting_flow(
        engine: Engine, database_url: str, prefect_api: str, declared_batch: dict[str, Any]) -> None:
    outcome: dict[str, Any] = {}

    def waiting_run() -> None:
        outcome["result"] = asyncio.run(enrollment_flow(SLUG, wait=True, poll_seconds=1))

    context = contextvars.copy_context()  # the harness's settings live in context variables
    thread = threading.Thread(target=context.run, args=(waiting_run,), daemon=True)
    thread.start()
    env = _env(database_url, prefect_api)

    district = _wait_for(lambda: _open_gate(engine, GateKind.DISTRICT_REVIEW), what="the run to wait")
    _wait_for(lambda: _run_state(district.flow_run_id) == "PAUSED", what="the run to pause")
    out = _decide_in_subprocess(district, declared_batch["reviewer"], env)
    assert "resumed" in out

    city = _wait_for(lambda: _open_gate(engine, GateKind.CITY_REVIEW), what="the city gate")
    assert city.flow_run_id == district.flow_run_id  # the same run, woken and waiting again
    _wait_for(lambda: _run_state(city.flow_run_id) == "PAUSED", what="the run to pause again")
    _decide_in_subprocess(city, "manager", env)

    thread.join(timeout=90)
    assert not thread.is_alive(), "the waiting flow did not finish after both decisions"
    assert outcome["result"]["running"] == [1]
    assert _run_state(city.flow_run_id) == "COMPLETED"


def test_killing_the_waiting_process_loses_nothing_and_the_next_run_repeats_nothing(
        engine: Engine, database_url: str, prefect_api: str, declared_batch: dict[str, Any]) -> None:
    env = _env(database_url, prefect_api)
    waiting = subprocess.Popen([SANJIN, "run", SLUG, "--phase", "enrollment", "--wait"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        district = _wait_for(lambda: _open_gate(engine, GateKind.DISTRICT_REVIEW), what="the run to wait")
        _wait_for(lambda: _run_state(district.flow_run_id) == "PAUSED", what="the run to pause")
    finally:
        os.killpg(waiting.pid, signal.SIGKILL)
        waiting.wait(timeout=30)

    clock = declared_batch["clock"]
    decide_gate(engine, district.id, approve=district.items, user_name=declared_batch["reviewer"], clock=clock)
    asyncio.run(enrollment_flow(SLUG))  # a new run finds the decision in the database and carries on
    city = _open_gate(engine, GateKind.CITY_REVIEW, with_run=False)
    assert city is not None
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    asyncio.run(enrollment_flow(SLUG))
    asyncio.run(enrollment_flow(SLUG))

    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Batch)).scalar_one() == 1
        states = session.execute(select(Application.state)).scalars().all()
        assert states == [ApplicationState.RUNNING] * 3
        assert session.execute(select(func.count()).select_from(Review)).scalar_one() == 6  # 3 × 2 levels
        approvals = session.execute(select(func.count()).where(AuditEvent.action == "district_approve")).scalar_one()
        assert approvals == 3
        keys = session.execute(select(Notice.idempotency_key)).scalars().all()
        assert len(keys) == len(set(keys)) and sum(k.startswith("batch_published") for k in keys) == 3


def test_a_decision_given_in_prefects_form_is_recorded_by_the_flow_with_its_decider(
        engine: Engine, database_url: str, prefect_api: str, declared_batch: dict[str, Any]) -> None:
    from prefect.flow_runs import resume_flow_run

    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, daemon=True, args=(
        lambda: outcome.update(result=asyncio.run(enrollment_flow(SLUG, wait=True, poll_seconds=1))),))
    thread.start()
    district = _wait_for(lambda: _open_gate(engine, GateKind.DISTRICT_REVIEW), what="the run to wait")
    _wait_for(lambda: _run_state(district.flow_run_id) == "PAUSED", what="the run to pause")
    # What Prefect's UI sends when a person fills the form: the decision is not yet in our database.
    resume_flow_run(district.flow_run_id, run_input={  # type: ignore[arg-type]
        "gate_id": district.id, "approve": district.items[1:], "reject": district.items[:1],
        "reason": "经营场所与申报地址不符", "decided_by": declared_batch["reviewer"]})
    city = _wait_for(lambda: _open_gate(engine, GateKind.CITY_REVIEW), what="the city gate")
    with Session(engine) as session:
        decided = session.get(Gate, district.id)
        assert decided is not None and decided.state == GateState.DECIDED
        assert decided.decided_by == declared_batch["reviewer"]
        assert session.get(Application, district.items[0]).state == ApplicationState.REJECTED  # type: ignore[union-attr]
    assert city.items == district.items[1:]
    _wait_for(lambda: _run_state(city.flow_run_id) == "PAUSED", what="the run to pause again")
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=declared_batch["clock"])
    from flows.resume import resume_waiting_run
    from tasks.gates.rows import DecisionResult

    resume_waiting_run(DecisionResult(city.id, GateState.DECIDED, city.items, [], [], city.flow_run_id), "manager")
    thread.join(timeout=90)
    assert outcome["result"]["running"] == [1]


def test_a_district_reviewer_giving_another_districts_decision_in_the_form_changes_nothing(
        engine: Engine, database_url: str, prefect_api: str, declared_batch: dict[str, Any]) -> None:
    from prefect.flow_runs import resume_flow_run

    from models.states import Role
    from tasks.users import add_user

    add_user(engine, "outsider", Role.DISTRICT_REVIEWER, districts=["沈河区"])
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, daemon=True, args=(
        lambda: asyncio.run(enrollment_flow(SLUG, wait=True, poll_seconds=1, rearm_seconds=60)),))
    thread.start()
    district = _wait_for(lambda: _open_gate(engine, GateKind.DISTRICT_REVIEW), what="the run to wait")
    _wait_for(lambda: _run_state(district.flow_run_id) == "PAUSED", what="the run to pause")
    resume_flow_run(district.flow_run_id, run_input={  # type: ignore[arg-type]
        "gate_id": district.id, "approve": district.items, "decided_by": "outsider"})
    time.sleep(1.5)
    _wait_for(lambda: _run_state(district.flow_run_id) == "PAUSED", what="the run to wait again")
    with Session(engine) as session:
        gate = session.get(Gate, district.id)
        assert gate is not None and gate.state == GateState.OPEN and decided_ids(gate.decision) == set()
    from flows.resume import resume_waiting_run

    result = decide_gate(engine, district.id, approve=district.items, user_name=declared_batch["reviewer"],
                         clock=declared_batch["clock"])
    assert "resumed" in resume_waiting_run(result, declared_batch["reviewer"])
    # Let the run finish rather than leave it paused in a thread past the end of the test.
    city = _wait_for(lambda: _open_gate(engine, GateKind.CITY_REVIEW), what="the city gate")
    _wait_for(lambda: _run_state(city.flow_run_id) == "PAUSED", what="the run to pause at the city gate")
    result = decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=declared_batch["clock"])
    resume_waiting_run(result, "manager")
    thread.join(timeout=90)
    assert not thread.is_alive()


def test_a_decision_given_the_moment_the_run_pauses_still_wakes_it(
        engine: Engine, database_url: str, prefect_api: str, declared_batch: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect marks the run PAUSED before it saves the form it waits for; a resume in between is refused
    ("Run input schema not found") and the run used to sleep until its re-arm interval."""
    from flows.gate_input import GateDecisionInput
    from flows.resume import resume_waiting_run

    saving_started = threading.Event()
    original_asave = GateDecisionInput.asave.__func__  # type: ignore[attr-defined]

    async def slow_asave(cls: type[GateDecisionInput], keyset: Any, *args: Any, **kwargs: Any) -> None:
        saving_started.set()
        await asyncio.sleep(1.5)  # widen the real window so the decision lands inside it every time
        await original_asave(cls, keyset, *args, **kwargs)

    monkeypatch.setattr(GateDecisionInput, "asave", classmethod(slow_asave))
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=contextvars.copy_context().run, daemon=True, args=(
        lambda: outcome.update(result=asyncio.run(enrollment_flow(SLUG, wait=True, poll_seconds=1,
                                                                  rearm_seconds=600))),))
    thread.start()
    assert saving_started.wait(timeout=60), "the run never paused"
    district = _open_gate(engine, GateKind.DISTRICT_REVIEW)
    assert district is not None and _run_state(district.flow_run_id) == "PAUSED"
    result = decide_gate(engine, district.id, approve=district.items, user_name=declared_batch["reviewer"],
                         clock=declared_batch["clock"])
    assert "resumed" in resume_waiting_run(result, declared_batch["reviewer"])
    _wait_for(lambda: _open_gate(engine, GateKind.CITY_REVIEW), timeout=20, what="the woken run to open the city gate")
    monkeypatch.undo()
    city = _open_gate(engine, GateKind.CITY_REVIEW)
    assert city is not None
    _wait_for(lambda: _run_state(city.flow_run_id) == "PAUSED", what="the run to pause at the city gate")
    result = decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=declared_batch["clock"])
    resume_waiting_run(result, "manager")
    thread.join(timeout=90)
    assert outcome["result"]["running"] == [1]
