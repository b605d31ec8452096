"""Password checks for the web sign-in: argon2id for new hashes, the project's scrypt hashes still accepted."""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tasks.users import verify_password as verify_scrypt

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the user is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash("sanjin-dummy-password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`, an argon2 (``$argon2...``) or scrypt (``scrypt$...``) hash."""
    if not stored:
        _burn(password)
        return False
    if stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return verify_scrypt(password, stored)


def needs_upgrade(stored: str) -> bool:
    """A scrypt hash, or an argon2 hash with weaker parameters than today's, is replaced after a good sign-in."""
    return not stored.startswith("$argon2") or _HASHER.check_needs_rehash(stored)


def _burn(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _HASHER.verify(_DUMMY, password + "\x00")
