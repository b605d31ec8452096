"""Continuous review's enforcement for staff: the ladders (a reviewer sees its own districts'), starting one by hand,
and the enterprise page with its bar, exits and ladders, where a manager records an exit or a bad record.

Each form calls the same function as the CLI (`tasks/enforcement/`), so the same checks, gates and audit rows
follow; a refusal is shown as its bilingual message on the page, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from urllib.parse import quote

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from models.catalog import Enterprise
from models.program import Program, User
from models.states import Role
from tasks.enforcement.bars import bar_enterprise
from tasks.enforcement.exit import request_exit
from tasks.enforcement.manual import start_ladder
from tasks.enforcement.views import enterprise_view, ladder_rows, program_enterprises
from tasks.gates.rows import GateError
from tasks.programs import UnknownProgram, get_program
from web.auth import posted_form, require_user
from web.render import flash, page, web


def _program(session: Session, slug: str) -> Program:
    try:
        return get_program(session, slug)[0]
    except UnknownProgram as exc:
        raise HTTPException(404, f"没有项目 {slug}") from exc


def ladders(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    slug = request.path_params["slug"]
    with Session(ctx.engine) as session:
        program = _program(session, slug)
        assert program.id is not None
        own = list(user.districts) if user.role == Role.DISTRICT_REVIEWER else None
        rows = ladder_rows(session, program.id, slug, districts=own)
        enterprises = program_enterprises(session, program.id) if own is None else []
    return page(request, "enforcement.html", user, program=program, ladders=rows, enterprises=enterprises,
                can_start=user.role in (Role.PROGRAM_MANAGER, Role.DISTRICT_REVIEWER),
                is_manager=user.role == Role.PROGRAM_MANAGER)


def enterprise(request: Request) -> Response:
    ctx = web(request)
    user = require_user(request, ctx.engine)
    slug = request.path_params["slug"]
    with Session(ctx.engine) as session:
        program = _program(session, slug)
        assert program.id is not None
        view = enterprise_view(session, program.id, slug, int(request.path_params["enterprise_id"]),
                               ctx.clock.today())
    if view is None:
        raise HTTPException(404, "没有这家企业")
    return page(request, "enterprise.html", user, program=program, view=view,
                is_manager=user.role == Role.PROGRAM_MANAGER)


def _enterprise_name(request: Request, enterprise_id: int) -> str:
    with Session(web(request).engine) as session:
        ent = session.get(Enterprise, enterprise_id)
    if ent is None:
        raise GateError("没有这家企业 / no such enterprise")
    return ent.name


def _day(form: FormData, name: str) -> date:
    try:
        return date.fromisoformat(str(form.get(name) or ""))
    except ValueError as exc:
        raise GateError(f"日期格式应为 YYYY-MM-DD / a date is YYYY-MM-DD: {form.get(name)!r}") from exc


def _text(form: FormData, name: str) -> str | None:
    return str(form.get(name) or "").strip() or None


async def _act(request: Request, roles: tuple[Role, ...], back: str, act: Callable[[User, FormData], str]) -> Response:
    """Run one form's action in a thread: its message (or its refusal's) is flashed on the page it came from."""
    user, form = await posted_form(request, web(request).engine, *roles)
    try:
        message = await run_in_threadpool(act, user, form)
    except GateError as exc:
        message = str(exc)
    except UnknownProgram as exc:  # a path naming no program was a 500 (issue #18's corpus)
        raise HTTPException(404, f"没有项目 {request.path_params.get('slug', '')}") from exc
    flash(request, message)
    return RedirectResponse(back, status_code=303)


async def start(request: Request) -> Response:
    slug = request.path_params["slug"]

    def act(user: User, form: FormData) -> str:
        subject = str(form.get("subject_kind") or "")
        name = _text(form, "subject")
        violation = _text(form, "violation")
        if violation is not None and not violation.isdigit():
            raise GateError(f"违规编号应为数字 / a violation number is digits: {violation!r}")
        started = start_ladder(web(request).engine, slug, user_name=user.name, clock=web(request).clock,
                               reason=_text(form, "reason"), violation_id=int(violation) if violation else None,
                               institution=name if violation is None and subject == "institution" else None,
                               enterprise=name if violation is None and subject == "enterprise" else None)
        return f"已对“{started.subject_name}”启动处理程序，待决定事项 {started.gate_id}"

    return await _act(request, (Role.PROGRAM_MANAGER, Role.DISTRICT_REVIEWER), f"/programs/{quote(slug, safe='')}/enforcement", act)


async def exit_request(request: Request) -> Response:
    slug, enterprise_id = request.path_params["slug"], int(request.path_params["enterprise_id"])

    def act(user: User, form: FormData) -> str:
        gate = request_exit(web(request).engine, slug, _enterprise_name(request, enterprise_id),
                            exits_on=_day(form, "exits_on"), reason=_text(form, "reason") or "", user_name=user.name,
                            clock=web(request).clock)
        return f"已开启企业退出审批事项 {gate}，待项目管理员批准"

    back = f"/programs/{quote(slug, safe='')}/enterprises/{enterprise_id}"  # the slug as it came, quoted
    return await _act(request, (Role.PROGRAM_MANAGER,), back, act)


async def bad_record(request: Request) -> Response:
    slug, enterprise_id = request.path_params["slug"], int(request.path_params["enterprise_id"])

    def act(user: User, form: FormData) -> str:
        name = _enterprise_name(request, enterprise_id)
        reason = _text(form, "reason")
        if reason is None:
            raise GateError("请说明记入不良记录的理由 / give the reason for the bad record")
        bad = bar_enterprise(web(request).engine, slug, name, starts_on=_day(form, "starts_on"), reason=reason,
                             user_name=user.name, clock=web(request).clock)
        return f"已记入不良记录：{name} 自 {bad.starts_on} 起至 {bad.barred_until}（含）不得申报"

    back = f"/programs/{quote(slug, safe='')}/enterprises/{enterprise_id}"  # the slug as it came, quoted
    return await _act(request, (Role.PROGRAM_MANAGER,), back, act)
