"""In a real browser: a page prints on A4 without navigation, and the laggards download as XLSX (issue #19).

Debian's chromium and Playwright for Python (`make browser`), as tests/web/test_browser.py; skipped, saying why,
without them. The web app alone is served (uvicorn in a thread): printing and downloading need no flows.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import Engine

from models.states import InstitutionKind
from tests.tasks.test_reminders import _account, _running
from tests.web.conftest import PASSWORD, SLUG, World, build_world
from tests.web.serving import free_port
from web.app import create_app
from web.settings import WebSettings

CHROMIUM = Path(os.environ.get("SANJIN_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage"]
A4_POINTS = (595, 842)  # 210 × 297 mm at 72 points per inch, as a PDF's MediaBox gives it

if not CHROMIUM.exists():
    pytest.skip(f"浏览器测试已跳过：找不到 {CHROMIUM}（make browser 或 apt-get install -y chromium fonts-wqy-microhei）/ "
                f"browser test skipped: {CHROMIUM} is missing (run `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                               "(pip install playwright; never `playwright install`: Debian's chromium is used)")


@pytest.fixture
def site(sqlite_engine: Engine) -> Iterator[tuple[str, World]]:
    """The world of tests/web with five institutions late on their platform accounts, served on a free port."""
    import uvicorn

    world = build_world(sqlite_engine)
    for district, n in (("和平区", 3), ("沈河区", 2)):
        for _ in range(n):
            inst = _running(world.engine, world.program, district=district, kind=InstitutionKind.CHAIN_PHARMACY)
            _account(world.engine, world.program, inst, date(2025, 9, 10))
    port = free_port()
    app = create_app(world.engine, clock=world.clock, settings=WebSettings(secret_key="browser-print-secret-key"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/login", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield base, world
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _media_boxes(pdf: bytes) -> list[tuple[float, float]]:
    return [(float(w), float(h)) for w, h in re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)]


def test_a_page_printed_to_pdf_fits_a4_without_navigation_and_the_laggards_download_as_xlsx(
        site: tuple[str, World], tmp_path: Path) -> None:
    base, _ = site
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True)
            _sign_in(page, base, "manager")

            # The laggards page's 导出 link downloads every laggard of the filter as a spreadsheet.
            page.goto(f"{base}/programs/{SLUG}/laggards?district=和平区")
            with page.expect_download() as download:
                page.click("a[data-export=xlsx]")
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)
            assert saved.suffix == ".xlsx" and "滞后机构" in saved.name
            sheet = openpyxl.load_workbook(io.BytesIO(saved.read_bytes()), read_only=True).active
            rows = [list(r) for r in sheet.iter_rows(values_only=True)]
            assert rows[1][:2] == ["机构", "区县"] and len(rows) == 2 + 3 and {r[1] for r in rows[2:]} == {"和平区"}

            # Printed, the program overview (its timeline is wider than a sheet of A4 on screen) fits A4 pages.
            page.goto(f"{base}/programs/{SLUG}")
            page.emulate_media(media="print")
            assert not page.is_visible("header.top") and not page.is_visible("nav")
            printable = 210 - 2 * 12  # mm: A4 less the @page margins of app.css
            page.set_viewport_size({"width": round(printable / 25.4 * 96), "height": 1100})
            width_px = page.evaluate("document.documentElement.scrollWidth")
            assert width_px <= round(printable / 25.4 * 96) + 1, f"{width_px}px is wider than A4's printable width"
            pdf = page.pdf(prefer_css_page_size=True, print_background=True)
            (tmp_path / "overview.pdf").write_bytes(pdf)
            boxes = _media_boxes(pdf)
            assert boxes and all(abs(w - A4_POINTS[0]) < 2 and abs(h - A4_POINTS[1]) < 2 for w, h in boxes), boxes

            # A long table breaks across pages with its header row repeated; the pager and filters do not print.
            page.goto(f"{base}/audit?per_page=200")
            page.emulate_media(media="print")
            assert page.evaluate("getComputedStyle(document.querySelector('thead')).display") == "table-header-group"
            assert not page.is_visible("form.filters") and not page.is_visible("p.downloads")
            assert len(_media_boxes(page.pdf(prefer_css_page_size=True))) >= 1
        finally:
            browser.close()
