"""Users who decide gates: adding, listing, new passwords, disabling and lifting a sign-in lockout — each audited.

A district reviewer is bound to districts of a loaded program; a name is added once (a second `user add` used
to change the role silently, issue #18); a new password or a disabled account ends every web session at once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col, select

from core.bulk import write_audit
from core.db import transaction
from core.settings import get_settings
from models.base import utcnow
from models.clock import Clock, SystemClock
from models.passwords import password_problems
from models.program import Program, User
from models.signin import SignInThrottle, ThrottleScope, WebSession
from models.states import Role
from models.transitions import AuditRecord
from models.validators import validate_email
from tasks.signin.passwords import hash_password


class BadUser(ValueError):
    pass


@dataclass(frozen=True)
class UserRow:
    name: str
    display_name: str | None
    role: Role
    districts: tuple[str, ...]
    active: bool
    has_password: bool
    locked: bool
    unit: str | None = None  # 和平区医疗保障局: thirteen reviewers all called 审核科 differ only by it


def check_name(name: str) -> str:
    """A login name is printed in terminals and pages: no control or format characters, no spaces."""
    if not name or len(name) > 64:
        raise BadUser("用户名须为 1–64 个字符 / a user name has 1 to 64 characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp") for ch in name):
        raise BadUser("用户名不能包含空格或控制字符 / a user name may not contain spaces or control characters")
    return name


def check_password(password: str, name: str) -> str:
    problems = password_problems(password, user_name=name, min_length=get_settings().password_min_length)
    if problems:
        raise BadUser("；".join(problems))
    return password


def known_districts(session: Session) -> set[str]:
    """The districts of every loaded program: the only ones a reviewer can be bound to."""
    names: set[str] = set()
    for definition in session.exec(select(Program.definition)).all():
        names.update(str(d.get("name")) for d in definition.get("districts", []) if isinstance(d, dict))
    return names


def add_user(engine: Engine, name: str, role: Role, *, districts: Sequence[str] = (), display_name: str | None = None,
             password: str | None = None, email: str | None = None, unit: str | None = None,
             actor: str = "system", clock: Clock | None = None) -> User:
    """Create a user; an existing name, an unknown district or a weak password is refused and nothing is written.

    Who may do what is itself a decision someone made: the creation is an audit row (never the password
    itself) naming who created it, stamped with the real time.
    """
    check_name(name)
    if role == Role.SYSTEM:
        raise BadUser("“系统”角色仅供流程使用 / the system role is for the flows only")
    if role == Role.DISTRICT_REVIEWER and not districts:
        raise BadUser(f"区县审核员 {name} 必须指定 --district / a district reviewer needs at least one --district")
    if role != Role.DISTRICT_REVIEWER and districts:
        raise BadUser(f"只有区县审核员绑定区县 / only district reviewers are bound to districts ({name} is {role.value})")
    if password is not None:
        check_password(password, name)
    with transaction(engine) as session:
        if session.exec(select(User.id).where(User.name == name)).first() is not None:
            raise BadUser(f"用户 {name} 已存在；修改密码用 `sanjin user passwd`，停用用 `sanjin user disable` / "
                          f"user {name} already exists")
        unknown = sorted(set(districts) - known_districts(session))
        if unknown:
            raise BadUser(f"未知区县：{'、'.join(unknown)}（须为已载入项目文件中的区县） / unknown district(s): "
                          f"{', '.join(unknown)} — not a district of any loaded program")
        user = User(name=name, role=role, districts=list(dict.fromkeys(districts)), display_name=display_name, unit=unit,
                    email=validate_email(email) if email else None,
                    password_hash=hash_password(password) if password is not None else None)
        session.add(user)
        session.flush()
        _audit(session, user, "create", actor, data={"role": role.value, "districts": list(user.districts),
                                                     "email_set": bool(user.email), "password_set": bool(password)},
               at=(clock or SystemClock()).now(), role=_role_of(session, actor), to_state=role.value)
        return user


def get_user(engine: Engine, name: str) -> User:
    """An active user by login name; an unknown name is refused with a message (BadUser)."""
    from sqlmodel import Session

    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name, User.active == True)).first()  # noqa: E712
    if user is None:
        raise BadUser(f"没有用户 {name}（sanjin user add 添加） / no active user {name!r}")
    return user


def set_password(engine: Engine, name: str, password: str, *, actor: str) -> int:
    """A new password; every web session of the user ends (ASVS V3.3.3). Returns how many sessions ended."""
    check_password(password, name)
    with transaction(engine) as session:
        user = _existing(session, name)
        user.password_hash = hash_password(password)
        session.add(user)
        ended = revoke_sessions(session, user)
        _audit(session, user, "set_password", actor, data={"sessions_ended": ended})
        return ended


def disable_user(engine: Engine, name: str, *, actor: str, reason: str | None = None) -> int:
    """The user can no longer sign in or decide; its open sessions end now. Returns how many ended."""
    with transaction(engine) as session:
        user = _existing(session, name)
        user.active = False
        session.add(user)
        ended = revoke_sessions(session, user)
        _audit(session, user, "disable", actor, reason=reason, data={"sessions_ended": ended})
        return ended


def unlock(engine: Engine, *, name: str | None = None, address: str | None = None, actor: str) -> int:
    """Lift the sign-in lockout of an account name and/or a client address; returns how many locks were lifted."""
    if not name and not address:
        raise BadUser("请指定用户名或 --address / name a user or an --address")
    lifted = 0
    with transaction(engine) as session:
        for scope, key in ((ThrottleScope.ACCOUNT, name), (ThrottleScope.ADDRESS, address)):
            if not key:
                continue
            gone = session.execute(delete(SignInThrottle).where(col(SignInThrottle.scope) == scope.value,
                                                                col(SignInThrottle.key) == key))
            lifted += int(gone.rowcount or 0)  # type: ignore[attr-defined]
        user = session.exec(select(User).where(User.name == name)).first() if name else None
        write_audit(session, [AuditRecord(
            entity="user", entity_id=user.id if user and user.id is not None else (name or address or ""),
            action="unlock", from_state=None, to_state=None, actor=actor, role=Role.SYSTEM, at=utcnow(),
            data={"name": name, "address": address, "lifted": lifted})])
    return lifted


def list_users(engine: Engine) -> list[UserRow]:
    with Session(engine) as session:
        users = session.exec(select(User).order_by(col(User.name))).all()
        locked = set(session.exec(select(SignInThrottle.key).where(
            col(SignInThrottle.scope) == ThrottleScope.ACCOUNT.value,
            col(SignInThrottle.locked_at).is_not(None))).all())
    return [UserRow(u.name, u.display_name, u.role, tuple(u.districts), u.active, u.password_hash is not None,
                    u.name in locked, u.unit) for u in users]


def revoke_sessions(session: Session, user: User, *, at: datetime | None = None) -> int:
    result = session.execute(update(WebSession).where(col(WebSession.user_id) == user.id,
                                                      col(WebSession.revoked_at).is_(None))
                             .values(revoked_at=at or utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _existing(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise BadUser(f"没有用户 {name} / no user named {name}")
    return user


def _audit(session: Session, user: User, action: str, actor: str, *, reason: str | None = None,
           data: dict[str, object] | None = None, at: datetime | None = None, role: Role | None = None,
           to_state: str | None = None) -> None:
    assert user.id is not None
    write_audit(session, [AuditRecord(entity="user", entity_id=user.id, action=action, from_state=None,
                                      to_state=to_state, actor=actor, role=role or _role_of(session, actor),
                                      at=at or utcnow(), reason=reason, data={"name": user.name, **(data or {})})])


def _role_of(session: Session, actor: str) -> Role:
    """The role an acting person holds (system for the command line's own operator)."""
    held = session.exec(select(User.role).where(User.name == actor)).first()
    return Role(held) if held is not None else Role.SYSTEM
