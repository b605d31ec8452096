"""Web sign-in state in the database: failed attempts per account and per address, and the sessions themselves.

Every process of an installation (several web workers, the CLI that unlocks or disables) sees the same counts
and sessions. Each count moves in one statement (`failures = failures + 1`), so two guesses at once both count.
Times are wall-clock UTC, never the simulated clock: a demo's clock set back must not lift a lockout.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, delete, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from core.bulk import dialect_name, write_audit
from core.db import transaction
from models.program import User
from models.signin import SignInThrottle, ThrottleScope, WebSession, address_blocked
from models.states import Role
from models.transitions import AuditRecord


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures lock an account (until an admin lifts it) or block an address (for a while)."""

    account_failures: int = 10
    address_failures: int = 30
    address_window: timedelta = timedelta(minutes=15)
    address_block: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Refusal:
    scope: ThrottleScope
    until: datetime | None  # None: until an administrator unlocks it


def refusal(engine: Engine, name: str, address: str | None, now: datetime, policy: ThrottlePolicy) -> Refusal | None:
    """Whether this attempt is refused before its password is looked at: a locked account or a blocked address."""
    with Session(engine) as session:
        rows = session.exec(select(SignInThrottle).where(or_(
            and_(col(SignInThrottle.scope) == ThrottleScope.ACCOUNT.value, col(SignInThrottle.key) == name[:200]),
            and_(col(SignInThrottle.scope) == ThrottleScope.ADDRESS.value, col(SignInThrottle.key) == (address or ""))),
            col(SignInThrottle.locked_at).is_not(None))).all()
    for row in rows:
        if row.scope == ThrottleScope.ACCOUNT.value:
            return Refusal(ThrottleScope.ACCOUNT, None)
    for row in rows:
        if row.locked_at is not None and address_blocked(row.locked_at, now, policy.address_block):
            return Refusal(ThrottleScope.ADDRESS, row.locked_at + policy.address_block)
    return None


def record_failure(engine: Engine, name: str, address: str | None, now: datetime, policy: ThrottlePolicy) -> bool:
    """Count a failed attempt for the name and the address; True when this failure locked the account."""
    locked_now = False
    with transaction(engine) as session:
        keys: list[tuple[ThrottleScope, str, int, timedelta | None]] = [
            (ThrottleScope.ACCOUNT, name[:200], policy.account_failures, None)]
        if address:
            keys.append((ThrottleScope.ADDRESS, address[:200], policy.address_failures, policy.address_window))
        for scope, key, limit, window in keys:
            _ensure_row(session, scope, key, now)
            here = (col(SignInThrottle.scope) == scope.value, col(SignInThrottle.key) == key)
            if window is not None:  # an address's count (and an expired block) starts again after its window
                session.execute(update(SignInThrottle).where(
                    *here, col(SignInThrottle.window_started_at) <= now - window,
                    or_(col(SignInThrottle.locked_at).is_(None), col(SignInThrottle.locked_at) <= now - policy.address_block))
                    .values(failures=0, window_started_at=now, locked_at=None))
            was_locked = session.exec(select(SignInThrottle.locked_at).where(*here)).one() is not None
            failures = col(SignInThrottle.failures)
            session.execute(update(SignInThrottle).where(*here).values(
                failures=failures + 1, last_failed_at=now,
                locked_at=case((and_(col(SignInThrottle.locked_at).is_(None), failures + 1 >= limit), now),
                               else_=col(SignInThrottle.locked_at))))
            if scope == ThrottleScope.ACCOUNT and not was_locked:
                locked_now = session.exec(select(SignInThrottle.locked_at).where(*here)).one() is not None
                if locked_now:
                    write_audit(session, [AuditRecord(
                        entity="user", entity_id=name[:64], action="lock", from_state=None, to_state=None,
                        actor="system", role=Role.SYSTEM, at=now,
                        data={"name": name[:64], "failures": limit, "address": address})])
    return locked_now


def record_success(engine: Engine, name: str) -> None:
    """A good password ends the account's run of failures (not the address's: one valid account must not reset it)."""
    with transaction(engine) as session:
        session.execute(delete(SignInThrottle).where(col(SignInThrottle.scope) == ThrottleScope.ACCOUNT.value,
                                                     col(SignInThrottle.key) == name[:200],
                                                     col(SignInThrottle.locked_at).is_(None)))


def _ensure_row(session: Session, scope: ThrottleScope, key: str, now: datetime) -> None:
    insert: Any = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    session.execute(insert(SignInThrottle).values(scope=scope.value, key=key, failures=0, window_started_at=now,
                                                  last_failed_at=now)
                    .on_conflict_do_nothing(index_elements=["scope", "key"]))


# --------------------------------------------------------------------------- sessions


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(engine: Engine, user: User, *, address: str | None, now: datetime, lifetime: timedelta) -> str:
    """A new random session token (returned once, for the cookie); the database keeps only its hash."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    with transaction(engine) as session:
        session.execute(delete(WebSession).where(col(WebSession.expires_at) < now - timedelta(days=1)))
        session.add(WebSession(token_hash=_digest(token), user_id=user.id, created_at=now, expires_at=now + lifetime,
                               address=(address or None) and address[:64]))
    return token


def session_user(engine: Engine, token: str, now: datetime) -> User | None:
    """The active user of a live session: not ended by logout, a new password or disabling, and not expired."""
    with Session(engine) as session:
        return session.exec(select(User).join(WebSession, col(WebSession.user_id) == col(User.id)).where(
            col(WebSession.token_hash) == _digest(token), col(WebSession.revoked_at).is_(None),
            col(WebSession.expires_at) > now, col(User.active).is_(True))).first()


def end_session(engine: Engine, token: str, now: datetime) -> None:
    with transaction(engine) as session:
        session.execute(update(WebSession).where(col(WebSession.token_hash) == _digest(token),
                                                 col(WebSession.revoked_at).is_(None)).values(revoked_at=now))
