"""Users who decide gates; a district reviewer is bound to the districts it may review."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session, select

from core.bulk import write_audit
from core.db import transaction
from models.clock import Clock, SystemClock
from models.program import User
from models.states import Role
from models.transitions import AuditRecord
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
             password: str | None = None, email: str | None = None, actor: str = "system",
             clock: Clock | None = None) -> User:
    """Create or update a user; a district reviewer without districts could decide nothing, so it is refused.

    Who may do what is itself a decision someone made: the creation, every change of role or districts and
    every new password is an audit row (never the password itself), stamped with the real time.
    """
    if role == Role.DISTRICT_REVIEWER and not districts:
        raise BadUser(f"区县审核员 {name} 必须指定 --district / a district reviewer needs at least one --district")
    if role != Role.DISTRICT_REVIEWER and districts:
        raise BadUser(f"只有区县审核员绑定区县 / only district reviewers are bound to districts ({name} is {role.value})")
    with transaction(engine) as session:
        existing = session.exec(select(User).where(User.name == name)).first()
        before = (existing.role.value, list(existing.districts), existing.email) if existing else None
        user = existing or User(name=name, role=role)
        user.role, user.districts, user.display_name = role, list(districts), display_name or user.display_name
        if email:
            user.email = validate_email(email)
        if password:
            user.password_hash = hash_password(password)
        session.add(user)
        session.flush()
        assert user.id is not None
        data: dict[str, object] = {"districts": list(user.districts), "email_set": bool(user.email),
                                   "password_set": bool(password)}
        if before is not None:
            data |= {"districts_before": before[1], "email_changed": before[2] != user.email}
        write_audit(session, [AuditRecord(
            entity="user", entity_id=user.id, action="create" if before is None else "update",
            from_state=None if before is None else before[0], to_state=role.value, actor=actor,
            role=_role_of(session, actor), at=(clock or SystemClock()).now(), reason=None, program_id=None,
            data=data)])
        return user


def _role_of(session: Session, actor: str) -> Role:
    """The role an acting person holds (system for the command line's own operator)."""
    role = session.exec(select(User.role).where(User.name == actor)).first()
    return Role(role) if role is not None else Role.SYSTEM
