"""`sanjin deploy`'s deployments: the same flows as `serve`, on a work pool, with no secret and no build path stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.utilities.importtools import import_object

from core.settings import Settings
from deploy.deployments import TIMEZONE, build_deployments
from deploy.pooled import DeployError, build_pool_deployments

PROGRAMS = ["shenyang-2025", "jiangxi-2025"]


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(home=tmp_path / "home", maildir=tmp_path / "maildir", **values)  # type: ignore[arg-type]


def test_every_pooled_deployment_is_a_served_one_under_a_name_serve_never_uses(tmp_path: Path) -> None:
    served = build_deployments(PROGRAMS)
    pooled = build_pool_deployments(PROGRAMS, "province", _settings(tmp_path)).deployments
    assert sorted((d.flow_name, d.parameters["program"]) for d in pooled) == sorted(
        (d.flow_name, d.parameters["program"]) for d in served)
    assert {d.name for d in pooled}.isdisjoint({d.name for d in served})
    assert {d.name.rsplit("@", 1)[0] for d in pooled} == {d.name for d in served}


def test_pooled_code_comes_from_the_installed_package_not_a_path_of_this_machine(tmp_path: Path) -> None:
    for deployment in build_pool_deployments(PROGRAMS, "province", _settings(tmp_path)).deployments:
        assert import_object(deployment.entrypoint).name == deployment.flow_name  # `flows.enrollment.enrollment_flow`
        assert "/" not in deployment.entrypoint and deployment._path is None and deployment.storage is None
        assert str(Path.cwd()) not in json.dumps(deployment.job_variables)


def test_a_worker_starts_the_engine_directly_with_its_own_python_unless_told_otherwise(tmp_path: Path) -> None:
    """No workspace supervisor (a second interpreter per run, seconds of the decision → running time): nothing to
    pull. The command names `python`, whichever the worker's PATH finds, never this machine's interpreter."""
    (direct, *_) = build_pool_deployments(["shenyang-2025"], "province", _settings(tmp_path)).deployments
    assert direct.job_variables["command"] == "python -m prefect.engine"
    (default, *_) = build_pool_deployments(["shenyang-2025"], "province", _settings(tmp_path),
                                           engine_command=None).deployments
    assert "command" not in default.job_variables


def test_pooled_runs_keep_bureau_time_and_queue_per_program(tmp_path: Path) -> None:
    for deployment in build_pool_deployments(PROGRAMS, "province", _settings(tmp_path)).deployments:
        assert all(s.schedule.timezone == TIMEZONE for s in deployment.schedules)
        assert deployment.work_pool_name == "province"
        assert deployment.work_queue_name == deployment.parameters["program"]


def test_no_secret_is_stored_in_a_deployment(tmp_path: Path) -> None:
    settings = _settings(tmp_path, smtp_password="s3cret-smtp", smtp_username="mailer",
                         database_url="postgresql+psycopg://sanjin:s3cret-db@db.example:5432/sanjin")
    for deployment in build_pool_deployments(PROGRAMS, "province", settings).deployments:
        stored = json.dumps(deployment.job_variables)
        assert "s3cret" not in stored and "SANJIN_DATABASE_URL" not in stored
        env = deployment.job_variables["env"]
        assert env["SANJIN_HOME"] == str((tmp_path / "home").resolve()) and env["SANJIN_SMTP_USERNAME"] == "mailer"


def test_a_database_url_without_a_password_is_passed_to_the_workers(tmp_path: Path) -> None:
    settings = _settings(tmp_path, database_url="postgresql+psycopg://sanjin@db.example:5432/sanjin")
    (deployment, *_) = build_pool_deployments(["shenyang-2025"], "province", settings).deployments
    assert deployment.job_variables["env"]["SANJIN_DATABASE_URL"] == "postgresql+psycopg://sanjin@db.example:5432/sanjin"


def test_only_what_was_configured_is_stored_so_a_workers_own_setting_wins(tmp_path: Path) -> None:
    (deployment, *_) = build_pool_deployments(["shenyang-2025"], "province", _settings(tmp_path)).deployments
    assert "SANJIN_SMTP_HOST" not in deployment.job_variables["env"]  # the default was not configured here


def test_a_relative_home_or_no_database_at_all_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="绝对路径"):
        build_pool_deployments(PROGRAMS, "province", Settings(home=Path("var")))
    with pytest.raises(DeployError, match="SANJIN_DATABASE_URL"):
        build_pool_deployments(PROGRAMS, "province", Settings())


@pytest.mark.parametrize("pool", ["Province", "a/b", "", "x" * 70])
def test_a_pool_name_that_would_break_deployment_names_is_refused(tmp_path: Path, pool: str) -> None:
    with pytest.raises(DeployError, match="工作池"):
        build_pool_deployments(PROGRAMS, pool, _settings(tmp_path))


def test_a_pooled_run_lost_with_its_machine_is_noticed_by_its_silence_and_replaced() -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from prefect.server.events.schemas.automations import EventTrigger as ServerEventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    from deploy.pooled import HEARTBEAT_SECONDS, MISSED_HEARTBEATS, crash_recovery_automation

    automation = crash_recovery_automation("province")
    trigger = automation.trigger
    assert trigger.posture.value == "Proactive" and trigger.within.total_seconds() == HEARTBEAT_SECONDS * MISSED_HEARTBEATS
    assert {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"} <= trigger.expect  # waiting is not being lost
    assert [a.type for a in automation.actions] == ["change-flow-run-state", "run-deployment"]
    assert automation.actions[1].source == "inferred"  # the lost run's own deployment, with its own parameters
    server_trigger = ServerEventTrigger.model_validate(trigger.model_dump())  # as the server evaluates it
    heartbeat = ReceivedEvent(event="prefect.flow-run.heartbeat", occurred=datetime.now(UTC),
                              resource={"prefect.resource.id": "prefect.flow-run.1"},
                              related=[{"prefect.resource.id": "prefect.tag.pool:province",
                                        "prefect.resource.role": "tag"}], id=uuid4())
    served = heartbeat.model_copy(update={"related": []})  # a run of `sanjin serve`: not the pool's business
    assert server_trigger.covers(heartbeat) and not server_trigger.covers(served)


def test_pooled_runs_send_heartbeats_the_recovery_can_count_on(tmp_path: Path) -> None:
    from deploy.pooled import HEARTBEAT_SECONDS

    for deployment in build_pool_deployments(PROGRAMS, "province", _settings(tmp_path)).deployments:
        assert deployment.job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == str(HEARTBEAT_SECONDS)
        assert "pool:province" in deployment.tags
