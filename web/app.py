"""The web application: routes, the session middleware, local static files and Chinese error pages."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine
from sqlalchemy.exc import DataError
from starlette.applications import Starlette
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.clock_store import DatabaseClock
from core.db import shared_engine
from models.clock import Clock
from web import pages_auth, pages_enforcement, pages_gates, pages_overview, pages_records, pages_violations
from web.access import check_rules
from web.auth import LoginRequired, current_user
from web.headers import SecurityHeaders
from web.people import PersonNames
from web.render import WebContext, make_templates, page, web
from web.settings import WebSettings

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)

ERROR_TITLES = {400: "请求有误", 401: "请先登录", 403: "无权访问", 404: "页面不存在", 405: "不支持的请求方式",
                409: "已被他人处理", 500: "系统内部错误"}


class RowIdConvertor(IntegerConvertor):
    """A row id in a path: at most nine digits, so /gates/99999999999999999999 is a 404, not an overflow in the driver."""

    regex = "[0-9]{1,9}"


register_url_convertor("id", RowIdConvertor())

ROUTES = [
    Route("/login", pages_auth.login_form, methods=["GET"]),
    Route("/login", pages_auth.login, methods=["POST"]),
    Route("/logout", pages_auth.logout, methods=["POST"]),
    Route("/", pages_overview.home, methods=["GET"]),
    Route("/programs/{slug}", pages_overview.overview, methods=["GET"]),
    Route("/programs/{slug}/lists", pages_records.lists, methods=["GET"]),
    Route("/programs/{slug}/laggards", pages_overview.laggards, methods=["GET"]),
    Route("/programs/{slug}/enforcement", pages_enforcement.ladders, methods=["GET"]),
    Route("/programs/{slug}/enforcement/start", pages_enforcement.start, methods=["POST"]),
    Route("/programs/{slug}/enterprises/{enterprise_id:id}", pages_enforcement.enterprise, methods=["GET"]),
    Route("/programs/{slug}/enterprises/{enterprise_id:id}/exit", pages_enforcement.exit_request, methods=["POST"]),
    Route("/programs/{slug}/enterprises/{enterprise_id:id}/bad-record", pages_enforcement.bad_record,
          methods=["POST"]),
    Route("/lists/{version_id:id}", pages_records.list_version, methods=["GET"]),
    Route("/inbox", pages_gates.inbox, methods=["GET"]),
    Route("/inbox/decide", pages_gates.decide_many, methods=["POST"]),
    Route("/gates/{gate_id:id}", pages_gates.gate_detail, methods=["GET"]),
    Route("/gates/{gate_id:id}/decide", pages_gates.decide, methods=["POST"]),
    Route("/notices", pages_records.notices, methods=["GET"]),
    Route("/notices/resend", pages_records.resend_notices, methods=["POST"]),
    Route("/notices/print", pages_records.print_notices, methods=["POST"]),
    Route("/audit", pages_records.audit, methods=["GET"]),
    Route("/violations", pages_violations.violations, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
]


def _user_or_none(request: Request) -> object:
    try:
        return current_user(request, web(request).engine) if "session" in request.scope else None
    except Exception:  # the error page must render even when the database is what failed
        return None


def _error_page(request: Request, status: int, detail: str) -> Response:
    return page(request, "error.html", _user_or_none(request), status_code=status,  # type: ignore[arg-type]
                title=ERROR_TITLES.get(status, "出错了"), status=status, detail=detail)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail and exc.detail != _default_phrase(exc.status_code) else ""
    return _error_page(request, exc.status_code, detail)


def _default_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def login_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def unstorable_value(request: Request, exc: Exception) -> Response:
    """A value from the request the database refuses as such: a NUL character in a path, query or form field, a
    number past a column's range. SQLite looked these up and found nothing; PostgreSQL raised DataError, a 500 (issue
    #18's corpus). The person is told what to fix; the log names the kind of error, not the value."""
    log.warning("web request refused by the database: %s %s (%s)", request.method, request.url.path,
                type(getattr(exc, "orig", exc)).__name__)
    return _error_page(request, 400, "请求中含有无法处理的字符或数值（如空字符或过大的数字），请检查输入后重试。")


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("web request failed: %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "处理请求时发生错误，已记录日志。请稍后重试，或联系系统管理员。")


def create_app(engine: Engine | None = None, *, clock: Clock | None = None,
               settings: WebSettings | None = None, host: str = "127.0.0.1") -> Starlette:
    """The app over `engine` (default: the configured database) and `clock` (default: the shared DatabaseClock).

    `host` is the address it listens on: outside loopback the session cookie is `Secure` unless settings say otherwise.
    """
    check_rules(ROUTES)
    engine = engine if engine is not None else shared_engine()
    settings = settings or WebSettings()
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(SecurityHeaders), Middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="sanjin_session",
                               max_age=settings.session_minutes * 60, same_site="lax",
                               https_only=settings.secure_cookie(host))],
        exception_handlers={HTTPException: http_error, LoginRequired: login_required, DataError: unstorable_value,
                            Exception: server_error},
    )
    app.state.web_settings = settings
    templates = make_templates()
    templates.env.filters["actor"] = PersonNames(engine).label  # login names → 王科长（和平区医疗保障局）
    app.state.web = WebContext(engine, clock or DatabaseClock(engine), templates)
    return app
