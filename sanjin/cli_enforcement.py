"""`sanjin enforcement list|decide` and `sanjin enterprise exit|bad-record`: the ladder and what ends an enterprise.

Mounted by `sanjin/cli.py` (the two enterprise commands join its `sanjin enterprise` group). Domain errors propagate so `sanjin.cli.main()` shows them in Chinese and English.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from sanjin.terminal import SafeConsole, json_text

if TYPE_CHECKING:  # types only: `sanjin --help` imports no SQLAlchemy
    from sqlalchemy import Engine

    from core.clock_store import DatabaseClock

enforcement_app = typer.Typer(help="处理措施 / the enforcement ladder (约谈 → 整改 → 暂停 → 取消资格)",
                              no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _clock(engine: Engine) -> DatabaseClock:
    from core.clock_store import DatabaseClock

    return DatabaseClock(engine)


@enforcement_app.command("list")
def enforcement_list(program: str, district: str | None = typer.Option(None, "--district", help="区县名称，如 和平区 / a district by name, e.g. 和平区"),
                     as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table")) -> None:
    """列出处理程序及其证据、待决定事项 / list the ladders with their evidence and open gates."""
    from tasks.enforcement.views import list_ladders

    rows = list_ladders(_engine(), program, district=district)
    if as_json:
        typer.echo(json_text([r.as_json() for r in rows]))
        return
    table = Table("编号", "对象", "区县", "违规", "进度", "整改期限", "待决定事项", "证据")
    for r in rows:
        due = "—" if r.due_on is None else r.due_on.isoformat() + ("（暂定）" if r.due_provisional else "")
        table.add_row(str(r.id), r.subject, r.district or "—", r.rule, r.state, due,
                      str(r.open_gate_id) if r.open_gate_id else "—",
                      "；".join(f"{k}:{v}" for k, v in r.evidence.items() if v is not None))
    console.print(table)
    console.print(f"共 {len(rows)} 件 / {len(rows)} ladders")


@enforcement_app.command("decide")
def enforcement_decide(gate: int = typer.Argument(..., min=1, max=2**31 - 1),
                       approve: bool = typer.Option(False, "--approve", help="批准的事项编号（可重复） / an item id to approve (repeatable)"),
                       reject: bool = typer.Option(False, "--reject", help="驳回的事项编号（可重复，须填 --reason） / an item id to reject (repeatable; needs --reason)"),
                       reason: str | None = typer.Option(None, "--reason", help="理由（驳回时必填，通知申请人） / the reason, required for a rejection; the applicant reads it"),
                       bad_record: bool = typer.Option(False, "--bad-record",
                                                       help="取消企业资格时记入不良记录 / record a bad record (004)"),
                       user: str = typer.Option(..., "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """决定处理措施（批准则进入该步骤，驳回则不再处理） / decide an enforcement gate."""
    from sqlmodel import Session

    from flows.resume import resume_waiting_run
    from models.enrollment import Gate
    from models.states import GateKind
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import BadItems, UnknownGate

    if approve == reject:
        raise BadItems("请选择 --approve 或 --reject 之一 / choose one of --approve or --reject")
    engine = _engine()
    with Session(engine) as session:
        row = session.get(Gate, gate)
        if row is None or row.kind not in (GateKind.ENFORCEMENT, GateKind.ENTERPRISE_EXIT):
            raise UnknownGate(gate)
        items = list(row.items)
    result = decide_gate(engine, gate, approve=items if approve else [], reject=items if reject else [],
                         reason=reason, user_name=user, clock=_clock(engine),
                         options={"bad_record": bad_record})
    console.print(f"处理措施 {gate}：{'已批准' if result.approved else '不再处理'} / "
                  f"{'approved' if result.approved else 'dropped'}")
    console.print(resume_waiting_run(result, user))  # a continuous-review run waiting on this gate goes on


@enforcement_app.command("start")
def enforcement_start(program: str, violation: int | None = typer.Option(None, "--violation",
                                                                        help="违规编号 / the violation cited"),
                      institution: str | None = typer.Option(None, "--institution",
                                                             help="机构医保编码或名称 / insurance code or name"),
                      enterprise: str | None = typer.Option(None, "--enterprise", help="企业名称 / enterprise name"),
                      reason: str | None = typer.Option(None, "--reason", help="立案理由 / why the ladder starts"),
                      user: str = typer.Option(..., "--as", help="立案人（项目管理员或所在区县审核员） / who starts it")) -> None:
    """人工启动处理程序：引用违规或说明理由，开启第一步的审批事项 / start a ladder by hand, citing a violation or a reason."""
    from tasks.enforcement.manual import start_ladder

    engine = _engine()
    started = start_ladder(engine, program, user_name=user, clock=_clock(engine), reason=reason,
                           violation_id=violation, institution=institution, enterprise=enterprise)
    console.print(f"已对“{started.subject_name}”启动处理程序 {started.case_id}，待决定事项 {started.gate_id} / "
                  f"ladder {started.case_id} started; gate {started.gate_id} is open")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"日期格式应为 YYYY-MM-DD / a date is YYYY-MM-DD: {value!r}") from None


def enterprise_bad_record(program: str, enterprise: str, starts: str = typer.Option(..., "--from", help="生效日期 YYYY-MM-DD / effective from, YYYY-MM-DD"),
                          reason: str = typer.Option(..., "--reason", help="理由（驳回时必填，通知申请人） / the reason, required for a rejection; the applicant reads it"), user: str = typer.Option(..., "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """记录不良记录：企业自该日起按项目规定年限内不得申报 / record a bad record: barred for the program's years."""
    from tasks.enforcement.bars import bar_enterprise

    engine = _engine()
    bad = bar_enterprise(engine, program, enterprise, starts_on=_day(starts), reason=reason, user_name=user,
                         clock=_clock(engine))
    console.print(f"{enterprise}：自 {bad.starts_on} 起禁止申报至 {bad.barred_until}（含） / "
                  f"barred from {bad.starts_on} through {bad.barred_until}")


def enterprise_exit(program: str, enterprise: str, exits_from: str = typer.Option(..., "--from", help="生效日期 YYYY-MM-DD / effective from, YYYY-MM-DD"),
                    reason: str = typer.Option(..., "--reason", help="理由（驳回时必填，通知申请人） / the reason, required for a rejection; the applicant reads it"), user: str = typer.Option(..., "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """企业申请退出：开启项目负责人的审批事项，批准后自该日起产品移出清单 / an enterprise applies to leave (001)."""
    from tasks.enforcement.exit import request_exit

    engine = _engine()
    gate = request_exit(engine, program, enterprise, exits_on=_day(exits_from), reason=reason, user_name=user,
                        clock=_clock(engine))
    console.print(f"已开启审批事项 {gate}：{enterprise} 自 {exits_from} 起退出（待项目负责人批准） / "
                  f"gate {gate} opened for the manager")
