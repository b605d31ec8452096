"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.db import transaction
from models.program import User
from web import passwords
from web.auth import check_csrf, current_user, sign_in, sign_out
from web.render import page, web


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


def _authenticate(request: Request, name: str, password: str) -> User | None:
    ctx = web(request)
    with Session(ctx.engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
    if user is None or not user.active:
        passwords.verify(password, None)
        return None
    if not passwords.verify(password, user.password_hash):
        return None
    assert user.password_hash is not None
    if passwords.needs_upgrade(user.password_hash):
        with transaction(ctx.engine) as session:
            session.execute(update(User).where(User.id == user.id)  # type: ignore[arg-type]
                            .values(password_hash=passwords.hash_password(password)))
    return user


async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or "/"))
    user = await run_in_threadpool(_authenticate, request, name, password)
    if user is None:
        return page(request, "login.html", None, status_code=401, next=target, error="用户名或密码错误", username=name)
    sign_in(request, user)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    sign_out(request)
    return RedirectResponse("/login", status_code=303)
