"""A person's path through the pages in a real browser: district reviewers, then the manager, then the overview.

Needs Debian's chromium (`apt-get install -y chromium fonts-wqy-microhei`) and Playwright for Python; it never
downloads a browser. Screenshots go to the test's tmp_path and to var/test-screenshots/ (gitignored).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from models.states import GateKind
from tasks.enrollment import reconcile_enrollment
from tests.web.conftest import PASSWORD, SLUG, World, build_world
from web.app import create_app
from web.settings import WebSettings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                               "(pip install playwright; never `playwright install`: Debian's chromium is used)")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(sqlite_engine: Engine) -> Iterator[tuple[str, World]]:
    """The app under uvicorn in a thread on a free loopback port, over a SQLite test database."""
    import uvicorn

    world = build_world(sqlite_engine)
    app = create_app(sqlite_engine, settings=WebSettings(secret_key="browser-test-secret-0123456789"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", world
    server.should_exit = True
    thread.join(timeout=10)


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def _sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _sign_out(page: Any) -> None:
    page.click("text=退出")
    page.wait_for_url("**/login")


def _approve_all_in_inbox(page: Any, base: str) -> str:
    page.goto(f"{base}/inbox")
    page.check("input[data-select-all=gate]")  # the page's script ticks every gate
    page.click("#bulk-approve")
    page.wait_for_url(f"{base}/inbox")
    return str(page.inner_text(".flash"))


def _running(page: Any, base: str) -> str:
    page.goto(f"{base}/programs/{SLUG}")
    cell = page.query_selector("figure[data-phase=enrollment] li[data-state=running] b")
    return "0" if cell is None else str(cell.inner_text())


def test_reviewers_then_the_manager_approve_and_the_overview_counts_change(served: tuple[str, World],
                                                                           tmp_path: Path) -> None:
    base, world = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
            _sign_in(page, base, "manager")
            assert _running(page, base) == "0"
            assert page.locator("svg line.today").count() == 1
            _shot(page, tmp_path, "1-overview-before")
            _sign_out(page)

            for i, (district, name) in enumerate(sorted(world.reviewers.items())):
                _sign_in(page, base, name)
                page.goto(f"{base}/inbox")
                assert page.locator("input[name=gate]").count() == 1  # only its own district's gate
                _shot(page, tmp_path, f"2-inbox-{i}-{name}")
                message = _approve_all_in_inbox(page, base)
                assert "批准" in message, message
                _shot(page, tmp_path, f"3-approved-{i}-{name}")
                assert world.district_gate(district).decided_by == name
                _sign_out(page)

            reconcile_enrollment(world.engine, SLUG, clock=world.clock)  # the districts are done: the city gate opens
            (city,) = world.gates(GateKind.CITY_REVIEW)
            _sign_in(page, base, "manager")
            page.goto(f"{base}/gates/{city.id}")
            _shot(page, tmp_path, "4-city-gate")
            assert "批准" in _approve_all_in_inbox(page, base)
            reconcile_enrollment(world.engine, SLUG, clock=world.clock)  # the batch matures and runs
            assert _running(page, base) == str(len(world.apps))
            _shot(page, tmp_path, "5-overview-after")
        finally:
            browser.close()
    assert (SHOTS / "5-overview-after.png").exists()
