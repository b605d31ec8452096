"""Published lists with versions and diffs, the notice outbox with resend, and the audit trail."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from models.audit import AuditEvent
from models.catalog import ListVersion
from models.clock import SHANGHAI
from models.outbox import Notice
from models.program import Program
from models.states import NoticeStatus, Role
from tasks.lists import version_entries
from tasks.programs import UnknownProgram, get_program
from tasks.send_notices import resend
from web.auth import check_csrf, require_role, require_user
from web.render import flash, page, web

KIND_NAMES = {"drugs": "药品清单", "recommended": "推荐药品清单", "institutions": "定点机构名单"}
NOTICE_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已发送", "dead": "发送失败", "no_address": "无邮箱"}
AUDIT_LIMIT = 500


def lists(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    with Session(ctx.engine) as session:
        try:
            program, _ = get_program(session, request.path_params["slug"])
        except UnknownProgram as exc:
            raise HTTPException(404, f"没有项目 {request.path_params['slug']}") from exc
        versions = session.exec(select(ListVersion).where(ListVersion.program_id == program.id)
                                .order_by(col(ListVersion.kind), col(ListVersion.number).desc())).all()
    return page(request, "lists.html", user, program=program, versions=versions, kind_names=KIND_NAMES)


def list_version(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    with Session(ctx.engine) as session:
        version = session.get(ListVersion, int(request.path_params["version_id"]))
        if version is None:
            raise HTTPException(404, "没有这个清单版本")
        program = session.get(Program, version.program_id)
        entries = version_entries(session, int(request.path_params["version_id"]))
    return page(request, "list_version.html", user, version=version, program=program, entries=sorted(entries.items()),
                kind_names=KIND_NAMES, diff={k: version.diff.get(k, []) for k in ("added", "removed", "changed")})


def notices(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    status = request.query_params.get("status") or None
    if status is not None and status not in NoticeStatus.__members__.values():
        raise HTTPException(400, f"未知的通知状态：{status}")
    with Session(ctx.engine) as session:
        query = select(Notice).order_by(col(Notice.id).desc()).limit(AUDIT_LIMIT)
        if status:
            query = query.where(col(Notice.status) == NoticeStatus(status))
        rows = session.exec(query).all()
    return page(request, "notices.html", user, notices=rows, status=status, labels=NOTICE_LABELS,
                can_resend=user.role == Role.PROGRAM_MANAGER)


async def resend_notices(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    form = await request.form()
    check_csrf(request, form)
    require_role(user, Role.PROGRAM_MANAGER)
    ids = [int(str(v)) for v in form.getlist("notice")]
    count = await run_in_threadpool(lambda: resend(ctx.engine, ids, clock=ctx.clock, actor=user.name, role=user.role))
    flash(request, f"已重新排队 {count} 条通知" + ("" if count == len(ids) else f"（{len(ids) - count} 条不可重发或仍无邮箱）"))
    return RedirectResponse("/notices", status_code=303)


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(), tzinfo=SHANGHAI)
    except ValueError as exc:
        raise HTTPException(400, f"日期格式应为 YYYY-MM-DD：{value}") from exc


def audit(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    q = {k: (request.query_params.get(k) or "").strip() for k in ("program", "entity", "entity_id", "actor",
                                                                  "since", "until")}
    with Session(ctx.engine) as session:
        programs = session.exec(select(Program).order_by(col(Program.slug))).all()
        query = select(AuditEvent).order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(AUDIT_LIMIT)
        if q["program"]:
            ids = [p.id for p in programs if p.slug == q["program"]]
            query = query.where(col(AuditEvent.program_id).in_(ids))
        if q["entity"]:
            query = query.where(col(AuditEvent.entity) == q["entity"])
        if q["entity_id"]:
            query = query.where(col(AuditEvent.entity_id) == q["entity_id"])
        if q["actor"]:
            query = query.where(col(AuditEvent.actor) == q["actor"])
        since, until = _day(q["since"]), _day(q["until"])
        if since:
            query = query.where(col(AuditEvent.at) >= since)
        if until:
            query = query.where(col(AuditEvent.at) < until + timedelta(days=1))
        events = session.exec(query).all()
        entities = sorted(session.exec(select(AuditEvent.entity).distinct()).all())
    return page(request, "audit.html", user, events=events, q=q, programs=programs, entities=entities,
                limit=AUDIT_LIMIT)
