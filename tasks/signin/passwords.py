"""Password hashes: argon2id for every new hash, the project's older scrypt hashes still verified until upgraded.

Every check costs one argon2 verification, whether the user exists, has a password, or has an old scrypt hash
(ASVS V2.2 / user enumeration by timing): a failed sign-in took 41 ms for a scrypt user and 190 ms for an
unknown name before (issue #18).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when there is nothing real to verify, so a wrong name costs as long as a wrong password.
_DUMMY = _HASHER.hash("sanjin-dummy-password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`, an argon2 (``$argon2...``) or scrypt (``scrypt$...``) hash."""
    if stored and stored.startswith("$argon2"):
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    burn(password)  # the same argon2 cost for a missing, garbled or legacy hash
    return bool(stored) and _verify_scrypt(password, str(stored))


def needs_upgrade(stored: str) -> bool:
    """A scrypt hash, or an argon2 hash with weaker parameters than today's, is replaced after a good sign-in."""
    return not stored.startswith("$argon2") or _HASHER.check_needs_rehash(stored)


def burn(password: str) -> None:
    """One argon2 verification that always fails: the cost of a check when there is no hash to check."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _HASHER.verify(_DUMMY, password + "\x00")


def scrypt_hash(password: str) -> str:
    """The hash the project stored before argon2 (kept to test that such users can still sign in once)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, MemoryError):
        return False
    return secrets.compare_digest(candidate.hex(), digest)
