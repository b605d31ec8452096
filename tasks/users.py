"""Users who decide gates; a district reviewer is bound to the districts it may review."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import select

from core.db import transaction
from models.program import User
from models.states import Role
from models.validators import validate_email


class BadUser(ValueError):
    pass


def hash_password(password: str) -> str:
    """scrypt from the standard library: memory-hard, no extra dependency, self-describing string."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return secrets.compare_digest(candidate.hex(), digest)


def add_user(engine: Engine, name: str, role: Role, *, districts: Sequence[str] = (), display_name: str | None = None,
             password: str | None = None, email: str | None = None, unit: str | None = None) -> User:
    """Create or update a user; a district reviewer without districts could decide nothing, so it is refused."""
    if role == Role.DISTRICT_REVIEWER and not districts:
        raise BadUser(f"区县审核员 {name} 必须指定 --district / a district reviewer needs at least one --district")
    if role != Role.DISTRICT_REVIEWER and districts:
        raise BadUser(f"只有区县审核员绑定区县 / only district reviewers are bound to districts ({name} is {role.value})")
    with transaction(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first() or User(name=name, role=role)
        user.role, user.districts, user.display_name = role, list(districts), display_name or user.display_name
        user.unit = unit or user.unit
        if email:
            user.email = validate_email(email)
        if password:
            user.password_hash = hash_password(password)
        session.add(user)
        session.flush()
        return user


def get_user(engine: Engine, name: str) -> User:
    """An active user by login name; an unknown name is refused with a message (BadUser)."""
    from sqlmodel import Session

    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name, User.active == True)).first()  # noqa: E712
    if user is None:
        raise BadUser(f"没有用户 {name}（sanjin user add 添加） / no active user {name!r}")
    return user
