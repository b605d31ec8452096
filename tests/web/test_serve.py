"""`sanjin serve`: one command serves the pages and the flows; a decision on the page wakes the served run;
Ctrl-C (or SIGTERM) stops everything and leaves no process behind."""

from __future__ import annotations

import os
import signal
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from models.enrollment import Application, Gate
from models.states import ApplicationState, GateKind, GateState
from tests.web.conftest import SLUG, World, build_world
from tests.web.serving import csrf, flow_run_state, sanjin_serve, signed_in, trigger, wait_for

pytestmark = pytest.mark.prefect
EXPECTED = {f"{SLUG}-{suffix}" for suffix in ("daily", "publication", "drug-list-gates", "enrollment-gates",
                                              "continuous-review-gates", "reminders")}


def _deployments() -> dict[str, bool]:
    """Name → served (not paused, schedules active), of the deployments registered in the Prefect API."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import DeploymentSort

    async def read() -> list[Any]:
        async with get_client() as client:  # limit and sort given: this client's defaults (None) get a 422
            return list(await client.read_deployments(limit=200, sort=DeploymentSort.NAME_ASC))

    found = asyncio.run(read())
    return {d.name: not d.paused and any(s.active for s in d.schedules) for d in found if d.name.startswith(SLUG)}


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _refused(base: str) -> bool:
    try:
        httpx.get(f"{base}/login", timeout=2)
    except httpx.ConnectError:
        return True
    return False


@pytest.fixture
def world(sqlite_engine: Engine) -> World:
    return build_world(sqlite_engine)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_serve_answers_registers_every_deployment_and_stops_as_one(world: World, prefect_api: str, tmp_path: Path,
                                                                  how: str) -> None:
    with sanjin_serve(world.engine, prefect_api, tmp_path / "serve.log") as served:
        page = httpx.get(f"{served.base}/login")
        assert page.status_code == 200 and "登录" in page.text
        assert _deployments() == dict.fromkeys(EXPECTED, True)  # registered before the pages answer
        code = (served.stop(signal.SIGINT) if how == "ctrl-c"  # the terminal signals the whole group
                else served.stop(signal.SIGTERM, group=False))  # a supervisor signals the leader only
        assert code == 0, served.log_text()[-3000:]
        wait_for(lambda: _gone(served.proc.pid), timeout=20, what="every process of the group to exit")
        assert _refused(served.base)
        assert "Traceback" not in served.log_text(), served.log_text()[-3000:]
    assert _deployments() == dict.fromkeys(EXPECTED, False)  # nothing serves them now: paused


def test_ctrl_c_while_a_run_waits_on_a_gate_stops_the_run_too_and_the_decision_still_counts(
        world: World, prefect_api: str, tmp_path: Path) -> None:
    from tasks.gates.deciding import decide_gate
    from tasks.phases.enrollment import reconcile_enrollment

    with sanjin_serve(world.engine, prefect_api, tmp_path / "serve.log", "--program", SLUG) as served:
        run_id = trigger(f"institution-enrollment/{SLUG}-enrollment-gates")
        wait_for(lambda: len(_open_gates(world.engine, GateKind.DISTRICT_REVIEW)) == 2
                 and flow_run_state(run_id) == "PAUSED", timeout=120, what="the served run to wait")
        assert served.stop(signal.SIGINT) == 0, served.log_text()[-3000:]
        wait_for(lambda: _gone(served.proc.pid), timeout=30, what="the flow-run process to exit with the group")
    assert flow_run_state(run_id) not in ("RUNNING", "PAUSED", "SCHEDULED", "PENDING")
    # Nothing was lost: the gates are rows; decided now, the next run (here a plain reconcile) carries on.
    for gate in _open_gates(world.engine, GateKind.DISTRICT_REVIEW):
        decide_gate(world.engine, gate.id or 0, approve=gate.items, user_name=world.reviewers[gate.district or ""],
                    clock=world.clock)
    reconcile_enrollment(world.engine, SLUG, clock=world.clock)
    with Session(world.engine) as session:
        city = session.execute(select(Gate).where(col(Gate.kind) == GateKind.CITY_REVIEW)).scalars().all()
    assert len(city) == 1


def test_serve_refuses_a_taken_port_with_a_message(world: World, prefect_api: str, tmp_path: Path) -> None:
    import socket
    import subprocess

    from tests.web.serving import SANJIN, serve_env

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run([SANJIN, "serve", "--port", str(port)], env=serve_env(world.engine, prefect_api),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "端口" in done.stderr and "Traceback" not in done.stderr


def _open_gates(engine: Engine, kind: GateKind) -> list[Gate]:
    with Session(engine) as session:
        return list(session.execute(select(Gate).where(col(Gate.kind) == kind, col(Gate.state) == GateState.OPEN,
                                                       Gate.flow_run_id.is_not(None))).scalars())  # type: ignore[union-attr]


def test_a_decision_on_the_page_wakes_the_served_run_which_carries_the_batch_through(
        world: World, prefect_api: str, tmp_path: Path) -> None:
    with sanjin_serve(world.engine, prefect_api, tmp_path / "serve.log", "--program", SLUG) as served:
        run_id = trigger(f"institution-enrollment/{SLUG}-enrollment-gates")
        district = wait_for(lambda: len(_open_gates(world.engine, GateKind.DISTRICT_REVIEW)) == 2
                            and flow_run_state(run_id) == "PAUSED", timeout=120, what="the served run to wait")
        assert district
        for name, gate in ((world.reviewers[g.district or ""], g)
                           for g in _open_gates(world.engine, GateKind.DISTRICT_REVIEW)):
            with closing(signed_in(served.base, name)) as client:
                response = client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve",
                                                              "csrf_token": csrf(client, "/inbox")})
                assert response.status_code == 303
        # The run wakes, reconciles, opens the city gate and waits again: no reconcile from the test.
        (city,) = wait_for(lambda: _open_gates(world.engine, GateKind.CITY_REVIEW), timeout=120,
                           what="the run to open the city gate")
        assert city.flow_run_id == run_id
        with closing(signed_in(served.base, "manager")) as client:
            wait_for(lambda: flow_run_state(run_id) == "PAUSED", timeout=60, what="the run to wait on the city gate")
            response = client.post(f"/gates/{city.id}/decide", data={"bulk": "approve",
                                                                    "csrf_token": csrf(client, "/inbox")})
            assert response.status_code == 303
            flash = client.get(f"/gates/{city.id}").text.split('class="flash" role="status">')[-1][:300]
            assert "后续处理已自动继续" in flash, flash
            wait_for(lambda: flow_run_state(run_id) == "COMPLETED", timeout=120, what="the run to finish")
            with Session(world.engine) as session:
                running = session.execute(select(func.count()).where(
                    Application.state == ApplicationState.RUNNING)).scalar_one()  # type: ignore[arg-type]
            assert running == len(world.apps)
            overview = client.get(f"/programs/{SLUG}").text
            assert f'data-state="running">运行中：<b>{len(world.apps)}</b>' in overview
        assert served.stop() == 0, served.log_text()[-3000:]
