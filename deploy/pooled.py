"""Every program's deployments on a process work pool: what `sanjin deploy` registers.

The same specs as `sanjin serve` (deploy/deployments.py), registered so that any number of workers on any
number of machines run them, instead of one in-process runner:
- **code from the installed package**: the entrypoint is a module path (`flows.enrollment.enrollment_flow`) with
  no pull step and no working directory, so nothing of the deploying machine's file system is recorded; a
  worker runs whatever version of `sanjin` its machine has installed;
- **settings as job variables, secrets never**: the non-secret `SANJIN_*` settings go into the job's
  environment; a password (the database URL's, SMTP's) and the web secret key are never stored in the
  deployment — a worker's flow process inherits them from the worker's own environment;
- **names that cannot collide with `serve`'s**: `<program>-<kind>@<pool>`. A program slug never holds `@`, so
  `serve` (whose SIGTERM pauses the deployments it served, by name) never touches a pooled one, and the two
  never overwrite each other's settings;
- **one work queue per program with a concurrency limit**: a province's programs share the workers, and one
  program's runs never take them all. A suspended run (waiting for people) holds no slot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType
from sqlalchemy import make_url

from core.settings import Settings
from deploy.deployments import DEPLOYMENT_SPECS, TIMEZONE
from deploy.schedules import reminder_schedule
from flows.reminders import reminders_flow

DEFAULT_POOL = "sanjin"
HEARTBEAT_SECONDS = 60  # a pooled flow run tells the server it is alive this often (Prefect's default: 180)
MISSED_HEARTBEATS = 3  # silent this long (3 minutes), a running run is taken for lost with its machine
DEFAULT_PROGRAM_LIMIT = 2  # a daily run and a woken gate run of one program at once; the rest queue
# How a worker starts a flow run. Prefect 3.9's process worker, given no command, first starts a "workspace
# supervisor" (a Python process that imports Prefect, prepares pull steps and a working directory, then execs the
# engine): a second interpreter and Prefect import per run, ≈ 2-6 s here. Our deployments have no pull steps (the
# code is the installed package), so the engine is started directly. `python` is the worker's: its PATH must lead
# to the environment where sanjin is installed (deploy/systemd/sanjin-worker@.service sets it).
ENGINE_COMMAND = "python -m prefect.engine"
_POOL_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class DeployError(ValueError):
    """Why nothing was deployed, for the person who typed the command (Chinese and English)."""


def check_pool_name(pool: str) -> str:
    """Lowercase letters, digits and hyphens: the pool's name is part of every deployment name."""
    if not _POOL_NAME.fullmatch(pool):
        raise DeployError(f"工作池名称只能包含小写字母、数字和连字符：{pool!r} / a work pool name is lowercase letters, "
                          f"digits and hyphens: {pool!r}")
    return pool


def pooled_name(slug: str, suffix: str, pool: str) -> str:
    """`shenyang-2025-enrollment-gates@sanjin`: `serve` names the same deployment without `@pool`."""
    return f"{slug}-{suffix}@{pool}"


_PASSED = {  # setting → environment variable; the secrets (smtp_password, a database password) are not here
    "home": "SANJIN_HOME", "clock": "SANJIN_CLOCK", "mailer": "SANJIN_MAILER", "maildir": "SANJIN_MAILDIR",
    "calendar_overrides": "SANJIN_CALENDAR_OVERRIDES", "calendar_warning_from": "SANJIN_CALENDAR_WARNING_FROM",
    "reminder_time": "SANJIN_REMINDER_TIME", "smtp_host": "SANJIN_SMTP_HOST", "smtp_port": "SANJIN_SMTP_PORT",
    "smtp_starttls": "SANJIN_SMTP_STARTTLS", "smtp_ssl": "SANJIN_SMTP_SSL", "smtp_username": "SANJIN_SMTP_USERNAME",
    "smtp_sender": "SANJIN_SMTP_SENDER", "smtp_connections": "SANJIN_SMTP_CONNECTIONS",
    "smtp_rate_per_second": "SANJIN_SMTP_RATE_PER_SECOND", "compliance_connections": "SANJIN_COMPLIANCE_CONNECTIONS",
}
_PATHS = ("home", "maildir", "calendar_overrides")


def job_environment(settings: Settings) -> dict[str, str]:
    """The settings configured where `sanjin deploy` runs, as the flow processes' environment, secrets left out.

    Only what was configured is passed: a default stored here would override what a worker's machine sets.
    Paths must be absolute — a worker starts each flow process in a fresh temporary directory, where a
    relative `var/` would be a new, empty home; in the documented topology they are the shared storage,
    mounted at the same place on every machine. Without a database URL or an absolute home a pooled run
    would find no database at all, so that is refused.
    """
    env: dict[str, str] = {}
    for name, variable in _PASSED.items():
        value = getattr(settings, name)
        if name not in settings.model_fields_set or value is None:
            continue
        if name in _PATHS and not Path(value).is_absolute():
            raise DeployError(f"{variable}={value} 必须是绝对路径（工作进程在临时目录中运行流程） / {variable} must be an "
                              "absolute path: a worker runs each flow in a temporary directory")
        env[variable] = str(value).lower() if isinstance(value, bool) else str(value)
    url = settings.database_url
    if url is not None and make_url(url).password is None:  # with a password it comes from each worker's environment
        env["SANJIN_DATABASE_URL"] = url
    if url is None and "SANJIN_HOME" not in env:
        raise DeployError("请设置 SANJIN_DATABASE_URL 或绝对路径的 SANJIN_HOME：工作池中的流程需要找到同一个数据库 / set "
                          "SANJIN_DATABASE_URL or an absolute SANJIN_HOME: pooled runs must find the same database")
    return env


@dataclass(frozen=True)
class PoolPlan:
    pool: str
    programs: list[str]
    program_limit: int
    deployments: list[Any]  # prefect RunnerDeployment, each on the work queue named after its program
    heartbeat_seconds: int = HEARTBEAT_SECONDS


def build_pool_deployments(programs: Sequence[str], pool: str, settings: Settings,
                           program_limit: int = DEFAULT_PROGRAM_LIMIT,
                           heartbeat_seconds: int = HEARTBEAT_SECONDS,
                           engine_command: str | None = ENGINE_COMMAND) -> PoolPlan:
    """Every deployment of every named program, for `pool`; nothing touches the API here.

    `engine_command=None` leaves Prefect's default start (the workspace supervisor, then the engine).
    """
    check_pool_name(pool)
    if program_limit < 1:
        raise DeployError(f"每个项目的并发上限至少为 1：{program_limit} / the per-program limit must be at least 1")
    env = job_environment(settings)
    # Heartbeats often enough for the crash-recovery automation to notice a lost run within minutes.
    if heartbeat_seconds < 30:  # Prefect's own floor
        raise DeployError(f"心跳间隔至少 30 秒：{heartbeat_seconds} / the heartbeat interval must be at least 30 s")
    env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(heartbeat_seconds)
    job_variables: dict[str, Any] = {
        "env": env,
        # The flow process writes its log to the API, not to the worker's pipe: a worker killed while its child
        # runs no longer takes the child down with a broken pipe (PREFECT_NOTES: "aborted by Python system exit").
        "stream_output": False,
    }
    if engine_command:
        job_variables["command"] = engine_command
    reminders = reminder_schedule(settings.reminder_time)
    specs = [*DEPLOYMENT_SPECS, (reminders_flow, "reminders", {}, reminders["cron"])]
    deployments = []
    for slug in programs:
        for flow, suffix, params, cron in specs:
            deployments.append(flow.to_deployment(
                name=pooled_name(slug, suffix, pool), parameters={"program": slug, **params},
                schedule=Cron(cron, timezone=TIMEZONE), tags=["sanjin", slug, f"pool:{pool}"],
                work_pool_name=pool, work_queue_name=slug, job_variables=dict(job_variables),
                entrypoint_type=EntrypointType.MODULE_PATH))
    return PoolPlan(pool, list(programs), program_limit, deployments, heartbeat_seconds)


async def apply_pool_plan(plan: PoolPlan) -> list[str]:
    """Create the pool and each program's queue if missing, set the queue limits, register every deployment,
    and the pool's crash-recovery automation.

    Idempotent: deploying again updates the deployments in place (same names) and keeps their run history.
    Returns the deployments' full names.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    async with get_client() as client:
        try:
            pool = await client.read_work_pool(plan.pool)
        except ObjectNotFound:
            try:
                pool = await client.create_work_pool(WorkPoolCreate(name=plan.pool, type="process"))
            except ObjectAlreadyExists:  # a worker starting at the same moment created it
                pool = await client.read_work_pool(plan.pool)
        if pool.type != "process":
            raise DeployError(f"工作池 {plan.pool} 的类型是 {pool.type}，而不是 process / work pool {plan.pool} is of "
                              f"type {pool.type}, not process")
        for slug in plan.programs:
            try:
                queue = await client.read_work_queue_by_name(slug, work_pool_name=plan.pool)
                await client.update_work_queue(queue.id, concurrency_limit=plan.program_limit)
            except ObjectNotFound:  # (a queue is created by nobody else: workers only read them)
                await client.create_work_queue(
                    name=slug, work_pool_name=plan.pool, concurrency_limit=plan.program_limit,
                    description=f"sanjin program {slug}: its runs, at most {plan.program_limit} at once")
        await apply_recovery_automation(client, plan.pool, plan.heartbeat_seconds)
        names = []
        for deployment in plan.deployments:
            await deployment.aapply(work_pool_name=plan.pool)
            names.append(f"{deployment.flow_name}/{deployment.name}")
    return names


def recovery_automation_name(pool: str) -> str:
    return f"sanjin: replace runs lost with their worker ({pool})"


def crash_recovery_automation(pool: str, heartbeat_seconds: int = HEARTBEAT_SECONDS) -> Any:
    """An automation that notices a pooled run whose worker or machine died, marks it crashed, and starts another.

    A run lost while running (the worker and its flow process killed, a machine gone) stays Running in the API
    for ever: nothing else notices. Its heartbeats stop, so "a heartbeat not followed, within three intervals,
    by another or by a final or waiting state" is Prefect's own crash detection (proactive trigger). The
    replacement is a new run of the same deployment with its own parameters: every flow is safe to re-run,
    and the program lock keeps it from overlapping anything still alive. A suspended run sends no heartbeat,
    and is not taken for lost: Suspended and Paused end the watch like a final state.
    """
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState, RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=recovery_automation_name(pool),
        description="Crash detection by heartbeat for sanjin's pooled runs, and a new run of the lost one's deployment",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Cancelling", "prefect.flow-run.Crashed",
                    "prefect.flow-run.Paused", "prefect.flow-run.Suspended"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.tag.pool:{pool}"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=heartbeat_seconds * MISSED_HEARTBEATS),
        ),
        actions=[
            ChangeFlowRunState(state=StateType.CRASHED, force=True,
                               message="no heartbeat: its worker or machine was lost (sanjin crash recovery)"),
            RunDeployment(source="inferred"),
        ],
    )


async def apply_recovery_automation(client: Any, pool: str, heartbeat_seconds: int = HEARTBEAT_SECONDS) -> None:
    """Create the pool's crash-recovery automation, or bring it up to date (one per pool, by name)."""
    automation = crash_recovery_automation(pool, heartbeat_seconds)
    existing = await client.read_automations_by_name(automation.name)
    if existing:
        await client.update_automation(existing[0].id, automation)
        for extra in existing[1:]:
            await client.delete_automation(extra.id)
    else:
        await client.create_automation(automation)
