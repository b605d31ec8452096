"""Finding an enterprise by name, and the errors of the enterprise commands (shown as messages, never tracebacks)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from models.catalog import Enterprise
from tasks.gates.rows import GateError


class UnknownEnterprise(GateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"系统中没有名为“{name}”的企业 / no enterprise named {name!r}")


class ManagersOnly(GateError):
    def __init__(self, user: str) -> None:
        super().__init__(f"{user} 不是项目负责人，不能记录不良记录或企业退出 / {user} is not a program manager")


def find_enterprise(session: Session, name: str) -> Enterprise:
    enterprise: Enterprise | None = session.execute(
        select(Enterprise).where(col(Enterprise.name) == name)).scalars().first()
    if enterprise is None:
        raise UnknownEnterprise(name)
    return enterprise
