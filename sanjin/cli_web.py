"""`sanjin web` (the pages alone) and `sanjin serve` (the pages with the served flows and schedules)."""

from __future__ import annotations

from typing import Any

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
        SafeConsole(stderr=True).print(f"[red]错误 / error:[/] {escape(problem)}", highlight=False, markup=True)
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
    import signal

    console = SafeConsole(stderr=True)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Until serve_forever takes the signals over, SIGTERM is Ctrl-C: Python unwinds, and Prefect's temporary
    # server (a child process, stopped at exit) goes too; a plain SIGTERM would leave it running, orphaned.
    signal.signal(signal.SIGTERM, interrupted)
    try:
        _serve_all(console, host, port, programs, limit)
    except KeyboardInterrupt:
        console.print("已停止 / stopped", highlight=False)
        raise typer.Exit(0) from None


def _serve_all(console: Any, host: str, port: int, programs: list[str], limit: int | None) -> None:
    import asyncio
    import os

    from sanjin.serve import ServeError, bind, plan, serve_forever

    if not os.environ.get("PREFECT_API_URL"):
        # Prefect's temporary server is a child process that logs its own shutdown errors as tracebacks
        # (e.g. "Reactive triggers not started" when stopped early): a development stand-in, so only its
        # critical messages are shown, and Ctrl-C and SIGTERM end quietly.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # 20 s: short on a busy machine
    try:
        serve_plan = plan(host, port, programs)
        sock = bind(host, port)
    except ServeError as exc:
        console.print(f"[red]错误 / error:[/] {escape(str(exc))}", highlight=False, markup=True)
        raise typer.Exit(1) from exc
    if not os.environ.get("PREFECT_API_URL"):
        console.print("[yellow]提示 / note:[/] 未设置 PREFECT_API_URL：流程将登记在 Prefect 临时服务中，定时计划不会触发。"
                      "生产环境请先运行 `prefect server start` 并设置 PREFECT_API_URL / PREFECT_API_URL is not set: "
                      "schedules only fire against a Prefect server", highlight=False, markup=True)
    names = "、".join(d.name for d in serve_plan.deployments) or "无（尚未载入项目） / none: no program loaded"

    def ready() -> None:
        console.print(f"网页 / web: {serve_plan.url}\n流程 / deployments ({len(serve_plan.deployments)}): {names}\n"
                      f"Prefect 界面 / Prefect UI: {prefect_ui_address()}\n"
                      "按 Ctrl-C 停止 / press Ctrl-C to stop", highlight=False)

    try:
        code = asyncio.run(serve_forever(serve_plan, sock, limit=limit, ready=ready))
    except ServeError as exc:
        console.print(f"[red]错误 / error:[/] {escape(str(exc))}", highlight=False, markup=True)
        raise typer.Exit(1) from exc
    console.print("已停止 / stopped" if code == 0 else "[red]已停止：有一部分异常退出，见上方日志 / stopped: a part failed, "
                  "see the log above[/]", highlight=False, markup=True)
    raise typer.Exit(code)


def prefect_ui_address() -> str:
    """Where to watch the runs: PREFECT_UI_URL, else the UI beside PREFECT_API_URL; none for the temporary server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    api = PREFECT_API_URL.value()
    if not api:
        return ("无：未设置 PREFECT_API_URL，临时服务不提供界面（见 README：Watching the flows in Prefect's UI） / none: the temporary "
                "server has no UI; see the README on watching the flows")
    return str(ui or api.rstrip("/").removesuffix("/api"))
