"""The password policy, a pure rule: long enough, not a password everybody tries first, not the user's own name.

Reference: OWASP ASVS 4.0.3 V2.1.1 (at least 12 characters), V2.1.2 (up to at least 64, at most 128),
V2.1.7 (refuse common or breached passwords — here a small list bundled with the product, as the bureau's
intranet has no way out), V2.1.9 (no composition rules: a long pass phrase in Chinese is fine).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS = Path(__file__).resolve().parent / "common_passwords.txt"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(_normal(line) for line in lines if line.strip() and not line.startswith("#"))


def _normal(password: str) -> str:
    return unicodedata.normalize("NFKC", password).strip().casefold()


def password_problems(password: str, *, user_name: str, min_length: int = MIN_LENGTH) -> list[str]:
    """What is wrong with `password` for `user_name`, in Chinese and English; empty when it may be used."""
    problems: list[str] = []
    length = len(unicodedata.normalize("NFC", password))
    if length < min_length:
        problems.append(f"密码至少 {min_length} 个字符（现为 {length} 个） / the password needs at least "
                        f"{min_length} characters ({length} given)")
    if length > MAX_LENGTH:
        problems.append(f"密码最多 {MAX_LENGTH} 个字符 / the password may have at most {MAX_LENGTH} characters")
    normal = _normal(password)
    if normal in common_passwords() or len(set(normal)) <= 2:
        problems.append("该密码过于常见或过于简单，容易被猜中 / this password is too common or too simple")
    name = _normal(user_name)
    if len(name) >= 3 and name in normal:
        problems.append("密码不能包含用户名 / the password must not contain the user name")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        problems.append("密码不能包含控制字符 / the password must not contain control characters")
    return problems
