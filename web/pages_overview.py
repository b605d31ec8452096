"""The program list and one program's overview: timeline, funnels, coverage, laggards, open violations.

Every figure on the overview is counted by the database (tasks/status.py) and kept until the data
changes (web/snapshots.py); only the most late laggards are listed there, the rest page by page on
the laggards page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core.clock_store import DatabaseClock
from models.labels import FUNNEL_STAGE_LABELS, LAGGARD_LABELS, SHORT_PHASES, STATE_LABELS, VIOLATION_LABELS
from models.program import Program, User
from models.program_definition import ProgramDefinition
from models.progress import FUNNEL
from models.states import KIND_LABELS, InstitutionKind, Role
from tasks.gates.districts import ProgramGates, program_gates
from tasks.platform.laggard_seek import LaggardKey
from tasks.programs import UnknownProgram, get_program, list_programs
from tasks.reports.coverage_report import CoverageLine, CoverageReport
from tasks.status import LAGGARD_KINDS, LaggardRow, laggard_page, summed
from tasks.trust.scope import districts_of, may_see_district
from web.auth import require_user
from web.charts import (
    DatedTarget,
    ProjectionLine,
    Span,
    Target,
    TrendLine,
    coverage_svg,
    coverage_trend_svg,
    funnel_svg,
    stage_funnel_svg,
    timeline_svg,
    trend_svg,
    violations_svg,
)
from web.exports import CHUNK, chunk_size, export_format, stream
from web.pagination import page_of
from web.render import page, web
from web.snapshots import OVERVIEW_LAGGARDS

_ORDER = {state: i for i, state in enumerate(STATE_LABELS)}


@dataclass(frozen=True)
class ProgramRow:
    """A program on the home page: where it stands today and what needs attention."""

    program: Program
    phases: list[str]  # the phases whose window is open today, in the program's words
    gates: ProgramGates


def _bars(counts: dict[str, int]) -> str:
    return funnel_svg([(STATE_LABELS.get(k, k), n)
                       for k, n in sorted(counts.items(), key=lambda kv: (_ORDER.get(kv[0], 99), kv[0]))])


def _split_bars(counts: dict[str, int]) -> tuple[str, str]:
    """A phase's states as bars, and its batches as bars of their own: batches are not applications, so they never
    share an axis with them ("" where a phase has none of either)."""
    batches = {k: n for k, n in counts.items() if k.startswith("batch_")}
    items = {k: n for k, n in counts.items() if k not in batches}
    return (_bars(items) if items or not batches else ""), (_bars(batches) if batches else "")


def home(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    today = ctx.clock.today()
    rows = []
    with Session(ctx.engine) as session:
        for program in list_programs(ctx.engine):  # a handful of programs: one grouped read each
            defn = ProgramDefinition.model_validate(program.definition)
            assert program.id is not None
            phases = [SHORT_PHASES.get(p.name.value, p.display_label) for p in defn.timeline()
                      if p.window.state_on(today) == "open"]
            rows.append(ProgramRow(program, phases, program_gates(session, program.id, defn, today)))
    return page(request, "programs.html", user, programs=rows)


def targets_of(defn: ProgramDefinition, today: date) -> list[Target]:
    """The program's coverage targets (rules.coverage_targets, each citing its seed in the program file).

    The one in force is the next not yet past, or the last once all are past.
    """
    targets = sorted(defn.rules.coverage_targets, key=lambda t: t.by)
    current = next((t for t in targets if t.by >= today), targets[-1] if targets else None)
    return [Target(f"{t.by:%Y-%m-%d} 目标", float(t.share), t is current) for t in targets]


PROJECTION_HORIZON = timedelta(weeks=8)  # how far past today (or the last target) the projection is drawn


def _shares(line: CoverageLine) -> list[tuple[date, float]]:
    """The line's counts as shares of today's designated institutions (the series counts against that version)."""
    return [(d, n / line.total if line.total else 0.0) for d, n in line.series]


def trend_chart(report: CoverageReport) -> tuple[str, str]:
    """The overview's coverage-over-time chart and the sentence under it.

    A line for the program's total and one per institution kind; each dated target a dashed line; the total
    continued dotted at the rate of the last weeks up to the day the target in force is reached (or, when it
    is not reached by then, to the chart's horizon), as models/coverage.py projects it.
    """
    today, total = report.today, report.total
    lines = [TrendLine("合计", _shares(total), main=True), *(TrendLine(k.label, _shares(k)) for k in report.by_kind)]
    in_force = next((p for p in total.projections if p.by >= today), total.projections[-1] if total.projections else None)
    targets = [DatedTarget(p.by, float(p.share), p is in_force) for p in total.projections]
    projection: ProjectionLine | None = None
    sentence = "项目文件未设定有时限的覆盖率目标。"
    if in_force is not None:
        sentence = f"{in_force.by:%Y-%m-%d} 目标 {float(in_force.share):.0%}：{in_force.describe()}"
    if in_force is not None and not in_force.met and total.total:
        horizon = max(today, in_force.by) + PROJECTION_HORIZON
        if in_force.reached_on is not None and in_force.reached_on <= horizon:
            projection = ProjectionLine(in_force.reached_on, in_force.needed / total.total, in_force.describe())
        else:
            at_horizon = total.covered + float(in_force.rate_per_day) * (horizon - today).days
            projection = ProjectionLine(horizon, at_horizon / total.total, in_force.describe())
    return coverage_trend_svg(lines, today=today, targets=targets, projection=projection), sentence


NO_DISTRICT = "（企业、产品，不属区县）"


@dataclass(frozen=True)
class CompliancePanel:
    """Open violations by rule and by district, as the viewer may see them (a reviewer: its districts only)."""

    by_rule: list[tuple[str, int]]
    by_district: list[tuple[str, int]]
    total: int
    scoped: bool
    rule_chart: str
    district_chart: str


def compliance_panel(counts: dict[tuple[str, str | None], int], user: User) -> CompliancePanel:
    """The overview's 合规检查 panel from the cached counts; a district reviewer sees only its districts' rows."""
    scoped = user.role == Role.DISTRICT_REVIEWER
    mine = {k: n for k, n in counts.items() if not scoped or (k[1] is not None and k[1] in user.districts)}
    by_rule: dict[str, int] = {}
    by_district: dict[str, int] = {}
    for (rule, district), n in mine.items():
        label = VIOLATION_LABELS.get(rule, rule)
        by_rule[label] = by_rule.get(label, 0) + n
        by_district[district or NO_DISTRICT] = by_district.get(district or NO_DISTRICT, 0) + n
    rules = sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))
    districts = sorted(by_district.items(), key=lambda kv: (kv[0] == NO_DISTRICT, -kv[1], kv[0]))
    return CompliancePanel(rules, districts, sum(mine.values()), scoped,
                           violations_svg(rules, title="未整改违规（按规则）"),
                           violations_svg(districts, title="未整改违规（按区县）", label_width=170))


def overview(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    slug = request.path_params["slug"]
    simulated = isinstance(ctx.clock, DatabaseClock) and ctx.clock.simulated() is not None
    try:
        data = ctx.overviews.get(ctx.engine, slug, ctx.clock, simulated=simulated)
    except UnknownProgram as exc:
        raise HTTPException(404, f"没有项目 {slug}") from exc
    status = data.status
    timeline = timeline_svg([Span(SHORT_PHASES.get(p.phase, p.label), p.opens, p.closes, p.window)
                             for p in status.phases], status.today)
    funnels = [(p, *_split_bars(p.counts)) for p in status.phases]
    stages = [(FUNNEL_STAGE_LABELS[s.value], data.funnel.get(s.value, 0)) for s in FUNNEL]
    trend = trend_svg([(FUNNEL_STAGE_LABELS[s.value], [(day, counts.get(s.value, 0)) for day, counts in data.trend])
                       for s in FUNNEL])
    late = data.laggards
    with Session(ctx.engine) as session:
        program, defn = get_program(session, slug)
        if (mine := districts_of(user)) is not None:  # a district reviewer: its own districts' laggards
            late = laggard_page(session, program.id or 0, defn, status.today, district=mine, limit=OVERVIEW_LAGGARDS)
    targets = targets_of(defn, status.today)
    cover = data.coverage
    kinds = [(KIND_LABELS.get(InstitutionKind(r.key), r.key), r.covered, r.total) for r in cover.by_kind]
    coverage_chart, trend_text = trend_chart(data.coverage_trend)
    return page(request, "overview.html", user, status=status, timeline=timeline, funnels=funnels,
                trend_chart=coverage_chart, trend_text=trend_text,
                stage_funnel=stage_funnel_svg(stages), stages=stages, trend=trend,
                district_chart=coverage_svg([(r.key, r.covered, r.total) for r in cover.by_district], targets=targets),
                kind_chart=coverage_svg(kinds, targets=targets), cover=cover, targets=targets,
                late=late, laggard_labels=LAGGARD_LABELS, computed=data,
                compliance=compliance_panel(data.violations, user))


LAGGARD_COLUMNS = ("机构", "区县", "医保编码", "事项", "截止日期", "滞后")


def laggard_cells(r: LaggardRow) -> tuple[str, ...]:
    """One laggard as the page's row reads it (the XLSX and CSV of the laggards page)."""
    what = LAGGARD_LABELS[r.what] + (f"（{r.detail}）" if r.detail else "")
    due = f"{r.due_on:%Y-%m-%d}" + ("（暂定）" if r.due_provisional else "")
    late = f"逾期 {r.working_days_late} 个工作日" if r.overdue else f"剩余 {r.working_days_left} 个工作日"
    return (r.name, r.district, r.insurance_code, what, due, late)


def laggards(request: Request) -> Response:
    """Every laggard of a program, page by page, filterable by kind and district."""
    ctx = web(request)
    user = require_user(request, ctx.engine)
    slug = request.path_params["slug"]
    q = {k: (request.query_params.get(k) or "").strip() for k in ("what", "district")}
    if q["what"] and q["what"] not in LAGGARD_KINDS:
        raise HTTPException(400, f"未知的滞后类型：{q['what']}")
    mine = districts_of(user)
    if q["district"] and not may_see_district(user, q["district"]):
        raise HTTPException(403, f"无权查看{q['district']}的滞后机构（仅限本人负责的区县）")
    pager = page_of(f"/programs/{slug}/laggards", request.query_params, q, keyset=True)
    fmt = export_format(request)
    simulated = isinstance(ctx.clock, DatabaseClock) and ctx.clock.simulated() is not None
    try:  # the overview's counts per district (kept until the data changes) serve every filter
        shown = [q["district"]] if q["district"] else mine
        known = summed(ctx.overviews.get(ctx.engine, slug, ctx.clock, simulated=simulated).laggards_by_district, shown)
        with Session(ctx.engine) as session:
            program, defn = get_program(session, slug)
            assert program.id is not None
            late = laggard_page(session, program.id, defn, ctx.clock.today(), what=q["what"] or None,
                                district=q["district"] or mine, limit=chunk_size(True) if fmt else pager.per_page,
                                counts=known, offset=0 if pager.seek or fmt else pager.offset,
                                from_end=pager.last and not fmt, after=None if fmt else _laggard_key(pager.after),
                                before=None if fmt else _laggard_key(pager.before))
    except UnknownProgram as exc:
        raise HTTPException(404, f"没有项目 {slug}") from exc
    if fmt:  # every laggard of the filter, streamed a chunk (read by key) at a time
        pid, today, first = program.id, ctx.clock.today(), late

        def chunks() -> Iterator[list[tuple[str, ...]]]:
            late, size = first, chunk_size(True)
            with Session(ctx.engine) as session:
                while late.rows:
                    yield [laggard_cells(r) for r in late.rows]
                    if len(late.rows) < size:
                        return
                    size = CHUNK
                    late = laggard_page(session, pid, defn, today, what=q["what"] or None,
                                        district=q["district"] or mine, limit=CHUNK, counts=late.counts,
                                        after=_key_of(late.rows[-1]))

        return stream(fmt, f"{slug}-滞后机构", f"{program.name} 进度滞后的机构", LAGGARD_COLUMNS, chunks(), today)
    keys = [(f"{r.due_on:%Y-%m-%d}", *_key_of(r)[1:]) for r in late.rows]
    pager = pager.counted(late.total).keyed(keys, len(keys))  # counted: the links follow the total
    return page(request, "laggards.html", user, program=program, late=late, pager=pager, q=q,
                laggard_labels=LAGGARD_LABELS,
                districts=[d.name for d in defn.districts if may_see_district(user, d.name)])


def _laggard_key(key: tuple[object, ...] | None) -> LaggardKey | None:
    """A laggards cursor (ISO deadline, kind, district, code, id) as tasks.platform.laggard_seek keys it; 400 when damaged."""
    if key is None:
        return None
    try:
        due, kind, district, code, inst = key
        return (date.fromisoformat(str(due)), int(str(kind)), str(district), str(code), int(str(inst)))
    except ValueError as exc:
        raise HTTPException(400, "翻页位置无效，请从第一页重新翻页 / bad page cursor: start again from page 1") from exc


def _key_of(r: LaggardRow) -> LaggardKey:
    return (r.due_on, LAGGARD_KINDS.index(r.what), r.district, r.insurance_code, r.institution_id)
