"""What every page handler shares: the engine, the clock, the templates, and rendering with the user and CSRF token."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from models.clock import SHANGHAI, Clock
from models.labels import (
    AUDIT_ACTION_LABELS,
    AUDIT_ENTITY_LABELS,
    NOTICE_KIND_LABELS,
    ROLE_LABELS,
    SHORT_PHASES,
    STATE_LABELS,
    WINDOW_LABELS,
    entity_state_label,
)
from models.people import person_label
from models.program import User
from models.reasons import evidence_text, reason_text
from web.auth import csrf_token
from web.queries import GateItemCache
from web.snapshots import OverviewCache

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class WebContext:
    engine: Engine
    clock: Clock
    templates: Jinja2Templates
    overviews: OverviewCache = field(default_factory=OverviewCache)
    gate_items: GateItemCache = field(default_factory=GateItemCache)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.globals.update(STATE_LABELS=STATE_LABELS, SHORT_PHASES=SHORT_PHASES, WINDOW_LABELS=WINDOW_LABELS,
                                 ROLE_LABELS=ROLE_LABELS,
                                 AUDIT_ACTION_LABELS=AUDIT_ACTION_LABELS, AUDIT_ENTITY_LABELS=AUDIT_ENTITY_LABELS,
                                 NOTICE_KIND_LABELS=NOTICE_KIND_LABELS)
    templates.env.filters["state"] = lambda s: STATE_LABELS.get(str(s), str(s))
    templates.env.filters["entity_state"] = lambda s, entity: entity_state_label(str(entity), str(s))
    # The flows act under the name "system" (Role.SYSTEM's value); people read 系统.
    templates.env.filters["actor"] = lambda name: ROLE_LABELS["system"] if name == "system" else name
    templates.env.filters["action"] = lambda a: AUDIT_ACTION_LABELS.get(str(a), str(a))
    templates.env.filters["dt"] = _local_time
    templates.env.filters["person"] = _signed_in_as
    templates.env.filters["reason"] = reason_text
    templates.env.filters["evidence"] = evidence_text
    return templates


def _signed_in_as(user: User) -> str:
    """The page header names the signed-in person as colleagues would, never by a login name (issue #19)."""
    return person_label(user.name, display_name=user.display_name, unit=user.unit, role=user.role.value,
                        districts=user.districts or ())


def _local_time(d: datetime | None) -> str:
    """Stored times are UTC; people read Beijing time."""
    if d is None:
        return "—"
    return (d.astimezone(SHANGHAI) if d.tzinfo is not None else d).strftime("%Y-%m-%d %H:%M")


def web(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


def page(request: Request, name: str, user: User | None, status_code: int = 200, **context: Any) -> Response:
    """Render a template with what the layout needs: the user, the CSRF token, a one-time message."""
    has_session = "session" in request.scope
    flash = request.session.pop("flash", None) if has_session else None
    flash_error = bool(request.session.pop("flash_error", False)) if has_session else False
    token = csrf_token(request) if has_session else ""
    return web(request).templates.TemplateResponse(
        request, name, {"user": user, "csrf_token": token, "flash": flash, "flash_error": flash_error, **context},
        status_code=status_code)


def flash(request: Request, message: str, *, error: bool = False) -> None:
    """A one-time message for the next page; `error` shows it in the error style (a refusal is no success)."""
    request.session["flash"] = message
    request.session["flash_error"] = error
