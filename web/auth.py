"""Who is signed in, what they may do, and the CSRF token every form carries.

The cookie is Starlette's signed session (itsdangerous) with a max age; it holds a random session token and
the CSRF token, nothing else. The session itself is a row (`websession`): logout, a new password or disabling
the user ends it, so a cookie saved before then no longer signs anyone in (ASVS V3.3.1, V3.3.3).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from models.base import utcnow
from models.enrollment import Gate
from models.labels import ROLE_LABELS
from models.program import User
from models.states import Role
from tasks.signin.state import end_session, open_session, session_user

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
    # Compared as bytes: compare_digest refuses a str with non-ASCII characters (a forged token gave a 500).
    if not isinstance(sent, str) or not isinstance(expected, str) or \
            not secrets.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "表单已失效或来源不明（CSRF 校验失败），请刷新页面后重试")


def sign_in(request: Request, engine: Engine, user: User, *, lifetime: timedelta) -> None:
    """A new session row and a new cookie: nothing of an earlier cookie survives (no session fixation)."""
    request.session.clear()
    address = request.client.host if request.client else None
    request.session["sid"] = open_session(engine, user, address=address, now=utcnow(), lifetime=lifetime)
    csrf_token(request)


def sign_out(request: Request, engine: Engine) -> None:
    token = request.session.get("sid")
    if isinstance(token, str):
        end_session(engine, token, utcnow())
    request.session.clear()


def current_user(request: Request, engine: Engine) -> User | None:
    token = request.session.get("sid")
    if not isinstance(token, str):
        return None
    user = session_user(engine, token, utcnow())
    if user is None:
        request.session.clear()
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


MAX_ROW_ID = 2_147_483_647  # an INTEGER column's largest value on PostgreSQL (and the :id path convertor's nine digits)


def form_ids(values: Sequence[object], what: str) -> list[int]:
    """Row ids a form names (gates, items, notices): integers an INTEGER column can hold, or a 400 saying which field.

    A 20-digit id reached PostgreSQL as a bind parameter and failed there (`integer out of range`, a 500), where
    SQLite simply found no row (issue #18's corpus, web part).
    """
    try:
        ids = [int(str(v)) for v in values]
    except ValueError as exc:
        raise HTTPException(400, f"{what}应为整数") from exc
    if any(abs(i) > MAX_ROW_ID for i in ids):
        raise HTTPException(400, f"{what}超出范围：没有这样的编号")
    return ids


def may_view_gate(user: User, gate: Gate) -> bool:
    """A district reviewer sees only its districts' gates; managers and observers see every gate."""
    if user.role == Role.DISTRICT_REVIEWER:
        return gate.district is not None and gate.district in user.districts
    return user.role in (Role.PROGRAM_MANAGER, Role.OBSERVER)
