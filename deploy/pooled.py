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
DEFAULT_PROGRAM_LIMIT = 2  # a daily run and a woken gate run of one program at once; the rest queue
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
    "smtp_rate_per_second": "SANJIN_SMTP_RATE_PER_SECOND",
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


def build_pool_deployments(programs: Sequence[str], pool: str, settings: Settings,
                           program_limit: int = DEFAULT_PROGRAM_LIMIT) -> PoolPlan:
    """Every deployment of every named program, for `pool`; nothing touches the API here."""
    check_pool_name(pool)
    if program_limit < 1:
        raise DeployError(f"每个项目的并发上限至少为 1：{program_limit} / the per-program limit must be at least 1")
    job_variables = {
        "env": job_environment(settings),
        # The flow process writes its log to the API, not to the worker's pipe: a worker killed while its child
        # runs no longer takes the child down with a broken pipe (PREFECT_NOTES: "aborted by Python system exit").
        "stream_output": False,
    }
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
    return PoolPlan(pool, list(programs), program_limit, deployments)


async def apply_pool_plan(plan: PoolPlan) -> list[str]:
    """Create the pool and each program's queue if missing, set the queue limits, register every deployment.

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
        names = []
        for deployment in plan.deployments:
            await deployment.aapply(work_pool_name=plan.pool)
            names.append(f"{deployment.flow_name}/{deployment.name}")
    return names
