"""`sanjin web` (the pages alone) and `sanjin serve` (the pages with the served flows and schedules)."""

from __future__ import annotations

import typer
from rich.markup import escape

from sanjin.terminal import SafeConsole


def serve(host: str = typer.Option("127.0.0.1", "--host", help="监听地址 / address to listen on"),
          port: int = typer.Option(8000, "--port", min=1, max=65535, help="端口 / port")) -> None:
    """启动网页端 / serve the web app (set SANJIN_WEB_SECRET_KEY so sessions survive a restart)."""
    import uvicorn

    from core.db import shared_engine
    from core.migrate import schema_problem
    from web.app import create_app

    problem = schema_problem(shared_engine())
    if problem:
        SafeConsole(stderr=True).print(f"[red]错误 / error:[/] {escape(problem)}", highlight=False)
        raise typer.Exit(1)
    uvicorn.run(create_app(host=host), host=host, port=port, proxy_headers=True, server_header=False)


def serve_all(
    host: str = typer.Option("127.0.0.1", "--host", help="监听地址 / address to listen on"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="端口 / port"),
    programs: list[str] = typer.Option([], "--program", help="只提供这些项目的流程（默认：全部已载入项目） / "
                                                               "serve these programs' flows (default: every loaded one)"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="同时运行的流程数上限 / most flow runs at once"),
) -> None:
    """启动网页端及定时流程（Ctrl-C 同时停止） / serve the web app together with the flows and schedules.

    Needs a Prefect API (PREFECT_API_URL, e.g. `prefect server start`): schedules and waiting runs
    live there. Set SANJIN_WEB_SECRET_KEY so sessions survive a restart.
    """
    import asyncio

    from sanjin.serve import ServeError, bind, plan, serve_forever

    console = SafeConsole(stderr=True)
    try:
        serve_plan = plan(host, port, programs)
        sock = bind(host, port)
    except ServeError as exc:
        console.print(f"[red]错误 / error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    import os

    if not os.environ.get("PREFECT_API_URL"):
        console.print("[yellow]提示 / note:[/] 未设置 PREFECT_API_URL：流程将登记在 Prefect 临时服务中，定时计划不会触发。"
                      "生产环境请先运行 `prefect server start` 并设置 PREFECT_API_URL / PREFECT_API_URL is not set: "
                      "schedules only fire against a Prefect server", highlight=False)
    names = "、".join(d.name for d in serve_plan.deployments) or "无（尚未载入项目） / none: no program loaded"

    def ready() -> None:
        console.print(f"网页 / web: {serve_plan.url}\n流程 / deployments ({len(serve_plan.deployments)}): {names}\n"
                      "按 Ctrl-C 停止 / press Ctrl-C to stop", highlight=False)

    try:
        code = asyncio.run(serve_forever(serve_plan, sock, limit=limit, ready=ready))
    except ServeError as exc:
        console.print(f"[red]错误 / error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print("已停止 / stopped" if code == 0 else "[red]已停止：有一部分异常退出，见上方日志 / stopped: a part failed, "
                  "see the log above[/]", highlight=False)
    raise typer.Exit(code)
