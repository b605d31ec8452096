"""Who may use each route of the web app, and how a district reviewer's districts confine it: one rule per route.

The app refuses to start with a route that has no rule here (`check_rules`), and the authorization matrix test
(tests/web/test_authorization_matrix.py) tries every route × every role × own/other district against this table,
so a new page cannot ship without someone deciding who may see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from starlette.routing import BaseRoute, Mount, Route

from models.states import Role


class DistrictRule(StrEnum):
    """How a district reviewer's districts confine a route."""

    NONE = "none"  # nothing on it belongs to a district (a public list, the sign-in form)
    REFUSED = "refused"  # about one district's object: another district's reviewer is refused (403)
    FILTERED = "filtered"  # a listing: another district's rows are left out


SIGNED_IN = frozenset({Role.PROGRAM_MANAGER, Role.DISTRICT_REVIEWER, Role.OBSERVER})
DECIDERS = frozenset({Role.PROGRAM_MANAGER, Role.DISTRICT_REVIEWER})


@dataclass(frozen=True)
class Access:
    roles: frozenset[Role] | None  # None: no sign-in needed
    district: DistrictRule
    why: str


ACCESS: dict[tuple[str, str], Access] = {
    ("/login", "GET"): Access(None, DistrictRule.NONE, "the sign-in form"),
    ("/login", "POST"): Access(None, DistrictRule.NONE, "signing in"),
    ("/logout", "POST"): Access(None, DistrictRule.NONE, "signing out (with the form's CSRF token)"),
    ("/", "GET"): Access(SIGNED_IN, DistrictRule.NONE, "the programs, by name"),
    ("/programs/{slug}", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED,
                                        "the overview: a reviewer's laggards and violations are its districts'"),
    ("/programs/{slug}/lists", "GET"): Access(SIGNED_IN, DistrictRule.NONE, "published lists are public"),
    ("/programs/{slug}/laggards", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED, "late institutions by district"),
    ("/lists/{version_id:id}", "GET"): Access(SIGNED_IN, DistrictRule.NONE, "a published list is public"),
    ("/inbox", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED, "the gates a person may see"),
    ("/inbox/decide", "POST"): Access(DECIDERS, DistrictRule.REFUSED, "deciding gates of one's own districts"),
    ("/gates/{gate_id:id}", "GET"): Access(SIGNED_IN, DistrictRule.REFUSED, "one gate and its applications"),
    ("/gates/{gate_id:id}/decide", "POST"): Access(DECIDERS, DistrictRule.REFUSED, "deciding one gate"),
    ("/notices", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED, "letters and their e-mail addresses"),
    ("/notices/resend", "POST"): Access(frozenset({Role.PROGRAM_MANAGER}), DistrictRule.REFUSED,
                                        "a resend is the manager's decision"),
    ("/audit", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED, "the audit trail"),
    ("/notices/print", "POST"): Access(frozenset({Role.PROGRAM_MANAGER}), DistrictRule.NONE,
                                       "printing letters marks them printed: the manager's act"),
    ("/programs/{slug}/enforcement", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED,
                                                    "the ladders: a reviewer sees its own districts'"),
    ("/programs/{slug}/enforcement/start", "POST"): Access(DECIDERS, DistrictRule.NONE,
                                                           "starting a ladder (the task refuses another district's)"),
    ("/programs/{slug}/enterprises/{enterprise_id:id}", "GET"): Access(SIGNED_IN, DistrictRule.NONE,
                                                                       "an enterprise belongs to no district"),
    ("/programs/{slug}/enterprises/{enterprise_id:id}/exit", "POST"): Access(
        frozenset({Role.PROGRAM_MANAGER}), DistrictRule.NONE, "an exit application is recorded by the manager"),
    ("/programs/{slug}/enterprises/{enterprise_id:id}/bad-record", "POST"): Access(
        frozenset({Role.PROGRAM_MANAGER}), DistrictRule.NONE, "a bad record is the manager's decision"),
    ("/violations", "GET"): Access(SIGNED_IN, DistrictRule.FILTERED,
                                   "violations with their evidence: a reviewer sees its own districts'"),
}


def route_keys(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """(path, method) of every page and action; static files are not pages."""
    keys = []
    for route in routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route), route
        keys += [(route.path, m) for m in sorted(route.methods or ()) if m != "HEAD"]
    return keys


def check_rules(routes: list[BaseRoute]) -> None:
    """Refuse to serve a route nobody decided the access of."""
    missing = [f"{method} {path}" for path, method in route_keys(routes) if (path, method) not in ACCESS]
    if missing:
        raise RuntimeError(f"web/access.py has no access rule for: {', '.join(missing)}")


__all__ = ["ACCESS", "DECIDERS", "SIGNED_IN", "Access", "DistrictRule", "check_rules", "route_keys"]
