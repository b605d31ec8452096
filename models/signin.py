"""Sign-in bookkeeping: failed attempts per account and per address, and server-side web sessions.

Reference: OWASP ASVS 4.0.3 level 2 — V2.2.1 (anti-automation: throttling and lockout), V3.3.1 (logout
invalidates the session), V3.3.3 (a password change ends the other sessions), V3.2.3 (the session token
is stored server-side, the cookie carries only a random reference).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime


class ThrottleScope(StrEnum):
    ACCOUNT = "account"  # keyed by the name typed in, known or not: a lockout must not reveal who exists
    ADDRESS = "address"  # keyed by the client address


class SignInThrottle(SQLModel, table=True):
    """Failures counted for one account name or one client address; a lock holds until lifted or expired."""

    __table_args__ = (UniqueConstraint("scope", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    key: str = Field(max_length=200)
    failures: int = 0
    window_started_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    last_failed_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    # An account stays locked until an administrator lifts it (`sanjin user unlock`); an address until
    # `locked_at + address_block`, so a shared office gateway is not shut out for good by one guesser.
    locked_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the row its SHA-256, so a stolen database leaks none."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))
    address: str | None = Field(default=None, max_length=64)


def window_expired(started: datetime, now: datetime, window: timedelta) -> bool:
    """A count of failures older than its window starts again at one: throttling slows guessing, not people."""
    return now - started >= window


def account_locked(failures: int, limit: int) -> bool:
    """ASVS V2.2.1: after `limit` consecutive failures the account takes no password until an admin unlocks it."""
    return failures >= limit


def address_blocked(locked_at: datetime | None, now: datetime, block: timedelta) -> bool:
    return locked_at is not None and now - locked_at < block
