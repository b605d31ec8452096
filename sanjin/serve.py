"""`sanjin serve`: the web pages and the served flows and schedules in one process, stopped together.

One asyncio loop runs both halves: uvicorn serving the web app, and a Prefect `Runner` serving the
deployments of `deploy/deployments.py` (daily program run, hourly publication, gate-waiting runs,
reminders). Flow runs are the runner's child processes, so the whole service is one process group:
Ctrl-C in a terminal (SIGINT to the group) or SIGTERM to this process stops both halves cleanly —
the web server finishes its requests, the runner cancels its in-flight runs and pauses its schedules
(nothing serves them until the next `sanjin serve`; PREFECT_NOTES.md). A gate-waiting run that is
stopped loses nothing: its decisions are in the database and the next run reads them.

Signals are ours, not the libraries': uvicorn would re-raise a captured SIGINT after its own
shutdown and the runner's SIGTERM handler calls sys.exit from inside the loop, either of which
would leave the other half running or kill it mid-step.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

GRACE_SECONDS = 10  # web requests in flight get this long to finish at shutdown


class ServeError(RuntimeError):
    """Why the service cannot start, for the person who typed the command (Chinese and English)."""


@dataclass(frozen=True)
class ServePlan:
    host: str
    port: int
    programs: list[str]
    deployments: list[Any]  # prefect RunnerDeployment

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def bind(host: str, port: int) -> socket.socket:
    """Bind before anything else starts, so a busy port is one clear message and nothing half-started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"无法监听 {host}:{port}（{exc.strerror}）：端口可能已被占用，请换用 --port / "
                         f"cannot listen on {host}:{port} ({exc.strerror}); is the port taken? try --port") from exc
    sock.listen(2048)
    sock.set_inheritable(False)  # flow-run processes must not hold the web port open after we stop
    return sock


def plan(host: str, port: int, programs: Sequence[str] | None, reminder_time: str | None = None) -> ServePlan:
    """The deployments of the named programs, or of every loaded program."""
    from core.db import shared_engine
    from core.migrate import schema_problem
    from deploy.deployments import build_deployments
    from tasks.programs import list_programs

    problem = schema_problem(shared_engine())  # a fresh clone's database printed `no such table: program` (#18)
    if problem:
        raise ServeError(problem)
    loaded = [p.slug for p in list_programs(shared_engine())]
    chosen = list(programs) if programs else loaded
    unknown = sorted(set(chosen) - set(loaded))
    if unknown:
        raise ServeError(f"项目未载入：{'、'.join(unknown)}（已载入：{'、'.join(loaded) or '无'}），请先 sanjin program load / "
                         f"programs not loaded: {', '.join(unknown)}; run `sanjin program load` first")
    return ServePlan(host, port, chosen, build_deployments(chosen, reminder_time) if chosen else [])


def _uvicorn_server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # serve_forever owns SIGINT/SIGTERM for both halves

    config = uvicorn.Config(app, host=host, port=port, lifespan="off", proxy_headers=True, server_header=False,
                            timeout_graceful_shutdown=GRACE_SECONDS, log_level="info")
    return Server(config)


async def serve_forever(serve_plan: ServePlan, sock: socket.socket, *, limit: int | None = None,
                        app: Any = None, ready: Callable[[], None] | None = None) -> int:
    """Run the web app and the runner until a signal or until either half stops; 0 on a clean stop.

    `ready` is called once the deployments are registered, just before both halves start.
    """
    from prefect.runner import Runner

    from web.app import create_app

    server = _uvicorn_server(app if app is not None else create_app(host=serve_plan.host), serve_plan.host, serve_plan.port)
    runner = Runner(name=f"sanjin-serve-{serve_plan.port}", pause_on_shutdown=True, limit=limit)
    deployment_ids: list[Any] = []
    try:
        for deployment in serve_plan.deployments:
            deployment_ids.append(await runner.aadd_deployment(deployment))
    except Exception as exc:  # the API is down or refuses: say so, start nothing
        from prefect.settings import PREFECT_API_URL

        sock.close()
        api = PREFECT_API_URL.value() or "（未设置 / not set）"
        raise ServeError(f"无法在 Prefect API {api} 登记流程（{exc.__class__.__name__}: {exc}）：请确认 prefect server "
                         f"已启动且 PREFECT_API_URL 正确 / cannot register the deployments with the Prefect API at "
                         f"{api}; is the server running?") from exc

    if ready is not None:
        ready()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: dict[str, asyncio.Task[Any]] = {"web": asyncio.create_task(server.serve(sockets=[sock]), name="web")}
    if serve_plan.deployments:
        tasks["flows"] = asyncio.create_task(runner.start(), name="flows")
    await asyncio.sleep(0)  # runner.start() has installed its own SIGTERM handler by now: ours replace it
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait(), name="signal")
    try:
        done, _ = await asyncio.wait([stopper, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    failed = [name for name, task in tasks.items() if task in done and _failed(task)]
    server.should_exit = True
    flows = tasks.get("flows")
    if flows is not None and not flows.done():
        if runner.started:
            with contextlib.suppress(Exception):
                await runner.astop()
        else:  # still starting: no run to cancel, but its deployments are registered and must pause as on any stop
            flows.cancel()
            await _pause_deployments(deployment_ids)
    await asyncio.wait(tasks.values(), timeout=GRACE_SECONDS * 3)
    stopper.cancel()
    for name, task in tasks.items():
        if not task.done():
            task.cancel()
        elif name not in failed and _failed(task):
            failed.append(name)
    sock.close()
    return 1 if failed or not stop.is_set() else 0


async def _pause_deployments(ids: list[Any]) -> None:
    """What the runner's own shutdown does (pause_on_shutdown), for a stop that came before the runner started."""
    from prefect.client.orchestration import get_client

    with contextlib.suppress(Exception):  # the API may be gone too: a schedule left on is the next serve's to pause
        async with get_client() as client:
            for deployment_id in ids:
                await client.pause_deployment(deployment_id)


def _failed(task: asyncio.Task[Any]) -> bool:
    """True when the task ended with an error, which is told in one line (the debug log has the traceback)."""
    if task.cancelled():
        return False
    exc = task.exception()
    if exc is None:
        return False
    import logging

    part = {"web": "网页 / web", "flows": "流程 / flows"}.get(task.get_name(), task.get_name())
    log = logging.getLogger("sanjin.serve")
    log.error("%s 异常停止 / stopped: %s: %s", part, exc.__class__.__name__, exc)
    log.debug("traceback", exc_info=exc)
    return True
