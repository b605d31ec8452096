"""The overview draws the funnel 申报 → … → 签约 and each stage's trend from the daily snapshots, on the server, and
keeps batch counts off the applications' bars (issue 19)."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tasks.reports.progress import take_snapshot
from tests.factories import shanghai
from tests.web.conftest import SLUG, World, sign_in


def test_the_overview_draws_the_funnel_and_the_trend_of_the_daily_snapshots(world: World, client: TestClient) -> None:
    world.clock.set(shanghai(2025, 9, 18, 9))
    take_snapshot(world.engine, SLUG, clock=world.clock)
    world.clock.set(shanghai(2025, 9, 20, 9))
    sign_in(client, "manager")
    page = client.get(f"/programs/{SLUG}").text
    funnel = page.split('id="stage-funnel"')[1].split("</figure>")[0]
    stages = re.findall(r'data-stage="([^"]+)" data-count="(\d+)"', funnel)
    assert stages == [("申报", "4"), ("区县审核", "0"), ("市级审核", "0"), ("运行", "0"), ("注册", "0"), ("签约", "0")]
    trend = page.split('id="trend"')[1].split("</figure>")[0]
    assert trend.count("<polyline") == 6 and 'data-series="申报"' in trend  # two days: a line per stage
    assert "2025-09-18" in trend and "2025-09-20" in trend and "<script" not in page.split('id="progress"')[1]
    enrollment = page.split('data-phase="enrollment"')[1].split("</figure>")[0]
    assert enrollment.count("<svg") == 2 and "批次（不含空批次）" in enrollment  # batches drawn on their own bars
