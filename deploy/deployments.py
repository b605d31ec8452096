"""The deployments a bureau serves: the daily program run, and gate-waiting runs per phase.

`sanjin serve` (and `prefect.serve`) take these. Schedules are Asia/Shanghai wall-clock times, so a
reminder at 08:30 is 08:30 in the bureau whatever the server's zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.schedules import Cron

from flows.continuous_review import continuous_review_flow
from flows.drug_list import drug_list_flow
from flows.enrollment import enrollment_flow
from flows.program import program_flow
from flows.publication import publication_flow
from flows.reminders import reminders_flow

TIMEZONE = "Asia/Shanghai"
DAILY_RUN = "0 6 * * *"  # every morning: reconcile every phase that has work, then send notices
GATE_WAIT_REARM = "0 */4 * * *"  # gate-waiting runs are re-armed; their pause is not the business deadline

# Each entry: (flow, deployment suffix, extra parameters, cron). Every phase with gates gets a waiting run
# of its own, so list collection and enrollment wait for people at the same time where windows overlap.
DEPLOYMENT_SPECS: tuple[tuple[Any, str, dict[str, Any], str], ...] = (
    (program_flow, "daily", {}, DAILY_RUN),
    # Published on change: an unchanged list costs one content check, so an hourly run is cheap.
    (publication_flow, "publication", {}, "0 * * * *"),
    (drug_list_flow, "drug-list-gates", {"wait": True, "rearm_seconds": 4 * 3600}, GATE_WAIT_REARM),
    (enrollment_flow, "enrollment-gates", {"wait": True, "rearm_seconds": 4 * 3600}, GATE_WAIT_REARM),
    (continuous_review_flow, "continuous-review-gates", {"wait": True, "rearm_seconds": 4 * 3600}, GATE_WAIT_REARM),
)


def build_deployments(programs: Sequence[str], reminder_time: str | None = None) -> list[Any]:
    """RunnerDeployments for every program slug; nothing touches the API until they are served."""
    from core.settings import get_settings
    from deploy.schedules import reminder_schedule

    reminders = reminder_schedule(reminder_time or get_settings().reminder_time)
    deployments = []
    for slug in programs:
        for flow, suffix, params, cron in DEPLOYMENT_SPECS:
            deployments.append(flow.to_deployment(
                name=f"{slug}-{suffix}", parameters={"program": slug, **params},
                schedule=Cron(cron, timezone=TIMEZONE), tags=["sanjin", slug]))
        deployments.append(reminders_flow.to_deployment(
            name=f"{slug}-reminders", parameters={"program": slug},
            schedule=Cron(reminders["cron"], timezone=reminders["timezone"]), tags=["sanjin", slug]))
    return deployments
