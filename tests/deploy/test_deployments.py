"""Every deployment resolves to a real flow with a Shanghai schedule (stale entrypoints are a classic failure)."""

from __future__ import annotations

import importlib

from deploy.deployments import DEPLOYMENT_SPECS, TIMEZONE, build_deployments


def test_every_deployment_entrypoint_imports_and_resolves_its_flow() -> None:
    deployments = build_deployments(["shenyang-2025", "ningxia-2025"])
    assert len(deployments) == 2 * (len(DEPLOYMENT_SPECS) + 1)  # + the daily reminders
    for deployment in deployments:
        path, _, name = deployment.entrypoint.partition(":")  # e.g. flows/drug_list.py:drug_list_flow
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert getattr(module, name).name == deployment.flow_name


def test_deployments_run_on_bureau_time_and_name_their_program() -> None:
    for deployment in build_deployments(["jiangxi-2025"]):
        assert deployment.parameters["program"] == "jiangxi-2025"
        assert all(s.schedule.timezone == TIMEZONE for s in deployment.schedules)


def test_the_reminder_run_is_at_the_configured_shanghai_time() -> None:
    (reminders,) = [d for d in build_deployments(["shenyang-2025"], reminder_time="07:45") if d.name.endswith("reminders")]
    assert reminders.schedules[0].schedule.cron == "45 7 * * *"
