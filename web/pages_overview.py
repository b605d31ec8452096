"""The program list and one program's overview: timeline, funnels, coverage and laggards."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func
from sqlmodel import Session, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from models.enrollment import Application, Institution
from models.states import KIND_LABELS, ApplicationState, InstitutionKind
from sanjin.clock_store import DatabaseClock
from sanjin.status_view import SHORT_PHASES, STATE_LABELS
from tasks.accounts_contracts import laggards
from tasks.programs import UnknownProgram, get_program, list_programs
from tasks.status import program_status
from web.auth import require_user
from web.charts import Span, coverage_svg, funnel_svg, timeline_svg
from web.render import page, web

COVERED = (ApplicationState.APPROVED, ApplicationState.RUNNING)
_ORDER = {state: i for i, state in enumerate(STATE_LABELS)}


def home(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    return page(request, "programs.html", user, programs=list_programs(ctx.engine))


def coverage(session: Session, program_id: int) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """(district, covered, total) and (kind, covered, total): covered = an approved or running application here."""
    covered_ids = set(session.exec(select(Application.institution_id).where(
        Application.program_id == program_id, Application.state.in_(COVERED))).all())  # type: ignore[attr-defined]
    rows = session.execute(select(Institution.id, Institution.district, Institution.kind)).all()
    by_district: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for inst_id, district, kind in rows:
        hit = int(inst_id in covered_ids)
        for bucket, key in ((by_district, district), (by_kind, KIND_LABELS.get(InstitutionKind(kind), str(kind)))):
            bucket[key][0] += hit
            bucket[key][1] += 1
    return ([(k, c, t) for k, (c, t) in sorted(by_district.items())],
            [(k, c, t) for k, (c, t) in sorted(by_kind.items())])


def overview(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    slug = request.path_params["slug"]
    simulated = isinstance(ctx.clock, DatabaseClock) and ctx.clock.simulated() is not None
    try:
        status = program_status(ctx.engine, slug, clock=ctx.clock, simulated=simulated)
    except UnknownProgram as exc:
        raise HTTPException(404, f"没有项目 {slug}") from exc
    timeline = timeline_svg([Span(SHORT_PHASES.get(p.phase, p.label), p.opens, p.closes, p.window)
                          for p in status.phases], status.today)
    funnels = [
        (p, funnel_svg([(STATE_LABELS.get(k, k), n)
                        for k, n in sorted(p.counts.items(), key=lambda kv: (_ORDER.get(kv[0], 99), kv[0]))]))
        for p in status.phases
    ]
    with Session(ctx.engine) as session:
        program, _ = get_program(session, slug)
        assert program.id is not None
        districts, kinds = coverage(session, program.id)
        applications = session.execute(select(func.count()).select_from(Application)
                                       .where(Application.program_id == program.id)).scalar_one()
    late = laggards(ctx.engine, slug, clock=ctx.clock)
    return page(request, "overview.html", user, status=status, timeline=timeline, funnels=funnels,
                district_chart=coverage_svg(districts), kind_chart=coverage_svg(kinds), laggards=late,
                applications=applications)
