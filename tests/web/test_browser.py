"""A person's path through the pages in a real browser, against `sanjin serve` with its flows running.

District reviewers approve their gates in the inbox; the served enrollment run, woken by each decision,
carries on by itself and opens the city gate; the manager approves the batch; the run finishes and the
overview shows the institutions running. Nothing in the test reconciles: the flow does.

Needs Debian's chromium (`make browser`: apt-get install chromium fonts-wqy-microhei) and Playwright for
Python; it never downloads a browser. Without either it is skipped, and says why. Screenshots go to the
test's own output folder (pytest's tmp_path, printed) and to var/test-screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.enrollment import Gate
from models.states import GateKind, GateState
from tests.web.conftest import PASSWORD, SLUG, World, build_world
from tests.web.serving import Served, flow_run_state, sanjin_serve, trigger, wait_for

CHROMIUM = Path(os.environ.get("SANJIN_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"

if not CHROMIUM.exists():
    pytest.skip(f"浏览器测试已跳过：找不到 {CHROMIUM}（make browser 或 apt-get install -y chromium fonts-wqy-microhei）/ "
                f"browser test skipped: {CHROMIUM} is missing (run `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                               "(pip install playwright; never `playwright install`: Debian's chromium is used)")

pytestmark = pytest.mark.prefect


@pytest.fixture
def served(sqlite_engine: Engine, prefect_api: str, tmp_path: Path) -> Iterator[tuple[Served, World]]:
    world = build_world(sqlite_engine)
    with sanjin_serve(sqlite_engine, prefect_api, tmp_path / "serve.log", "--program", SLUG) as server:
        yield server, world


def _shot(page: Any, out: Path, name: str) -> None:
    path = out / f"{name}.png"
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


def _running(page: Any, base: str) -> str:
    page.goto(f"{base}/programs/{SLUG}")
    cell = page.query_selector("figure[data-phase=enrollment] li[data-state=running] b")
    return "0" if cell is None else str(cell.inner_text())


def _accept_confirmations(page: Any) -> list[str]:
    """Accept every confirmation the page asks for (Playwright dismisses them by default); returns their texts."""
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(str(dialog.message))
        dialog.accept()

    page.on("dialog", accept)
    return asked


def _gates(world: World, kind: GateKind) -> list[Gate]:
    with Session(world.engine) as session:
        return list(session.execute(select(Gate).where(col(Gate.kind) == kind, col(Gate.state) == GateState.OPEN,
                                                       Gate.flow_run_id.is_not(None))).scalars())  # type: ignore[union-attr]


def test_reviewers_then_the_manager_approve_and_the_served_flow_carries_the_batch_to_running(
        served: tuple[Served, World], tmp_path: Path) -> None:
    server, world = served
    base = server.base
    run_id = trigger(f"institution-enrollment/{SLUG}-enrollment-gates")
    wait_for(lambda: len(_gates(world, GateKind.DISTRICT_REVIEW)) == 2 and flow_run_state(run_id) == "PAUSED",
             timeout=120, what="the served enrollment run to wait on the district gates")
    print(f"\nscreenshots: {tmp_path} and {SHOTS}")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
            asked = _accept_confirmations(page)
            _sign_in(page, base, "manager")
            assert _running(page, base) == "0"
            assert page.locator("#timeline svg line.today").count() == 1
            _shot(page, tmp_path, "1-overview-before")
            _sign_out(page)

            for i, (district, name) in enumerate(sorted(world.reviewers.items())):
                _sign_in(page, base, name)
                page.click("nav >> text=待我审批")
                page.wait_for_url(f"{base}/inbox", wait_until="load")  # a click waits for the response, not the page
                sync_api.expect(page.locator("input[name=gate]")).to_have_count(1)  # only its own district's gate
                _shot(page, tmp_path, f"2-inbox-{i}-{name}")
                page.check("input[data-select-all=gate]")  # the page's script ticks every gate on the page
                page.click("#bulk-approve")
                assert f"全部 {len(world.district_gate(district).items)} 项" in asked[-1], asked
                page.wait_for_selector(".flash")
                message = page.inner_text(".flash")
                assert "批准 " in message and "后续处理已自动继续" in message, message
                _shot(page, tmp_path, f"3-approved-{i}-{name}")
                assert world.district_gate(district).decided_by == name
                _sign_out(page)

            # The run was woken by the last district decision and opened the city gate by itself.
            (city,) = wait_for(lambda: _gates(world, GateKind.CITY_REVIEW), timeout=120,
                               what="the served run to open the city gate")
            wait_for(lambda: flow_run_state(run_id) == "PAUSED", timeout=60, what="the run to wait on the city gate")
            _sign_in(page, base, "manager")
            page.click("nav >> text=待我审批")
            page.wait_for_url(f"{base}/inbox", wait_until="load")
            page.click(f"a[href='/gates/{city.id}']")
            page.wait_for_url(f"{base}/gates/{city.id}", wait_until="load")
            sync_api.expect(page.locator("tr[id^=item-]")).to_have_count(len(world.apps))
            assert "区县意见：批准" in page.inner_text("table.items")
            _shot(page, tmp_path, "4-city-gate")
            page.click("#approve-all")
            assert f"全部 {len(world.apps)} 项" in asked[-1], asked
            page.wait_for_selector(".flash")
            assert "后续处理已自动继续" in page.inner_text(".flash")
            wait_for(lambda: flow_run_state(run_id) == "COMPLETED", timeout=120, what="the run to finish the batch")
            assert _running(page, base) == str(len(world.apps))
            _shot(page, tmp_path, "5-overview-after")
        finally:
            browser.close()
    assert (tmp_path / "5-overview-after.png").exists() and (SHOTS / "5-overview-after.png").exists()


def test_the_browser_test_skips_and_says_why_without_chromium(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "SANJIN_CHROMIUM": str(tmp_path / "no-chromium")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", __file__],
                          env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode in (0, 5), done.stdout[-2000:]  # 5: the only module was skipped at collection
    assert "skipped" in done.stdout and "no-chromium is missing" in done.stdout, done.stdout[-2000:]
