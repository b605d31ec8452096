"""`sanjin deploy`: every program's deployments on a process work pool, for workers on any number of machines."""

from __future__ import annotations

import typer


def deploy_command(
    pool: str = typer.Option("sanjin", "--pool", help="进程型工作池名称（不存在则创建） / process work pool (created if missing)"),
    programs: list[str] = typer.Option([], "--program", help="只部署这些项目（默认：全部已载入项目） / deploy these programs "
                                                               "(default: every loaded one)"),
    limit: int = typer.Option(2, "--limit", min=1, help="每个项目同时运行的流程数上限 / most runs of one program at once"),
    heartbeat: int = typer.Option(60, "--heartbeat", min=30, help="流程心跳间隔（秒）；连续三次无心跳视为丢失并重新启动 / seconds "
                                                                  "between a run's heartbeats; three missed and it is replaced"),
    engine_command: str = typer.Option(
        "python -m prefect.engine", "--engine-command",
        help="工作进程启动流程的命令（python 取自工作进程的 PATH）；空字符串则使用 Prefect 默认（先启动工作区监督进程，较慢） / how a "
             "worker starts a run (`python` from the worker's PATH); \"\" for Prefect's default, a workspace "
             "supervisor process first (slower)"),
) -> None:
    """部署到工作池 / register every deployment of every program on a process work pool.

    Start workers with `PREFECT_WORKER_QUERY_SECONDS=0.5 prefect worker start --pool POOL --type process` on each
    machine, sanjin's `.venv/bin` first on PATH (systemd units in deploy/systemd/): the worker then polls twice a
    second and starts each run's engine directly, so a decided gate's suspended run is running again in the time a
    new Python process takes to import Prefect and the flows, plus 2-4 s.
    Secrets (SANJIN_SMTP_PASSWORD, a database URL with a password) come from each worker's environment.
    """
    import asyncio

    from core.db import shared_engine
    from core.settings import get_settings
    from deploy.pooled import DeployError, apply_pool_plan, build_pool_deployments
    from sanjin.terminal import SafeConsole, data
    from tasks.programs import list_programs

    console = SafeConsole(stderr=True)
    loaded = [p.slug for p in list_programs(shared_engine())]
    chosen = list(programs) or loaded
    try:
        unknown = sorted(set(chosen) - set(loaded))
        if unknown:
            raise DeployError(f"项目未载入：{'、'.join(unknown)}（已载入：{'、'.join(loaded) or '无'}），请先 sanjin program "
                              f"load / programs not loaded: {', '.join(unknown)}; run `sanjin program load` first")
        pool_plan = build_pool_deployments(chosen, pool, get_settings(), program_limit=limit,
                                           heartbeat_seconds=heartbeat, engine_command=engine_command or None)
    except DeployError as exc:
        console.print(f"[red]错误 / error:[/] {data(exc)}", highlight=False, markup=True)
        raise typer.Exit(1) from exc
    if not pool_plan.deployments:
        console.print("没有已载入的项目，无可部署 / no program loaded: nothing to deploy", highlight=False)
        raise typer.Exit(1)
    try:
        names = asyncio.run(apply_pool_plan(pool_plan))
    except DeployError as exc:
        console.print(f"[red]错误 / error:[/] {data(exc)}", highlight=False, markup=True)
        raise typer.Exit(1) from exc
    except Exception as exc:  # the API is down or refuses: one line, not a traceback
        from prefect.settings import PREFECT_API_URL

        api = PREFECT_API_URL.value() or "（未设置 / not set）"
        console.print(f"[red]错误 / error:[/] {data(f'无法在 Prefect API {api} 部署（{exc.__class__.__name__}: {exc}） / cannot deploy to the Prefect API at {api}')}",
                      highlight=False, markup=True)
        raise typer.Exit(1) from exc
    typer.echo(f"已部署到工作池 {pool}（{len(names)} 个，每个项目至多 {limit} 个同时运行） / deployed to work pool {pool} "
               f"({len(names)} deployments, at most {limit} runs per program at once):")
    for name in names:
        typer.echo(f"  {name}")
    typer.echo(f"启动工作进程 / start workers: PREFECT_WORKER_QUERY_SECONDS=0.5 prefect worker start --pool {pool} "
               "--type process  (python 与 prefect 需来自同一 PATH / `python` on its PATH must be sanjin's)")
