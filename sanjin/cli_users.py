"""`sanjin user list|passwd|disable|unlock`: the administrator's side of sign-in. Each change is audited.

Kept apart from `sanjin/cli.py` (which keeps `user add`); mounted on its `user` group.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from models import labels
from sanjin.terminal import SafeConsole

if TYPE_CHECKING:  # types only: `sanjin --help` imports no SQLAlchemy
    from sqlalchemy import Engine

console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


def user_list() -> None:
    """列出用户及其状态 / list users: role, districts, active, password set, locked."""
    from tasks.users import list_users

    table = Table("用户名 / name", "姓名 / display", "单位 / unit", "角色 / role", "区县 / districts", "状态 / state")
    for row in list_users(_engine()):
        state = "已停用" if not row.active else ("已锁定" if row.locked else "正常")
        if row.active and not row.has_password:
            state += "（未设密码，不能登录网页）"
        table.add_row(row.name, row.display_name or "—", row.unit or "—", labels.ROLE_LABELS[row.role.value],
                      "、".join(row.districts) or "—", state)
    console.print(table)


def user_passwd(name: str, actor: str | None = typer.Option(None, "--as", help="操作人 / who changes it")) -> None:
    """设定新密码（输入两次，不回显）；该用户所有网页会话立即失效 / set a new password; ends every web session."""
    from tasks.users import get_user, set_password

    get_user(_engine(), name)  # an unknown name is refused before anyone types a password
    password = typer.prompt("新密码 / new password", hide_input=True, confirmation_prompt=True)
    ended = set_password(_engine(), name, password, actor=_actor(actor))
    console.print(f"{name}: 密码已更新，结束了 {ended} 个网页会话 / password changed, {ended} session(s) ended")


def user_disable(name: str, reason: str | None = typer.Option(None, "--reason", help="停用原因（记入审计日志） / why (audited)"),
                 actor: str | None = typer.Option(None, "--as", help="操作人 / who disables it")) -> None:
    """停用用户：不能再登录或审批，现有网页会话立即失效 / disable a user; ends every web session."""
    from tasks.users import disable_user

    ended = disable_user(_engine(), name, actor=_actor(actor), reason=reason)
    console.print(f"{name}: 已停用，结束了 {ended} 个网页会话 / disabled, {ended} session(s) ended")


def user_unlock(name: str | None = typer.Argument(None),
                address: str | None = typer.Option(None, "--address", help="解除某地址的限制 / lift an address block"),
                actor: str | None = typer.Option(None, "--as", help="操作人 / who lifts it")) -> None:
    """解除因连续登录失败造成的锁定 / lift a sign-in lockout (an account, and/or an --address)."""
    from tasks.users import unlock

    lifted = unlock(_engine(), name=name, address=address, actor=_actor(actor))
    what = " ".join(x for x in (name, address) if x)
    console.print(f"{what}: 已解除 {lifted} 项锁定 / {lifted} lock(s) lifted" if lifted
                  else f"{what}: 没有锁定 / nothing was locked")


def mount(user_app: typer.Typer) -> None:
    user_app.command("list")(user_list)
    user_app.command("passwd")(user_passwd)
    user_app.command("disable")(user_disable)
    user_app.command("unlock")(user_unlock)
