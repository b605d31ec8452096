"""`sanjin operations import …` and `sanjin violations list …`: the platform's operational data and what it breaks.

Kept apart from `sanjin/cli.py`, which mounts these with two lines. Domain errors (an unknown program, a refused
file) propagate, so `sanjin.cli.main()` shows them as messages in Chinese and English, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from models.compliance.codes import RULE_LABELS, SUBJECT_LABELS, VIOLATION_STATE_LABELS, ViolationRule
from sanjin.terminal import SafeConsole, json_text

if TYPE_CHECKING:  # types only: `sanjin --help` imports no SQLAlchemy
    from sqlalchemy import Engine

    from core.clock_store import DatabaseClock

operations_app = typer.Typer(help="运营数据 / the provincial platform's operational exports", no_args_is_help=True)
violations_app = typer.Typer(help="违规 / violations found by continuous review", no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _clock() -> DatabaseClock:
    from core.clock_store import DatabaseClock

    return DatabaseClock(_engine())


@operations_app.command("import")
def operations_import(program: str, kind: str = typer.Argument(..., help="orders|deliveries|payments|prices|"
                                                                        "lowest-prices|price-reports|price-index"),
                      file: Path = typer.Argument(..., exists=True, dir_okay=False),
                      actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """导入省招采子系统导出文件 / import a platform export (all-or-nothing)."""
    from tasks.intake.operations_import import OPERATIONS_KIND_LABELS, OperationsKind, import_operations

    try:
        which = OperationsKind(kind)
    except ValueError:
        raise typer.BadParameter(f"未知类型 unknown kind {kind!r}: {', '.join(k.value for k in OperationsKind)}") from None
    result = import_operations(_engine(), program, which, file, clock=_clock(), actor=actor)
    label = OPERATIONS_KIND_LABELS[which]
    if result.already_imported:
        console.print(f"{label}：该文件已导入过，未作任何改动 / this file was imported before; nothing changed")
    else:
        console.print(f"{label}：{result.rows} 行，新增 {result.created} 条 / {result.rows} rows, {result.created} new")


@violations_app.command("list")
def violations_list(program: str, rule: ViolationRule | None = typer.Option(None, "--rule", help="只看某条规则 / one compliance rule only"),
                    district: list[str] = typer.Option(None, "--district", help="区县名称，如 和平区（可重复） / a district by name, e.g. 和平区 (repeatable)"),
                    open_only: bool = typer.Option(False, "--open", help="只看未整改 / open ones only"),
                    limit: int = typer.Option(200, "--limit", min=1, help="最多显示条数 / show at most this many rows"),
                    as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table"),
                    actor: str | None = typer.Option(None, "--as", help="以该用户身份查看（区县审核员只见本区县） / "
                                                                        "show what this user may see")) -> None:
    """列出违规及证据 / list violations with their evidence, newest first."""
    from tasks.compliance.views import list_violations
    from tasks.trust.scope import acting_user, check_districts

    districts = check_districts(acting_user(_engine(), actor), district or None) if actor else district or None
    rows = list_violations(_engine(), program, rule=rule, districts=districts, open_only=open_only,
                           limit=limit)
    if as_json:
        typer.echo(json_text([r.as_json() for r in rows]))
        return
    table = Table("编号", "规则", "对象", "事项", "区县", "状态", "发现日期", "证据 / 消除原因")
    for r in rows:
        detail = (f"{r.closed_on} {r.closed_reason.split(' / ')[0]}" if r.closed_reason else
                  "；".join(f"{k}:{v}" for k, v in r.evidence.items() if v is not None))
        table.add_row(str(r.id), RULE_LABELS[r.rule], f"{SUBJECT_LABELS[r.subject_type]} {r.subject_name}",
                      r.object_key or "—", r.district or "—", VIOLATION_STATE_LABELS[r.state],
                      r.detected_on.isoformat(), detail)
    console.print(table)
    console.print(f"共 {len(rows)} 条 / {len(rows)} violations")
