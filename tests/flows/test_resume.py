"""What a decision says about the waiting run is what happened: a run that is gone is replaced, never "resumed"."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from flows.resume import resume_waiting_run
from models.states import GateState
from tasks.gates.rows import DecisionResult

pytestmark = pytest.mark.prefect


def _run_of_a_deployment(prefect_api: str, state: Any) -> tuple[UUID, UUID]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("institution-enrollment")
        deployment_id = client.create_deployment(flow_id=flow_id, name=f"gates-{uuid4().hex[:8]}",
                                                 parameters={"program": "shenyang-2025", "wait": True})
        run = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(run.id, state, force=True)
    return deployment_id, run.id


def _runs_of(deployment_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _decided(run_id: UUID | str) -> DecisionResult:
    return DecisionResult(7, GateState.DECIDED, [1, 2], [], [], str(run_id))


def test_a_decision_for_a_crashed_waiting_run_starts_a_new_run_of_its_deployment_once(prefect_api: str) -> None:
    from prefect.states import Crashed

    deployment_id, run_id = _run_of_a_deployment(prefect_api, Crashed(message="worker lost"))
    first = resume_waiting_run(_decided(run_id), "manager")
    second = resume_waiting_run(_decided(run_id), "manager")  # the reviewer clicks again: still one new run
    assert "decision recorded" in first and "started run" in first and "resumed" not in first
    runs = _runs_of(deployment_id)
    assert len(runs) == 2 and second == first
    (new,) = [r for r in runs if r.id != run_id]
    assert new.parameters == {"program": "shenyang-2025", "wait": True} and new.state.is_scheduled()


def test_a_run_still_running_after_the_patience_gets_a_run_beside_it(prefect_api: str) -> None:
    from prefect.states import Running

    deployment_id, run_id = _run_of_a_deployment(prefect_api, Running())
    message = resume_waiting_run(_decided(run_id), "manager", patience_seconds=0.3)
    assert "started run" in message and "resumed" not in message
    assert len(_runs_of(deployment_id)) == 2


def test_a_run_about_to_start_is_left_to_read_the_decision(prefect_api: str) -> None:
    from prefect.states import Scheduled

    deployment_id, run_id = _run_of_a_deployment(prefect_api, Scheduled())
    assert "about to start" in resume_waiting_run(_decided(run_id), "manager")
    assert len(_runs_of(deployment_id)) == 1


def test_a_run_that_no_longer_exists_is_not_claimed_resumed(prefect_api: str) -> None:
    message = resume_waiting_run(_decided(uuid4()), "manager")
    assert "no longer exists" in message and "resumed" not in message
