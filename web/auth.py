"""Who is signed in, what they may do, and the CSRF token every form carries.

The session is Starlette's signed cookie (itsdangerous) with a max age: it holds the user name and
the CSRF token, nothing else; the user row is read again on each request so a deactivated user is
out at once.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from models.enrollment import Gate
from models.labels import ROLE_LABELS
from models.program import User
from models.states import Role

DECIDERS = (Role.PROGRAM_MANAGER, Role.DISTRICT_REVIEWER)


class LoginRequired(Exception):
    """Raised for an anonymous request to a page that needs a user; answered with a redirect to /login."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, form: FormData) -> None:
    sent, expected = form.get("csrf_token"), request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or not secrets.compare_digest(sent, expected):
        raise HTTPException(403, "表单已失效或来源不明（CSRF 校验失败），请刷新页面后重试")


def sign_in(request: Request, user: User) -> None:
    request.session.clear()  # a new session on sign-in: no fixation of an earlier cookie
    request.session["user"] = user.name
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def current_user(request: Request, engine: Engine) -> User | None:
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
    if user is None or not user.active:
        request.session.clear()
        return None
    return user


def require_user(request: Request, engine: Engine) -> User:
    user = current_user(request, engine)
    if user is None:
        raise LoginRequired
    return user


def require_role(user: User, *roles: Role) -> None:
    if user.role not in roles:
        raise HTTPException(403, f"{ROLE_LABELS.get(user.role, user.role.value)}无权执行此操作")


async def posted_form(request: Request, engine: Engine, *roles: Role) -> tuple[User, FormData]:
    """Every state-changing POST: a signed-in user, a valid CSRF token, then one of `roles`."""
    user = require_user(request, engine)
    form = await request.form()
    check_csrf(request, form)
    require_role(user, *roles)
    return user, form


def may_view_gate(user: User, gate: Gate) -> bool:
    """A district reviewer sees only its districts' gates; managers and observers see every gate."""
    if user.role == Role.DISTRICT_REVIEWER:
        return gate.district is not None and gate.district in user.districts
    return user.role in (Role.PROGRAM_MANAGER, Role.OBSERVER)
