"""The overview as policy: coverage drawn against the program's targets, laggards counted as the reminders
count them, figures recomputed whenever the data or the day changes — and only then."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert, select
from sqlmodel import Session, col
from starlette.testclient import TestClient

from models.enrollment import Institution
from models.operations import Contract
from models.program import Program
from models.program_definition import ProgramDefinition
from models.states import ContractState
from tasks.platform.laggards import laggards
from tasks.programs import get_program
from tasks.status import laggard_page
from tests.factories import make_enterprise, shanghai
from tests.web.conftest import SLUG, World, csrf_of, sign_in
from tests.web.test_pages import _run_to_published_list
from web.pages_overview import targets_of

PROGRAMS = Path(__file__).resolve().parents[2] / "deploy" / "programs"


def _with_targets(world: World, targets: list[dict[str, Any]]) -> None:
    with Session(world.engine) as session:
        program = session.execute(select(Program).where(col(Program.slug) == SLUG)).scalar_one()
        definition = dict(program.definition)
        definition["rules"] = {**definition["rules"], "coverage_targets": targets}
        program.definition = definition
        program.content_hash = "edited-in-test"
        session.add(program)
        session.commit()


def test_jiangxis_file_carries_its_seeds_targets_and_the_next_one_is_in_force() -> None:
    defn = ProgramDefinition.model_validate(yaml.safe_load((PROGRAMS / "jiangxi-2025.yaml").read_text("utf-8")))
    assert [(t.label, t.share, t.current) for t in targets_of(defn, date(2025, 10, 1))] == [
        ("2025-12-31 目标", 0.8, True), ("2026-12-31 目标", 0.9, False)]
    assert [t.current for t in targets_of(defn, date(2026, 1, 5))] == [False, True]
    assert [t.current for t in targets_of(defn, date(2027, 3, 1))] == [False, True]  # all past: the last holds


def test_coverage_is_drawn_against_the_target_lines(world: World, client: TestClient) -> None:
    _with_targets(world, [{"by": "2025-12-31", "share": "0.80"}, {"by": "2026-12-31", "share": "0.90"}])
    sign_in(client, "manager")
    page = client.get(f"/programs/{SLUG}").text
    assert page.count('class="target" data-share="0.8000"') == 2  # by district and by kind
    assert page.count('class="target" data-share="0.9000"') == 2
    assert "2025-12-31 目标 80%" in page and "（当前）" in page
    trend = page[page.index('id="coverage-trend"'):]  # the line over time: total and each kind, targets dashed
    assert trend.count('class="trend-target"') == 2 and 'class="trend-line" data-label="合计"' in trend
    assert "按当前速度无法达到" in trend  # nobody approved yet: no rate
    assert page.count("below-target") == 4  # 和平区, 沈河区, and both kinds: nobody approved yet
    _run_to_published_list(world, client)  # every institution runs: 100 % everywhere
    after = client.get(f"/programs/{SLUG}").text
    assert "below-target" not in after and "4 / 4（100%）" in after


def test_a_program_without_targets_says_so_and_draws_no_line(world: World, client: TestClient) -> None:
    sign_in(client, "manager")
    page = client.get(f"/programs/{SLUG}").text
    assert "未设定有时限的覆盖率目标" in page and 'class="target"' not in page


def _late_world(world: World, client: TestClient) -> None:
    """Everyone runs; two institutions owe contracts to two enterprises; the accounts window has closed."""
    _run_to_published_list(world, client)
    first, second = make_enterprise(world.engine), make_enterprise(world.engine)
    with Session(world.engine) as session:
        ids = sorted(session.execute(select(Institution.id)).scalars())  # type: ignore[call-overload]
        session.execute(insert(Contract), [
            {"program_id": world.program.id, "institution_id": i, "enterprise_id": e.id, "year": 2025,
             "state": ContractState.PENDING, "due_on": due, "agreed_volumes": {}}
            for i, e, due in ((ids[0], first, date(2025, 11, 30)), (ids[0], second, date(2025, 11, 20)),
                              (ids[1], first, date(2025, 12, 10)))])
        session.commit()
    world.clock.set(shanghai(2025, 12, 8, 9))


def test_laggards_are_counted_and_ordered_as_the_reminders_see_them(world: World, client: TestClient) -> None:
    _late_world(world, client)
    expected = laggards(world.engine, SLUG, clock=world.clock)
    with Session(world.engine) as session:
        program, defn = get_program(session, SLUG)
        page = laggard_page(session, program.id or 0, defn, world.clock.today(), limit=100)
    assert [(r.what, r.institution_id, r.due_on, r.overdue, r.working_days_late, r.working_days_left)
            for r in page.rows] == [(g.what, g.institution_id, g.due_on, g.overdue, g.days_late, g.working_days_left)
                                    for g in expected]
    assert page.total == len(expected) and page.counts["contract"] == {"overdue": 1, "due_soon": 1}
    contract = next(r for r in page.rows if r.what == "contract" and r.overdue)
    assert contract.detail == "、".join(sorted(next(g for g in expected if g.what == "contract"
                                                  and g.overdue).enterprises))
    overview = client.get(f"/programs/{SLUG}").text  # signed in as the manager since the city gate
    assert "购销协议未签订</a>：逾期 <b class=\"late\">1</b> 家" in overview and "逾期 6 个工作日" in overview


def test_the_laggards_page_pages_and_filters(world: World, client: TestClient) -> None:
    _late_world(world, client)
    first = client.get(f"/programs/{SLUG}/laggards?per_page=2").text
    assert "第 1 页 / 共 3 页（6 条）" in first
    contracts = client.get(f"/programs/{SLUG}/laggards?what=contract").text
    assert contracts.count("购销协议未签订（") == 2 and "平台账户未注册</td>" not in contracts
    assert "没有滞后的机构" in client.get(f"/programs/{SLUG}/laggards?district=浑南区").text
    assert client.get(f"/programs/{SLUG}/laggards?what=bogus").status_code == 400


def test_figures_are_recomputed_when_the_data_or_the_day_changes_and_only_then(world: World,
                                                                                client: TestClient) -> None:
    cache = client.app.state.web.overviews  # type: ignore[attr-defined]
    sign_in(client, "manager")
    before = client.get(f"/programs/{SLUG}").text
    client.get(f"/programs/{SLUG}")
    assert cache.computed == 1
    gate = world.district_gate("和平区")
    client.cookies.clear()
    sign_in(client, world.reviewers["和平区"])
    client.post("/inbox/decide", data={"gate": [str(gate.id)], "bulk": "approve", "csrf_token": csrf_of(client, "/inbox")})
    after = client.get(f"/programs/{SLUG}").text
    assert cache.computed == 2
    assert _count(before, "district_approved") == 0 and _count(after, "district_approved") == len(gate.items)
    world.clock.set(shanghai(2025, 9, 21, 9))
    client.get(f"/programs/{SLUG}")
    assert cache.computed == 3


def _count(page: str, state: str) -> int:
    match = re.search(rf'figure class="funnel" data-phase="enrollment".*?data-state="{state}">[^<]*<b>(\d+)</b>',
                      page, re.S)
    return int(match.group(1)) if match else 0


def test_an_expired_overview_of_unchanged_data_is_served_at_once_and_recomputed_behind_the_view(world: World) -> None:
    """Only a change the token sees makes a view wait for the figures; the TTL's refresh runs in a thread (a laggards
    download that fell on an expired entry waited seconds for its first byte, issue #19)."""
    import time

    from web.snapshots import OverviewCache

    cache = OverviewCache(ttl_seconds=0.0)  # every entry is expired as soon as it is stored
    first = cache.get(world.engine, SLUG, world.clock, simulated=True)
    assert cache.get(world.engine, SLUG, world.clock, simulated=True) is first and cache.computed >= 1
    deadline = time.monotonic() + 60
    while cache.computed < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.computed >= 2  # recomputed behind the view
    world.clock.set(shanghai(2025, 9, 21, 9))  # the day changes: the next view waits for new figures
    moved = cache.get(world.engine, SLUG, world.clock, simulated=True)
    assert moved is not first and moved.status.today.isoformat() == "2025-09-21"
