"""The publication flow under Prefect's test harness: it publishes a change once and then writes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.clock_store import DatabaseClock
from core.settings import get_settings
from flows.publication import publication_flow, publish_step
from tests.factories import make_institution, make_program, make_running_application, shanghai

pytestmark = pytest.mark.prefect
SLUG = "shenyang-2025"


def test_publication_flow_publishes_on_change_and_repeats_nothing(
        engine: Engine, database_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANJIN_HOME", str(tmp_path))  # the flow writes under SANJIN_HOME/out
    get_settings.cache_clear()
    program = make_program(engine, SLUG)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 10, 9, 10))

    def join(name: str) -> None:
        make_running_application(engine, program, make_institution(engine, name=name),
                                 running_at=shanghai(2025, 9, 30, 9))

    join("沈阳市和平区南湖社区卫生服务中心")
    first = asyncio.run(publication_flow(SLUG))
    assert first["drugs"]["outcome"] == "empty"
    assert (first["institutions"]["outcome"], first["institutions"]["version"]) == ("published", 1)
    site = tmp_path / "out" / SLUG
    assert Path(first["institutions"]["index"]) == site / "index.html"
    assert Path(first["institutions"]["files"]["xlsx"]).exists()

    again = asyncio.run(publication_flow(SLUG))
    assert (again["institutions"]["outcome"], again["institutions"]["rendered"]) == ("unchanged", [])

    join("国药控股沈阳大药房")
    clock.set(shanghai(2025, 10, 10, 10))
    changed = asyncio.run(publication_flow(SLUG))
    assert (changed["institutions"]["outcome"], changed["institutions"]["version"]) == ("published", 2)
    assert changed["institutions"]["rendered"] == [2]
    assert "第2版（最新）" in (site / "index.html").read_text(encoding="utf-8")
    assert publish_step.name == "publish-lists" and publish_step.retries == 2
