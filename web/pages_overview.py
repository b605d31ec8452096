"""The program list and one program's overview: timeline, funnels, coverage, laggards, open violations.

Every figure on the overview is counted by the database (tasks/status.py) and kept until the data
changes (web/snapshots.py); only the most late laggards are listed there, the rest page by page on
the laggards page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core.clock_store import DatabaseClock
from models.labels import LAGGARD_LABELS, SHORT_PHASES, STATE_LABELS, VIOLATION_LABELS
from models.program import User
from models.program_definition import ProgramDefinition
from models.states import KIND_LABELS, InstitutionKind, Role
from tasks.programs import UnknownProgram, get_program, list_programs
from tasks.status import LAGGARD_KINDS, laggard_page
from tasks.trust.scope import districts_of, may_see_district
from web.auth import require_user
from web.charts import Span, Target, coverage_svg, funnel_svg, timeline_svg, violations_svg
from web.pagination import page_of
from web.render import page, web
from web.snapshots import OVERVIEW_LAGGARDS

_ORDER = {state: i for i, state in enumerate(STATE_LABELS)}


def home(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    return page(request, "programs.html", user, programs=list_programs(ctx.engine))


def targets_of(defn: ProgramDefinition, today: date) -> list[Target]:
    """The program's coverage targets (rules.coverage_targets, each citing its seed in the program file).

    The one in force is the next not yet past, or the last once all are past.
    """
    targets = sorted(defn.rules.coverage_targets, key=lambda t: t.by)
    current = next((t for t in targets if t.by >= today), targets[-1] if targets else None)
    return [Target(f"{t.by:%Y-%m-%d} 目标", float(t.share), t is current) for t in targets]


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
    funnels = [
        (p, funnel_svg([(STATE_LABELS.get(k, k), n)
                        for k, n in sorted(p.counts.items(), key=lambda kv: (_ORDER.get(kv[0], 99), kv[0]))]))
        for p in status.phases
    ]
    late = data.laggards
    with Session(ctx.engine) as session:
        program, defn = get_program(session, slug)
        if (mine := districts_of(user)) is not None:  # a district reviewer: its own districts' laggards
            late = laggard_page(session, program.id or 0, defn, status.today, district=mine, limit=OVERVIEW_LAGGARDS)
    targets = targets_of(defn, status.today)
    cover = data.coverage
    kinds = [(KIND_LABELS.get(InstitutionKind(r.key), r.key), r.covered, r.total) for r in cover.by_kind]
    return page(request, "overview.html", user, status=status, timeline=timeline, funnels=funnels,
                district_chart=coverage_svg([(r.key, r.covered, r.total) for r in cover.by_district], targets=targets),
                kind_chart=coverage_svg(kinds, targets=targets), cover=cover, targets=targets,
                late=late, laggard_labels=LAGGARD_LABELS, computed=data,
                compliance=compliance_panel(data.violations, user))


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
    pager = page_of(f"/programs/{slug}/laggards", request.query_params, q)
    simulated = isinstance(ctx.clock, DatabaseClock) and ctx.clock.simulated() is not None
    try:  # the overview's counts (kept until the data changes) serve the unfiltered list
        known = None if q["district"] or mine is not None else ctx.overviews.get(ctx.engine, slug, ctx.clock,
                                                            simulated=simulated).laggards.counts
        with Session(ctx.engine) as session:
            program, defn = get_program(session, slug)
            assert program.id is not None
            late = laggard_page(session, program.id, defn, ctx.clock.today(), what=q["what"] or None,
                                district=q["district"] or mine, offset=pager.offset, limit=pager.per_page,
                                counts=known)
    except UnknownProgram as exc:
        raise HTTPException(404, f"没有项目 {slug}") from exc
    return page(request, "laggards.html", user, program=program, late=late, pager=pager.counted(late.total), q=q,
                laggard_labels=LAGGARD_LABELS,
                districts=[d.name for d in defn.districts if may_see_district(user, d.name)])
