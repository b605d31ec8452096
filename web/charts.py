"""Charts drawn on the server as SVG strings: no JavaScript library, nothing fetched by the browser."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

WINDOW_COLOURS = {"not_yet_open": "#b8c4d6", "open": "#2f7d4f", "closed": "#8a8f98"}
OPEN_ENDED = timedelta(days=30)
FONT = 'font-family="WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"'


@dataclass(frozen=True)
class Span:
    label: str
    opens: date
    closes: date | None  # None: open-ended (持续推进)
    window: str  # not_yet_open / open / closed


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" {FONT} font-size="12"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def timeline_svg(spans: Sequence[Span], today: date, *, width: int = 960, label_width: int = 120) -> str:
    """One bar per phase window on a shared date axis, and a red line at today."""
    row, top = 26, 24
    height = top + row * len(spans) + 10
    if not spans:
        return _svg(width, 30, ['<text x="4" y="20">无阶段</text>'], "阶段时间轴")
    start = min([s.opens for s in spans] + [today])
    end = max([s.closes or s.opens for s in spans] + [today]) + timedelta(days=1)
    if any(s.closes is None for s in spans):
        end += OPEN_ENDED  # an open-ended phase (持续推进) still gets a visible bar
    plot = width - label_width - 10

    def x(d: date) -> float:
        return label_width + (d - start).days / max((end - start).days, 1) * plot

    body = [f'<text x="{label_width}" y="14" fill="#555">{start:%Y-%m-%d}</text>']
    for i, s in enumerate(spans):
        y = top + i * row
        x0, x1 = x(s.opens), x((s.closes or end - timedelta(days=1)) + timedelta(days=1))
        colour = WINDOW_COLOURS.get(s.window, "#999")
        closes = f"{s.closes:%m-%d}" if s.closes else "长期"
        body.append(f'<text x="4" y="{y + 15}">{escape(s.label)}</text>')
        body.append(f'<rect class="window-{escape(s.window)}" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 2):.1f}" '
                    f'height="16" rx="3" fill="{colour}"><title>{escape(s.label)} {s.opens:%m-%d}~{closes}</title></rect>')
    tx = x(today)
    body.append(f'<line class="today" x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 4}" '
                'stroke="#d62728" stroke-width="2"/>')
    body.append(f'<text x="{tx + 3:.1f}" y="{top - 6}" fill="#d62728">今天 {today:%m-%d}</text>')
    return _svg(width, height, body, "阶段时间轴（红线为今天）")


def funnel_svg(steps: Sequence[tuple[str, int]], *, width: int = 360, label_width: int = 120) -> str:
    """Horizontal bars, one per state in order, each as long as its count relative to the largest."""
    row = 22
    if not steps:
        return _svg(width, 24, ['<text x="4" y="16" fill="#777">暂无数据</text>'], "各状态数量")
    top = max(n for _, n in steps) or 1
    plot = width - label_width - 40
    body: list[str] = []
    for i, (label, n) in enumerate(steps):
        y = i * row
        w = n / top * plot
        body.append(f'<text x="4" y="{y + 15}">{escape(label)}</text>')
        body.append(f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{w:.1f}" height="16" fill="#3b6ea5"/>')
        body.append(f'<text x="{label_width + w + 4:.1f}" y="{y + 15}">{n}</text>')
    return _svg(width, row * len(steps) + 4, body, "各状态数量")


@dataclass(frozen=True)
class Target:
    label: str  # e.g. "2025-12-31 目标"
    share: float  # 0..1
    current: bool  # the target in force today (the next one due, else the last): rows below it are marked


def coverage_svg(rows: Sequence[tuple[str, int, int]], *, targets: Sequence[Target] = (), width: int = 560,
                 label_width: int = 120) -> str:
    """Per row (district or kind): the covered part of its designated institutions, with n/total and %.

    Each target of the program is a dashed vertical line across every row, labelled above the bars; a
    row below the target in force is drawn in the warning colour (class "below-target").
    """
    row = 22
    if not rows:
        return _svg(width, 24, ['<text x="4" y="16" fill="#777">暂无定点机构</text>'], "覆盖率")
    top = 16 * len(targets)
    plot = width - label_width - 110
    in_force = next((t for t in targets if t.current), None)
    body: list[str] = []
    for i, (label, covered, total) in enumerate(rows):
        y = top + i * row
        share = covered / total if total else 0.0
        below = in_force is not None and share < in_force.share
        body.append(f'<text x="4" y="{y + 15}">{escape(label)}</text>')
        body.append(f'<rect x="{label_width}" y="{y + 3}" width="{plot}" height="16" fill="#e3e8ef"/>')
        body.append(f'<rect class="covered{" below-target" if below else ""}" x="{label_width}" y="{y + 3}" '
                    f'width="{share * plot:.1f}" height="16" fill="{"#c77c02" if below else "#2f7d4f"}"/>')
        body.append(f'<text x="{label_width + plot + 6}" y="{y + 15}">{covered}/{total}（{share:.0%}）</text>')
    bottom = top + row * len(rows)
    for k, t in enumerate(targets):
        x = label_width + t.share * plot
        colour = "#d62728" if t.current else "#7a5195"
        body.append(f'<line class="target" data-share="{t.share:.4f}" x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" '
                    f'y2="{bottom}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/>')
        body.append(f'<text x="{x + 3:.1f}" y="{12 + k * 16}" fill="{colour}">{escape(t.label)} {t.share:.0%}</text>')
    return _svg(width, bottom + 4, body, "定点机构覆盖率（虚线为目标）")


def violations_svg(rows: Sequence[tuple[str, int]], *, title: str, width: int = 460, label_width: int = 200) -> str:
    """Open violations per row (a rule in Chinese, or a district), bars relative to the largest count."""
    row = 22
    if not rows:
        return _svg(width, 24, ['<text x="4" y="16" fill="#777">没有未整改的违规</text>'], title)
    top = max(n for _, n in rows) or 1
    plot = width - label_width - 50
    body: list[str] = []
    for i, (label, n) in enumerate(rows):
        y = i * row
        w = n / top * plot
        body.append(f'<text x="4" y="{y + 15}">{escape(label)}</text>')
        body.append(f'<rect class="violations" data-label="{escape(label)}" data-count="{n}" x="{label_width}" '
                    f'y="{y + 3}" width="{w:.1f}" height="16" fill="#b03a2e"/>')
        body.append(f'<text x="{label_width + w + 4:.1f}" y="{y + 15}">{n}</text>')
    return _svg(width, row * len(rows) + 4, body, title)


@dataclass(frozen=True)
class TrendLine:
    """One scope's coverage over time (the program's total, or one institution kind): (day, share 0..1) points."""

    label: str
    points: Sequence[tuple[date, float]]
    main: bool = False  # the program's total: drawn thicker, and the one the projection continues


@dataclass(frozen=True)
class DatedTarget:
    by: date
    share: float  # 0..1
    current: bool


@dataclass(frozen=True)
class ProjectionLine:
    """The total's line continued at the rate of the last weeks, from today to `until` (the day `share` is reached,
    or the chart's end); `text` says when each target is reached or that it is not at this rate."""

    until: date
    share: float
    text: str


TREND_COLOURS = ("#1f4e79", "#2f7d4f", "#c77c02", "#7a5195", "#b03a2e", "#3b8ea5", "#8a6d3b", "#5c5c5c", "#d45087")


def coverage_trend_svg(lines: Sequence[TrendLine], *, today: date, targets: Sequence[DatedTarget] = (),
                       projection: ProjectionLine | None = None, width: int = 760, height: int = 300) -> str:
    """Coverage over time: a line per scope, each dated target a dashed line at its share up to its date (a dot
    on the date), and the projection dotted from today's total onwards. Drawn on the server; nothing fetched."""
    days = [d for line in lines for d, _ in line.points]
    if not days:
        return _svg(width, 24, ['<text x="4" y="16" fill="#777">暂无覆盖率数据</text>'], "覆盖率变化")
    legend_w, left, top, bottom = 150, 44, 14, 34
    start = min(days)
    end = max([today, *(t.by for t in targets), *([projection.until] if projection else [])]) + timedelta(days=7)
    plot_w, plot_h = width - left - legend_w - 10, height - top - bottom
    span = max((end - start).days, 1)

    def x(d: date) -> float:
        return left + (d - start).days / span * plot_w

    def y(share: float) -> float:
        return top + (1 - min(max(share, 0.0), 1.0)) * plot_h

    body: list[str] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{left + plot_w}" y2="{y(tick):.1f}" stroke="#e3e8ef"/>')
        body.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{tick:.0%}</text>')
    for d, anchor in ((start, "start"), (end, "end")):
        body.append(f'<text x="{x(d):.1f}" y="{height - 18}" text-anchor="{anchor}" fill="#555">{d:%Y-%m-%d}</text>')
    tx = x(today)
    body.append(f'<line class="today" x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{top + plot_h}" stroke="#d62728"/>')
    body.append(f'<text x="{tx:.1f}" y="{height - 4}" text-anchor="middle" fill="#d62728">今天 {today:%m-%d}</text>')
    for t in targets:
        colour = "#d62728" if t.current else "#7a5195"
        body.append(f'<line class="trend-target" data-by="{t.by.isoformat()}" data-share="{t.share:.4f}" '
                    f'x1="{left}" y1="{y(t.share):.1f}" x2="{x(t.by):.1f}" y2="{y(t.share):.1f}" stroke="{colour}" '
                    'stroke-width="1.5" stroke-dasharray="6 4"/>')
        body.append(f'<circle cx="{x(t.by):.1f}" cy="{y(t.share):.1f}" r="3.5" fill="{colour}"/>')
        body.append(f'<text x="{x(t.by) - 4:.1f}" y="{y(t.share) - 5:.1f}" text-anchor="end" fill="{colour}">'
                    f'{t.by:%Y-%m-%d} 目标 {t.share:.0%}</text>')
    for i, line in enumerate(lines):
        colour = TREND_COLOURS[0] if line.main else TREND_COLOURS[1 + (i - 1) % (len(TREND_COLOURS) - 1)]
        points = " ".join(f"{x(d):.1f},{y(s):.1f}" for d, s in sorted(line.points))
        body.append(f'<polyline class="trend-line" data-label="{escape(line.label)}" points="{points}" fill="none" '
                    f'stroke="{colour}" stroke-width="{3 if line.main else 1.5}"/>')
        ly = top + 6 + i * 18
        body.append(f'<line x1="{width - legend_w}" y1="{ly:.1f}" x2="{width - legend_w + 18}" y2="{ly:.1f}" '
                    f'stroke="{colour}" stroke-width="{3 if line.main else 1.5}"/>')
        last = sorted(line.points)[-1][1]
        body.append(f'<text x="{width - legend_w + 22}" y="{ly + 4:.1f}">{escape(line.label)} {last:.0%}</text>')
    main = next((line for line in lines if line.main), None)
    if projection is not None and main is not None:
        now = sorted(main.points)[-1][1]
        body.append(f'<line class="projection" data-until="{projection.until.isoformat()}" '
                    f'data-share="{projection.share:.4f}" x1="{tx:.1f}" y1="{y(now):.1f}" x2="{x(projection.until):.1f}" '
                    f'y2="{y(projection.share):.1f}" stroke="{TREND_COLOURS[0]}" stroke-width="2" '
                    'stroke-dasharray="2 3"><title>' + escape(projection.text) + "</title></line>")
    return _svg(width, height, body, "覆盖率变化（实线为实际，虚线为目标，点线为按近期速度的预测）")
STAGE_COLOURS = ("#3b6ea5", "#4f81b3", "#2f7d4f", "#3d8f5c", "#7a5195", "#a05195")


def stage_funnel_svg(stages: Sequence[tuple[str, int]], *, width: int = 560, label_width: int = 90) -> str:
    """The enrollment funnel: one centred bar per stage, as wide as its count against the first stage, with the
    count and the share of the stage before it (what was lost between two steps is what a manager chases)."""
    row = 30
    if not stages or not stages[0][1]:
        return _svg(width, 24, ['<text x="4" y="16" fill="#777">尚无申报</text>'], "参与漏斗")
    first = stages[0][1]
    plot = width - label_width - 150
    body: list[str] = []
    for i, (label, n) in enumerate(stages):
        y = i * row
        w = max(n / first * plot, 1.0)
        x = label_width + (plot - w) / 2
        body.append(f'<text x="4" y="{y + 19}">{escape(label)}</text>')
        body.append(f'<rect class="stage" data-stage="{escape(label)}" data-count="{n}" x="{x:.1f}" y="{y + 4}" '
                    f'width="{w:.1f}" height="22" fill="{STAGE_COLOURS[i % len(STAGE_COLOURS)]}"/>')
        share = "" if i == 0 or not stages[i - 1][1] else f"（上一步的 {n / stages[i - 1][1]:.0%}）"
        body.append(f'<text x="{label_width + plot + 6}" y="{y + 19}">{n}{share}</text>')
    return _svg(width, row * len(stages) + 4, body, "参与漏斗：申报 → 区县审核 → 市级审核 → 运行 → 注册 → 签约")


def trend_svg(series: Sequence[tuple[str, Sequence[tuple[date, int]]]], *, width: int = 760, height: int = 260,
              left: int = 50, right: int = 110) -> str:
    """One line per series over the days of the snapshots, a shared count axis from 0, a legend with each
    series' latest count; a single day is drawn as dots (there is no trend yet, but the figure is there)."""
    points = [p for _, s in series for p in s]
    if not points:
        return _svg(width, 24, ['<text x="4" y="16" fill="#777">尚无每日统计（程序流程每天记录一次）</text>'], "进展趋势")
    top, bottom = 14, height - 24
    first, last = min(d for d, _ in points), max(d for d, _ in points)
    days = max((last - first).days, 1)
    peak = max(max(n for _, n in points), 1)
    plot_w = width - left - right

    def x(d: date) -> float:
        return left + (d - first).days / days * plot_w

    def y(n: int) -> float:
        return bottom - n / peak * (bottom - top)

    body = [f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#999"/>',
            f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak}</text>',
            f'<text x="{left - 4}" y="{bottom}" text-anchor="end">0</text>',
            f'<text x="{left}" y="{height - 6}">{first:%Y-%m-%d}</text>',
            f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">{last:%Y-%m-%d}</text>']
    for i, (label, s) in enumerate(series):
        if not s:
            continue
        colour = STAGE_COLOURS[i % len(STAGE_COLOURS)]
        coords = " ".join(f"{x(d):.1f},{y(n):.1f}" for d, n in s)
        if len(s) > 1:
            body.append(f'<polyline class="trend" data-series="{escape(label)}" points="{coords}" fill="none" '
                        f'stroke="{colour}" stroke-width="2"/>')
        body += [f'<circle cx="{x(d):.1f}" cy="{y(n):.1f}" r="2.5" fill="{colour}"><title>{escape(label)} '
                 f'{d:%Y-%m-%d}：{n}</title></circle>' for d, n in s]
        # A legend beside the plot, not labels at the line ends: stages often end on the same count and overlap.
        ly = top + 6 + i * 18
        body.append(f'<rect x="{left + plot_w + 12}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{left + plot_w + 26}" y="{ly + 1}" fill="{colour}">{escape(label)} {s[-1][1]}</text>')
    return _svg(width, height, body, "进展趋势（每日统计）")
