"""The SVG charts are pure functions: well-formed XML, today's line where today is, bars to scale, text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

from models.coverage import project
from tasks.reports.coverage_report import CoverageLine, CoverageReport
from web.charts import Span, coverage_svg, funnel_svg, stage_funnel_svg, timeline_svg, trend_svg
from web.pages_overview import trend_chart

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_the_timeline_draws_one_bar_per_phase_and_the_today_line_inside_the_axis() -> None:
    spans = [Span("联盟邀请", date(2025, 8, 1), date(2025, 8, 31), "closed"),
             Span("机构申报", date(2025, 9, 1), date(2025, 9, 30), "open"),
             Span("持续推进", date(2025, 10, 1), None, "not_yet_open")]
    root = _parse(timeline_svg(spans, date(2025, 9, 15), width=760, label_width=120))
    bars = root.findall("svg:rect", NS)
    assert [b.get("class") for b in bars] == ["window-closed", "window-open", "window-not_yet_open"]
    (line,) = root.findall("svg:line[@class='today']", NS)
    x = float(line.get("x1") or 0)
    open_bar = bars[1]
    assert float(open_bar.get("x") or 0) < x < float(open_bar.get("x") or 0) + float(open_bar.get("width") or 0)


def test_a_today_before_every_window_is_still_on_the_axis() -> None:
    root = _parse(timeline_svg([Span("机构申报", date(2025, 9, 1), date(2025, 9, 30), "not_yet_open")], date(2025, 8, 1)))
    (line,) = root.findall("svg:line", NS)
    assert float(line.get("x1") or 0) == 120.0  # the axis starts at today


def test_funnel_bars_are_proportional_to_the_largest_count() -> None:
    root = _parse(funnel_svg([("待审", 10), ("区县已审", 5), ("已批准", 0)], width=360, label_width=120))
    widths = [float(r.get("width") or 0) for r in root.findall("svg:rect", NS)]
    assert widths == [200.0, 100.0, 0.0]


def test_coverage_shows_share_and_counts_and_survives_an_empty_district() -> None:
    svg = coverage_svg([("和平区", 3, 4), ("沈河区", 0, 0)])
    assert "3/4（75%）" in svg and "0/0（0%）" in svg
    _parse(svg)


def test_labels_are_escaped() -> None:
    svg = funnel_svg([("<script>alert(1)</script>", 1)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    _parse(svg)


def test_empty_charts_say_so() -> None:
    assert "暂无数据" in funnel_svg([])
    assert "暂无定点机构" in coverage_svg([])
    assert "无阶段" in timeline_svg([], date(2025, 9, 1))


def _line(key: str, label: str, series: list[tuple[date, int]], total: int, today: date) -> CoverageLine:
    targets = [(date(2025, 12, 31), Decimal("0.80")), (date(2026, 12, 31), Decimal("0.90"))]
    return CoverageLine(key, label, series[-1][1], total, series,
                        [project(series, total, by, share, today, 4) for by, share in targets])


def test_coverage_over_time_is_a_line_per_scope_with_dashed_targets_and_the_projection_to_the_day_reached() -> None:
    today = date(2025, 11, 1)
    # 100 designated, 4 more every week: 16 in the last 4 weeks, 4/7 a day; 80 % needs 80, 24 to go → 42 days.
    total = _line("total", "合计", [(today - timedelta(weeks=w), 56 - 4 * w) for w in range(8, -1, -1)], 100, today)
    pharmacies = _line("chain_pharmacy", "连锁药店", [(today - timedelta(weeks=w), 10) for w in range(4, -1, -1)], 20,
                       today)
    report = CoverageReport("jiangxi-2025", "江西", today, 4, None, 0, total, [], [pharmacies])
    svg, sentence = trend_chart(report)
    _parse(svg)  # well-formed
    assert re.findall(r'class="trend-line" data-label="([^"]+)"', svg) == ["合计", "连锁药店"]
    assert re.findall(r'class="trend-target" data-by="([^"]+)" data-share="([^"]+)"', svg) == [
        ("2025-12-31", "0.8000"), ("2026-12-31", "0.9000")]
    assert svg.count('stroke-dasharray="6 4"') == 2  # the targets dashed
    assert re.findall(r'class="projection" data-until="([^"]+)" data-share="([^"]+)"', svg) == [
        ((today + timedelta(days=42)).isoformat(), "0.8000")]
    assert sentence == "2025-12-31 目标 80%：预计 2025-12-13 达到，尚差 24 家 / reached on 2025-12-13; 24 institutions to go"
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # offline


def test_with_nobody_joining_the_projection_is_flat_and_says_not_at_this_rate() -> None:
    today = date(2025, 11, 1)
    flat = _line("total", "合计", [(today - timedelta(weeks=w), 30) for w in range(4, -1, -1)], 100, today)
    svg, sentence = trend_chart(CoverageReport("jiangxi-2025", "江西", today, 4, None, 0, flat, [], []))
    assert re.findall(r'class="projection" data-until="([^"]+)" data-share="([^"]+)"', svg) == [
        ("2026-02-25", "0.3000")]  # the target day plus the horizon of 8 weeks, still 30 %
    assert sentence.startswith("2025-12-31 目标 80%：按当前速度无法达到，尚差 50 家")


def test_a_program_without_targets_draws_its_lines_and_no_target_or_projection() -> None:
    today = date(2025, 11, 1)
    line = CoverageLine("total", "合计", 5, 10, [(today, 5)], [])
    svg, sentence = trend_chart(CoverageReport("shenyang-2025", "沈阳", today, 4, None, 0, line, [], []))
    assert 'class="trend-line"' in svg and "trend-target" not in svg and 'class="projection"' not in svg
    assert sentence == "项目文件未设定有时限的覆盖率目标。"
def test_the_stage_funnel_shows_each_stage_with_its_share_of_the_one_before() -> None:
    svg = stage_funnel_svg([("申报", 200), ("区县审核", 150), ("市级审核", 0)])
    assert 'data-stage="申报" data-count="200"' in svg and "150（上一步的 75%）" in svg
    assert ">0（上一步的 0%）<" in svg  # a stage nobody reached still shows, as a sliver
    assert "尚无申报" in stage_funnel_svg([("申报", 0)])


def test_the_trend_draws_a_line_per_series_and_dots_for_a_single_day() -> None:
    two_days = trend_svg([("申报", [(date(2025, 9, 18), 3), (date(2025, 9, 20), 7)]), ("运行", [])])
    assert two_days.count("<polyline") == 1 and "申报 7" in two_days and "2025-09-18" in two_days
    one_day = trend_svg([("申报", [(date(2025, 9, 20), 7)])])
    assert "<polyline" not in one_day and one_day.count("<circle") == 1
    assert "尚无每日统计" in trend_svg([("申报", [])])
