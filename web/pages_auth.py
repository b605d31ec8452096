"""Signing in and out."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.db import transaction
from models.base import utcnow
from models.program import User
from models.signin import ThrottleScope
from tasks.signin import passwords
from tasks.signin.state import Refusal, record_failure, record_success, refusal
from web.auth import check_csrf, current_user, sign_in, sign_out
from web.render import page, web
from web.settings import WebSettings

log = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str:
    """Only a local path: an open redirect to another site after sign-in would be a phishing aid."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/"
    return target


def login_form(request: Request) -> Response:
    ctx = web(request)
    if current_user(request, ctx.engine) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return page(request, "login.html", None, next=_safe_next(request.query_params.get("next")))


@dataclass(frozen=True)
class Attempt:
    user: User | None
    refusal: Refusal | None = None


def _authenticate(request: Request, name: str, password: str) -> Attempt:
    """One argon2 check whatever happens (unknown name, no password, locked account): failures all cost the same."""
    ctx = web(request)
    settings: WebSettings = request.app.state.web_settings
    policy, now = settings.throttle(), utcnow()
    address = request.client.host if request.client else None
    refused = refusal(ctx.engine, name, address, now, policy)
    with Session(ctx.engine) as session:
        user = session.exec(select(User).where(User.name == name)).first() if name else None
    stored = user.password_hash if user is not None and user.active and refused is None else None
    if not passwords.verify(password, stored) or user is None:
        if record_failure(ctx.engine, name, address, now, policy):
            log.warning("sign-in: account %r locked after %d failures (address %s)", name[:64],
                        policy.account_failures, address)
        return Attempt(None, refused)
    record_success(ctx.engine, name)
    assert user.password_hash is not None
    if passwords.needs_upgrade(user.password_hash):
        with transaction(ctx.engine) as session:
            session.execute(update(User).where(User.id == user.id)  # type: ignore[arg-type]
                            .values(password_hash=passwords.hash_password(password)))
    return Attempt(user)


FAILED = "用户名或密码错误。连续多次失败的账户会被锁定，需由管理员解锁 / wrong user name or password"
BLOCKED = "此地址登录失败次数过多，请 {minutes} 分钟后再试 / too many failed sign-ins from this address; try again later"


async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    name, password = str(form.get("username") or "").strip()[:200], str(form.get("password") or "")[:1024]
    target = _safe_next(str(form.get("next") or "/"))
    attempt = await run_in_threadpool(_authenticate, request, name, password)
    if attempt.user is None:
        refused = attempt.refusal
        if refused is not None and refused.scope == ThrottleScope.ADDRESS and refused.until is not None:
            minutes = max(1, math.ceil((refused.until - utcnow()).total_seconds() / 60))
            response = page(request, "login.html", None, status_code=429, next=target,
                            error=BLOCKED.format(minutes=minutes), username=name)
            response.headers["Retry-After"] = str(minutes * 60)
            return response
        # A locked account gets the same answer as a wrong password: the page must not tell who exists.
        return page(request, "login.html", None, status_code=401, next=target, error=FAILED, username=name)
    settings: WebSettings = request.app.state.web_settings
    await run_in_threadpool(sign_in, request, web(request).engine, attempt.user,
                            lifetime=timedelta(minutes=settings.session_minutes))
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    await run_in_threadpool(sign_out, request, web(request).engine)
    return RedirectResponse("/login", status_code=303)
