"""In the real browser: the violations page prints on A4 without navigation, filters or pager, its table's header
repeated on every page, and downloads its rows as XLSX (issue #19). Debian's Chromium, as test_browser_print.py;
skipped, saying why, without it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.web.conftest import World
from tests.web.test_browser_print import A4_POINTS, ARGS, CHROMIUM, _media_boxes, _sign_in, site  # noqa: F401
from tests.web.test_violations_page import _violations

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


def test_the_violations_page_prints_on_a4_and_downloads_as_xlsx(site: tuple[str, World],  # noqa: F811
                                                                tmp_path: Path) -> None:
    base, world = site
    _violations(world)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page: Any = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True)
            _sign_in(page, base, "manager")
            page.click("header.top nav a[href='/violations']")  # from the navigation bar
            page.wait_for_selector("table.violations")
            assert page.locator("table.violations tbody tr").count() == 5
            with page.expect_download() as download:
                page.click("a[data-export=xlsx]")
            saved = tmp_path / download.value.suggested_filename
            download.value.save_as(saved)
            assert saved.suffix == ".xlsx" and "违规记录" in saved.name
            rows = list(openpyxl.load_workbook(io.BytesIO(saved.read_bytes()), read_only=True).active
                        .iter_rows(values_only=True))
            assert rows[1][0] == "发现日期" and len(rows) == 2 + 5

            page.emulate_media(media="print")
            for hidden in ("header.top", "nav.pager", "form.filters", "p.downloads"):
                assert not page.is_visible(hidden), hidden
            assert page.evaluate("getComputedStyle(document.querySelector('table.violations thead')).display") \
                == "table-header-group"
            printable = 210 - 2 * 12  # mm: A4 less app.css's @page margins
            page.set_viewport_size({"width": round(printable / 25.4 * 96), "height": 1100})
            width_px = page.evaluate("document.documentElement.scrollWidth")
            assert width_px <= round(printable / 25.4 * 96) + 1, f"{width_px}px is wider than A4's printable width"
            boxes = _media_boxes(page.pdf(prefer_css_page_size=True, print_background=True))
            assert boxes and all(abs(w - A4_POINTS[0]) < 2 and abs(h - A4_POINTS[1]) < 2 for w, h in boxes), boxes
        finally:
            browser.close()
