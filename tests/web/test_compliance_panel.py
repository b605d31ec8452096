"""The overview's 合规检查 panel: open violations drawn by rule and by district, in Chinese, and a district
reviewer sees only its own districts' counts."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tasks.compliance.compliance_pass import run_compliance_pass
from tests.factories import clock_at, make_enterprise, make_institution, make_order, make_product, shanghai
from tests.web.conftest import SLUG, World, sign_in

BAR = re.compile(r'class="violations" data-label="([^"]+)" data-count="(\d+)"')


def _late_orders(world: World) -> None:
    """Undelivered orders past the 72 h: two in 和平区, one in 沈河区 (three late: the enterprise's pattern too)."""
    product = make_product(world.engine, make_enterprise(world.engine))
    for district in ("和平区", "和平区", "沈河区"):
        inst = make_institution(world.engine, district=district)
        make_order(world.engine, world.program, inst, product, ordered_at=shanghai(2025, 12, 1, 9))
    run_compliance_pass(world.engine, SLUG, clock=clock_at(2025, 12, 10, 8))


def _bars(page: str, chart: str) -> dict[str, int]:
    start = page.index(f'id="{chart}"')
    section = page[start:page.index("</figure>", start)]
    return {label: int(n) for label, n in BAR.findall(section)}


def test_the_overview_draws_open_violations_by_rule_and_district_in_chinese(world: World, client: TestClient) -> None:
    _late_orders(world)
    sign_in(client, "manager")
    page = client.get(f"/programs/{SLUG}").text
    assert "合规检查：未整改违规 4 项" in page
    assert _bars(page, "violations-by-rule") == {"超时配送": 3, "企业多次超时或拒绝配送": 1}
    assert _bars(page, "violations-by-district") == {"和平区": 2, "沈河区": 1, "（企业、产品，不属区县）": 1}
    panel = page[page.index('id="compliance"'):page.index('id="laggards"')]
    assert "late_delivery" not in panel and "delivery_pattern" not in panel  # no raw rule code shown


def test_a_district_reviewer_sees_only_its_districts_violations(world: World, client: TestClient) -> None:
    _late_orders(world)
    sign_in(client, world.reviewers["沈河区"])
    page = client.get(f"/programs/{SLUG}").text
    assert "合规检查：未整改违规 1 项（仅本人负责的区县）" in page
    assert _bars(page, "violations-by-rule") == {"超时配送": 1}
    assert _bars(page, "violations-by-district") == {"沈河区": 1}


def test_without_violations_the_panel_says_so(world: World, client: TestClient) -> None:
    sign_in(client, "manager")
    page = client.get(f"/programs/{SLUG}").text
    assert "合规检查：未整改违规 0 项" in page and "没有未整改的违规" in page
