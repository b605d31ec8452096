"""The violations page: every violation the compliance pass found, with its evidence and its enforcement ladder.

Filters: program, rule, district, institution / enterprise (kind and part of the name), state and the dates it
was found between. A district reviewer sees its own districts' violations only (an enterprise's violation belongs to
no district: the manager's and the observers'). Pages are keyset pages (tasks/compliance/violation_page.py): the
pager names the last (or first) violation shown, never an offset. `?format=xlsx|csv` downloads every row of the
filter, as the other table pages do (web/exports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.labels import VIOLATION_LABELS, VIOLATION_STATE_LABELS, VIOLATION_SUBJECT_LABELS
from models.program import Program
from models.program_definition import ProgramDefinition
from models.reasons import evidence_text
from tasks.compliance.violation_page import (
    ViolationFilter,
    ViolationRow,
    all_violations,
    count_violations,
    violation_page,
)
from tasks.trust.scope import districts_of, may_see_district
from web.auth import require_user
from web.exports import EXPORT_MAX, download, export_format
from web.render import page, web

PER_PAGE = 50
MAX_PER_PAGE = 200
FIELDS = ("program", "rule", "district", "subject_type", "subject", "state", "since", "until")


@dataclass(frozen=True)
class KeysetPager:
    """Links of a keyset page: the filters kept, `after`/`before` the violation at the page's edge."""

    params: tuple[tuple[str, str], ...]
    per_page: int
    next_after: int | None
    prev_before: int | None
    first: bool
    total: int

    def _url(self, extra: list[tuple[str, str]]) -> str:
        size = [("per_page", str(self.per_page))] if self.per_page != PER_PAGE else []
        return "/violations?" + urlencode([*self.params, *size, *extra])

    @property
    def first_url(self) -> str:
        return self._url([])

    @property
    def next_url(self) -> str | None:
        return self._url([("after", str(self.next_after))]) if self.next_after is not None else None

    @property
    def prev_url(self) -> str | None:
        return self._url([("before", str(self.prev_before))]) if self.prev_before is not None else None

    def export_url(self, fmt: str) -> str:
        return "/violations?" + urlencode([*self.params, ("format", fmt)])


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(400, f"日期格式应为 YYYY-MM-DD：{value}") from exc


def _int(value: str | None, name: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise HTTPException(400, f"{name} 应为正整数：{value}")
    return int(value)


def _choice(value: str, allowed: type[ViolationRule] | type[SubjectType] | type[ViolationState], what: str) -> str:
    if value and value not in {m.value for m in allowed}:
        raise HTTPException(400, f"未知的{what}：{value}")
    return value


COLUMNS = ("发现日期", "项目", "规则", "对象类型", "对象", "区县", "所涉事项", "证据", "状态", "消除日期", "消除原因",
           "处理进度", "整改期限")


def cells(r: ViolationRow) -> tuple[str, ...]:
    """A violation as the page's row reads it (the XLSX and CSV of the page)."""
    due = f"{r.due_on:%Y-%m-%d}" + ("（暂定）" if r.due_provisional else "") if r.due_on else ""
    return (f"{r.detected_on:%Y-%m-%d}", r.program, r.rule, r.subject_kind, r.subject, r.district or "", r.object_key,
            evidence_text(r.evidence), r.state,
            f"{r.closed_on:%Y-%m-%d}" if r.closed_on else "", r.closed_reason, r.ladder or "未进入处理程序", due)


def violations(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    q = {k: (request.query_params.get(k) or "").strip() for k in FIELDS}
    _choice(q["rule"], ViolationRule, "规则")
    _choice(q["subject_type"], SubjectType, "对象类型")
    _choice(q["state"], ViolationState, "状态")
    since, until = _day(q["since"], "since"), _day(q["until"], "until")
    if q["district"] and not may_see_district(user, q["district"]):
        raise HTTPException(403, f"无权查看{q['district']}的违规（仅限本人负责的区县）")
    after = _int(request.query_params.get("after"), "after")
    before = _int(request.query_params.get("before"), "before")
    per_page = min(_int(request.query_params.get("per_page"), "per_page") or PER_PAGE, MAX_PER_PAGE)
    if per_page < 1:
        raise HTTPException(400, "每页条数应为正整数")
    fmt = export_format(request)
    with Session(ctx.engine) as session:
        programs = list(session.exec(select(Program).order_by(col(Program.slug))).all())
        chosen = [p.id for p in programs if p.slug == q["program"] and p.id is not None] if q["program"] else None
        f = ViolationFilter(program_ids=chosen, rule=ViolationRule(q["rule"]) if q["rule"] else None,
                            district=q["district"] or None,
                            subject_type=SubjectType(q["subject_type"]) if q["subject_type"] else None,
                            subject=q["subject"] or None, state=ViolationState(q["state"]) if q["state"] else None,
                            since=since, until=until, districts=districts_of(user))
        conn = session.connection()
        if fmt:
            rows = all_violations(conn, f, EXPORT_MAX)
            title = f"{next((p.name for p in programs if p.slug == q['program']), '全部项目')} 违规记录"
            return download(fmt, "违规记录", title, COLUMNS, [cells(r) for r in rows], ctx.clock.today())
        found = violation_page(conn, f, after=after, before=before, limit=per_page)
        total = count_violations(conn, f)
    params = tuple((k, v) for k, v in q.items() if v)
    pager = KeysetPager(params, per_page, found.rows[-1].id if found.has_next and found.rows else None,
                        found.rows[0].id if found.has_prev and found.rows else None, not found.has_prev, total)
    mine = districts_of(user)
    shown = [p for p in programs if not q["program"] or p.slug == q["program"]]
    districts = sorted({d.name for p in shown for d in ProgramDefinition.model_validate(p.definition).districts
                        if mine is None or d.name in mine})
    return page(request, "violations.html", user, rows=found.rows, pager=pager, q=q, programs=programs,
                rules=VIOLATION_LABELS, states=VIOLATION_STATE_LABELS, subjects=VIOLATION_SUBJECT_LABELS,
                districts=districts, scoped=mine is not None)
