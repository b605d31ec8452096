"""In the real browser (Debian's Chromium): a manager sees a stalled district flagged in red on the overview, and a
reviewer is asked to confirm, with the count, before a bulk approval — dismissing it decides nothing (issue 19) —
and, with JavaScript turned off, is asked on a page of the server's that names the count and the items.

The web app alone is served (uvicorn in a thread over the test's SQLite database): no flow runs here, the pages
are the subject. Skipped, saying why, without Chromium or Playwright (as tests/web/test_browser.py).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from models.clock import SHANGHAI
from models.enrollment import Gate
from models.states import GateState
from tests.web.conftest import PASSWORD, SLUG, World, build_world
from tests.web.serving import free_port, wait_for
from web.app import create_app
from web.settings import WebSettings

CHROMIUM = Path(os.environ.get("SANJIN_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"

if not CHROMIUM.exists():
    pytest.skip(f"浏览器测试已跳过：找不到 {CHROMIUM}（make browser 或 apt-get install -y chromium fonts-wqy-microhei）/ "
                f"browser test skipped: {CHROMIUM} is missing (run `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                               "(pip install playwright; never `playwright install`: Debian's chromium is used)")
uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture
def site(sqlite_engine: Engine) -> Iterator[tuple[str, World]]:
    world = build_world(sqlite_engine)
    app = create_app(world.engine, settings=WebSettings(secret_key="browser-test-secret-0123456789"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="the web app to listen")
    try:
        yield f"http://127.0.0.1:{port}", world
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def _sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _shot(page: Any, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_a_manager_sees_the_stalled_district_flagged_red_on_the_overview(site: tuple[str, World], browser_page: Any,
                                                                         tmp_path: Path) -> None:
    base, world = site
    due = world.district_gate("和平区").due_on
    world.clock.set(datetime.combine(due + timedelta(days=3), time(9), tzinfo=SHANGHAI))
    page = browser_page
    _sign_in(page, base, "manager")
    home_alert = page.locator(f"tr[data-program='{SLUG}'] td.alerts").inner_text()
    assert "审批滞后" in home_alert and "和平区" in home_alert
    page.click(f"a[href='/programs/{SLUG}']")
    page.wait_for_url(f"{base}/programs/{SLUG}", wait_until="load")  # a click waits for the response, not the page
    alert = page.locator("#stalled-alert")
    assert alert.is_visible() and "和平区" in alert.inner_text()
    row = page.locator("tr[data-district='和平区']")
    assert row.get_attribute("data-stalled") == "1"
    colour = row.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert colour == "rgb(253, 236, 234)", colour  # the red of .stalled
    name_colour = row.locator(".district-name").evaluate("e => getComputedStyle(e).color")
    assert name_colour == "rgb(168, 50, 50)", name_colour
    _shot(page, tmp_path, "19-stalled-district")


def test_a_reviewer_confirms_the_count_before_a_bulk_approval(site: tuple[str, World], browser_page: Any,
                                                              tmp_path: Path) -> None:
    base, world = site
    gate = world.district_gate("和平区")
    page = browser_page
    asked: list[str] = []
    answer = {"accept": False}

    def on_dialog(dialog: Any) -> None:
        asked.append(str(dialog.message))
        dialog.accept() if answer["accept"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    _sign_in(page, base, world.reviewers["和平区"])
    page.goto(f"{base}/gates/{gate.id}")
    page.click("#approve-all")
    assert asked == [f"确认批准全部 {len(gate.items)} 项未决定的事项（含未在本页显示的）？批准结果将通知申请单位。"]
    page.wait_for_timeout(300)
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.OPEN  # type: ignore[union-attr]  # dismissed: nothing

    answer["accept"] = True
    page.click("#approve-all")
    page.wait_for_selector(".flash")
    assert f"批准 {len(gate.items)} 项" in page.inner_text(".flash") and len(asked) == 2
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.DECIDED  # type: ignore[union-attr]
    _shot(page, tmp_path, "19-bulk-confirmed")

    page.goto(f"{base}/inbox")  # the inbox's bulk button sums the ticked gates' undecided items
    assert page.locator("input[name=gate]").count() == 0  # its only gate is decided


@pytest.fixture
def no_script_page() -> Iterator[Any]:
    """A browser with JavaScript turned off: the pages must decide nothing in bulk without asking all the same."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(java_script_enabled=False, locale="zh-CN",
                                          viewport={"width": 1280, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def test_without_javascript_a_bulk_approval_is_confirmed_on_a_page_naming_the_count_and_the_items(
        site: tuple[str, World], no_script_page: Any, tmp_path: Path) -> None:
    base, world = site
    gate = world.district_gate("和平区")
    page = no_script_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(str(d.message)), d.dismiss()))
    _sign_in(page, base, world.reviewers["和平区"])
    page.goto(f"{base}/gates/{gate.id}")
    names = [n.strip() for n in page.locator("tr[id^=item-] td:nth-child(2) b").all_inner_texts()]
    assert len(names) == len(gate.items)

    page.click("#approve-all")  # no script: the server asks instead of the browser's dialog
    page.wait_for_selector("#bulk-confirm")
    assert page.inner_text("#confirm-count") == str(len(gate.items))
    listed = page.locator("ol.confirm-items li").all_inner_texts()
    assert sorted(n.split("（")[0] for n in listed) == sorted(names), listed
    assert f"确认批准 {len(gate.items)} 项" in page.inner_text("#confirm-yes")
    _shot(page, tmp_path, "19-bulk-confirm-no-script")
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.OPEN  # type: ignore[union-attr]  # asked, not decided

    page.click("#confirm-back")  # 返回: back on the gate, nothing decided
    page.wait_for_url(f"{base}/gates/{gate.id}*")
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.OPEN  # type: ignore[union-attr]

    page.click("#approve-all")
    page.wait_for_selector("#bulk-confirm")
    page.click("#confirm-yes")
    page.wait_for_selector(".flash")
    assert f"批准 {len(gate.items)} 项" in page.inner_text(".flash") and dialogs == []
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.DECIDED  # type: ignore[union-attr]


def test_without_javascript_the_inbox_bulk_approval_is_confirmed_with_the_sum_of_the_ticked_gates(
        site: tuple[str, World], no_script_page: Any) -> None:
    base, world = site
    gate = world.district_gate("和平区")
    page = no_script_page
    _sign_in(page, base, world.reviewers["和平区"])
    page.goto(f"{base}/inbox")
    page.check(f"input[name=gate][value='{gate.id}']")
    page.click("#bulk-approve")
    page.wait_for_selector("#bulk-confirm")
    assert page.inner_text("#confirm-count") == str(len(gate.items))
    assert gate.title in page.inner_text("#bulk-confirm h2")
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.OPEN  # type: ignore[union-attr]
    page.click("#confirm-yes")
    page.wait_for_selector(".flash")
    with Session(world.engine) as session:
        assert session.get(Gate, gate.id).state == GateState.DECIDED  # type: ignore[union-attr]
