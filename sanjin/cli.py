"""`sanjin`: the one entry point for people. Each command is a few lines calling tasks or flows."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from models import labels
from models.clock import SHANGHAI
from models.phase_names import PhaseName
from models.states import Role
from sanjin.terminal import SafeConsole, data, json_text

if TYPE_CHECKING:  # `sanjin --help` and the commands that run no flow import neither SQLAlchemy nor Prefect here
    from sqlalchemy import Engine

    from core.clock_store import DatabaseClock

app = typer.Typer(help="集采药品“三进”工作管理系统 / the 三进 program workflow system", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="数据库 / database schema", no_args_is_help=True)
program_app = typer.Typer(help="项目定义 / program definitions", no_args_is_help=True)
gate_app = typer.Typer(help="审批事项 / human decisions (gates)", no_args_is_help=True)
user_app = typer.Typer(help="用户 / users and roles", no_args_is_help=True)
clock_app = typer.Typer(help="模拟时钟 / the shared simulated clock", no_args_is_help=True)
enterprise_app = typer.Typer(help="生产企业 / enterprises", no_args_is_help=True)
institution_app = typer.Typer(help="医药机构 / institutions", no_args_is_help=True)
alliance_app = typer.Typer(help="联盟 / alliance invitations", no_args_is_help=True)
accounts_app = typer.Typer(help="平台账户 / platform accounts (provincial procurement subsystem)", no_args_is_help=True)
contracts_app = typer.Typer(help="购销协议 / annual purchase contracts", no_args_is_help=True)
for sub, name in ((db_app, "db"), (program_app, "program"), (gate_app, "gate"), (user_app, "user"),
                  (clock_app, "clock"), (enterprise_app, "enterprise"), (institution_app, "institution"),
                  (alliance_app, "alliance"), (accounts_app, "accounts"), (contracts_app, "contracts")):
    app.add_typer(sub, name=name)

console = SafeConsole(width=None if sys.stdout.isatty() else 160)
# Row ids are 32-bit on PostgreSQL: `gate decide 99999999999999999999` overflowed the driver with a traceback.
ID_MAX = 2**31 - 1
AS_HELP = "以该用户身份查看：区县审核员只见本人负责的区县 / show what this user may see (a reviewer: its districts)"


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _clock() -> DatabaseClock:
    from core.clock_store import DatabaseClock

    return DatabaseClock(_engine())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """创建或升级数据库结构 / create or upgrade the schema."""
    from core.migrate import current_revision, upgrade

    engine = _engine()
    upgrade(engine)
    console.print(f"数据库已是最新 / schema at revision {current_revision(engine)} ({engine.url.render_as_string()})")


@program_app.command("load")
def program_load(files: list[Path], actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """载入项目文件（重复载入不产生变化） / load program files (idempotent)."""
    from tasks.programs import load_program

    for path in files:
        result = load_program(_engine(), path, clock=_clock(), actor=actor)
        console.print(f"{result.slug}: {result.outcome}")


@program_app.command("show")
def program_show(slug: str, as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table")) -> None:
    """显示项目定义 / show a program's definition."""
    from sqlmodel import Session

    from tasks.programs import get_program

    with Session(_engine()) as session:
        _, defn = get_program(session, slug)
    if as_json:
        typer.echo(json_text(defn.model_dump(mode="json")))
        return
    console.print(f"[bold]{data(defn.name)}[/] ({data(defn.slug)}) — {data(defn.region)}", markup=True)
    for spec in defn.timeline():
        console.print(f"  {spec.window.opens} ~ {spec.window.closes or '长期'}  {spec.display_label}")
    console.print("  审批链 / approval chain: " + " → ".join(f"{lvl.label}（{lvl.scope}）" for lvl in defn.approval_chain))
    console.print(f"  区县 / districts: {'、'.join(d.name for d in defn.districts)}")


@user_app.command("add")
def user_add(name: str, role: Role = typer.Option(..., "--role", help="角色：program_manager 项目管理员、district_reviewer 区县审核员、observer 观察员 / the user's role"),
             district: list[str] = typer.Option([], "--district", help="区县名称，如 和平区（可重复） / a district by name, e.g. 和平区 (repeatable)"),
             display_name: str | None = typer.Option(None, "--display-name", help="显示姓名，如 王科长（页面和信函中显示，不显示登录名） / the name people see"),
             unit: str | None = typer.Option(None, "--unit", help="所在单位，如 和平区医疗保障局（信函称谓和页面显示） / the person's unit, e.g. 和平区医疗保障局"),
             password: str | None = typer.Option(None, "--password", help="网页登录密码（至少 12 位，不得为常见密码；会出现在进程列表和命令历史中，脚本请用 --password-stdin） / password for the web pages (visible in the process list: prefer --ask-password or --password-stdin)"),
             ask_password: bool = typer.Option(False, "--ask-password", help="交互输入密码（输入两次，不回显） / type the password twice, hidden"),
             password_stdin: bool = typer.Option(False, "--password-stdin", help="从标准输入的第一行读取密码（供脚本使用） / read the password from the first line of standard input"),
             email: str | None = typer.Option(None, "--email", help="电子邮箱（接收督办、待办提醒） / e-mail for reminders and escalations"),
             actor: str | None = typer.Option(None, "--as", help="操作人（默认为系统登录名） / who adds it")) -> None:
    """添加用户（已有的用户名、未知区县、弱密码均被拒绝） / add a user (district reviewers need --district)."""
    from models.people import person_label
    from tasks.users import add_user

    if sum((password is not None, ask_password, password_stdin)) > 1:
        raise typer.BadParameter("--password、--ask-password、--password-stdin 只能选一个 / choose one way to give the password")
    if ask_password:
        password = typer.prompt("新密码 / new password", hide_input=True, confirmation_prompt=True)
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    user = add_user(_engine(), name, role, districts=district, display_name=display_name, unit=unit,
                    password=password, email=email, actor=actor or _operator())
    shown = person_label(user.name, display_name=user.display_name, unit=user.unit, role=user.role.value,
                         districts=user.districts)
    console.print(f"已保存用户 / saved: {shown}（{labels.ROLE_LABELS[user.role.value]}"
                  f"{'：' + '、'.join(user.districts) if user.districts else ''}；登录名 {user.name}）")


@clock_app.command("show")
def clock_show() -> None:
    clock = _clock()
    simulated = clock.simulated()
    console.print(f"{clock.now():%Y-%m-%d %H:%M} {'(模拟时钟 / simulated)' if simulated else '(系统时间 / system)'}")


def _operator() -> str:
    import getpass

    return getpass.getuser()


@clock_app.command("set")
def clock_set(when: datetime,
              actor: str | None = typer.Option(None, "--as", help="操作人（默认为系统登录名） / who moves it")) -> None:
    """设定模拟时间（上海时间；仅 SANJIN_CLOCK=database 的演示/测试库，记入审计日志） / set the simulated time."""
    moved = _clock().change_audited(when.replace(tzinfo=when.tzinfo or SHANGHAI), actor=actor or _operator())
    assert moved is not None
    console.print(f"{moved:%Y-%m-%d %H:%M}")


@clock_app.command("clear")
def clock_clear(actor: str | None = typer.Option(None, "--as", help="操作人 / who clears it")) -> None:
    """恢复系统时间（记入审计日志） / back to system time."""
    _clock().change_audited(None, actor=actor or _operator())
    console.print("已恢复系统时间 / back to system time")


@enterprise_app.command("declare")
def enterprise_declare(program: str, file: Path, enterprise: str = typer.Option(..., "--enterprise", help="企业名称（与申报表一致） / the enterprise's name"),
                       actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """导入企业申报品种明细表 / import an enterprise's product table (XLSX, 12 headers of 002 att.2)."""
    from tasks.intake.declaration_import import import_declaration

    _print_import(import_declaration(_engine(), program, file, enterprise, clock=_clock(), actor=actor))


@institution_app.command("apply")
def institution_apply(program: str, file: Path, actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """导入医药机构申请 / import institution applications (XLSX or CSV)."""
    from tasks.intake.application_import import import_applications

    _print_import(import_applications(_engine(), program, file, clock=_clock(), actor=actor))


def _print_import(result: Any) -> None:
    if result.already_imported:
        console.print(f"该文件已导入过，未作改动 / this file was imported before (import {result.import_id}): nothing changed")
        return
    console.print(f"导入完成 / imported: {result.rows} 行, 新建 {result.created}, 跳过 {len(result.skipped)}")
    for row, reason in result.skipped:
        console.print(f"  跳过 / skipped row {row}: {reason}")
    for warning in result.warnings:
        console.print(f"  [yellow]提示 / warning[/]: {data(warning)}", markup=True)


@alliance_app.command("respond")
def alliance_respond(program: str, city: str, accept: bool = typer.Option(..., "--accept/--decline", help="同意或谢绝加入联盟 / the city accepts or declines"),
                     actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """记录城市对联盟邀请的答复 / record a city's answer."""
    from tasks.phases.alliance import respond_to_invitation

    state = respond_to_invitation(_engine(), program, city, accept=accept, clock=_clock(), actor=actor)
    console.print(f"{city}: {labels.INVITATION_STATE_LABELS[state.value]}")


@institution_app.command("select")
def institution_select(program: str, file: Path, actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """导入机构选定的药品（机构医保编码, 药品统一编码, 销售价格(元), 年采购量） / import drug selections."""
    from tasks.platform.selections import import_selections

    result = import_selections(_engine(), program, file, clock=_clock(), actor=actor)
    console.print(f"选定 / selections: {result.rows} 行, 新增 {result.created}, 更新 {result.updated}, 未变 {result.unchanged}")


def _print_platform(result: Any) -> None:
    if result.already_imported:
        console.print("该文件已导入过，未作改动 / this file was imported before: nothing changed")
        return
    console.print(f"{result.rows} 行, 更新 {result.changed}, 未变 {result.unchanged}")
    for warning in result.warnings:
        console.print(f"  [yellow]提示 / warning[/]: {data(warning)}", markup=True)


@accounts_app.command("import")
def accounts_import(program: str, file: Path, actor: str = typer.Option("platform", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """导入省招采子系统账户注册情况（机构医保编码, 平台账号, 注册日期） / import the platform's account export."""
    from tasks.platform.accounts import import_platform_accounts

    _print_platform(import_platform_accounts(_engine(), program, file, clock=_clock(), actor=actor))


@accounts_app.command("register")
def accounts_register(program: str, insurance_code: str, account_no: str,
                      registered_on: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="日期 YYYY-MM-DD / the date, YYYY-MM-DD"),
                      actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """登记单个机构的平台账户 / record one institution's platform account."""
    from tasks.platform.accounts import register_account

    _print_platform(register_account(_engine(), program, insurance_code, account_no, registered_on.date(),
                                     clock=_clock(), actor=actor))


@contracts_app.command("import")
def contracts_import(program: str, file: Path, actor: str = typer.Option("platform", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """导入购销协议签订情况（机构医保编码, 企业名称, 年度, 签订日期） / import the platform's contract export."""
    from tasks.platform.contracts import import_platform_contracts

    _print_platform(import_platform_contracts(_engine(), program, file, clock=_clock(), actor=actor))


@contracts_app.command("sign")
def contracts_sign(program: str, insurance_code: str, enterprise: str = typer.Option(..., "--enterprise", help="企业名称（与申报表一致） / the enterprise's name"),
                   year: int = typer.Option(..., "--year", min=2000, max=2100, help="协议年度，如 2025 / the contract year"),
                   signed_on: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="日期 YYYY-MM-DD / the date, YYYY-MM-DD"),
                   actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """登记单份购销协议已签订 / record one signed contract."""
    from tasks.platform.contracts import sign_contract

    _print_platform(sign_contract(_engine(), program, insurance_code, enterprise, year, signed_on.date(),
                                  clock=_clock(), actor=actor))


@app.command("laggards")
def laggards_command(program: str,
                     district: list[str] = typer.Option([], "--district", help="只看这些区县（可重复） / only these districts (repeatable)"),
                     limit: int = typer.Option(50, "--limit", min=0, help="最多显示条数，0 为全部（默认 50） / at most this many rows, 0 for all (default 50)"),
                     as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table"),
                     actor: str | None = typer.Option(None, "--as", help=AS_HELP)) -> None:
    """未注册账户、未签协议的机构（代采机构除外）及逾期天数，最晚的在前 / institutions behind on accounts or contracts."""
    from dataclasses import asdict

    from rich.table import Table

    from tasks.platform.laggards import laggards
    from tasks.trust.scope import acting_user, may_see_district

    user = acting_user(_engine(), actor) if actor else None
    every = [r for r in laggards(_engine(), program, clock=_clock())
             if (not district or r.district in district) and (user is None or may_see_district(user, r.district))]
    rows = every[:limit] if limit else every
    if as_json:
        typer.echo(json_text([asdict(r) for r in rows], default=str))
        return
    where = f"（{'、'.join(district)}）" if district else ""
    if not every:
        console.print(f"没有进度滞后的机构{where} / no institution is behind")
        return
    table = Table("机构", "区县", "医保编码", "事项", "截止", "逾期(工作日)")
    for r in rows:
        what = labels.LAGGARD_LABELS.get(r.what, "其他事项")
        if r.enterprises:
            what += "：" + "、".join(r.enterprises)
        table.add_row(r.name, r.district, r.insurance_code, what,
                      r.due_on.isoformat() + ("（暂定）" if r.due_provisional else ""), str(r.days_late))
    console.print(table)
    shown = f"，显示最晚的 {len(rows)} 家（--limit 0 显示全部）" if len(rows) < len(every) else ""
    console.print(f"共 {len(every)} 家{where}{shown} / {len(every)} institutions, {len(rows)} shown")


@gate_app.command("list")
def gate_list(program: str | None = typer.Option(None, "--program", help="项目代码，如 shenyang-2025 / the program's slug"),
              district: str | None = typer.Option(None, "--district", help="区县名称，如 和平区 / a district by name, e.g. 和平区"),
              as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table"),
              actor: str | None = typer.Option(None, "--as", help=AS_HELP)) -> None:
    """列出待决定的审批事项 / list open gates."""
    from rich.table import Table
    from sqlmodel import Session

    from models.gate_decisions import decided_count, decided_ids
    from tasks.gates.rows import list_gates
    from tasks.programs import get_program

    engine = _engine()
    program_id = None
    if program:
        with Session(engine) as session:
            program_id = get_program(session, program)[0].id
    gates = list_gates(engine, program_id=program_id, district=district)
    if actor:  # a district reviewer sees its own districts' gates (and the city's, which it cannot decide: none)
        from tasks.trust.scope import acting_user, check_districts

        user = acting_user(engine, actor)
        mine = check_districts(user, [district] if district else None)
        gates = [g for g in gates if mine is None or g.district in mine]
    if as_json:
        typer.echo(json_text([{"id": g.id, "kind": g.kind.value, "title": g.title, "district": g.district,
                               "decider_role": g.decider_role.value, "due_on": g.due_on.isoformat(),
                               "due_on_provisional": g.due_on_provisional,
                               "items": g.items, "decided_items": sorted(map(str, decided_ids(g.decision)))}
                              for g in gates]))
        return
    if not gates:
        scope = "、".join(x for x in (program, district) if x)
        console.print(f"没有待决定的审批事项{'（' + scope + '）' if scope else ''} / no open gates")
        return
    table = Table("编号", "事项", "区县", "决定人", "到期", "已决定/事项数")
    for g in gates:
        table.add_row(str(g.id), g.title, g.district or "—", labels.ROLE_LABELS[g.decider_role.value],
                      g.due_on.isoformat() + ("（暂定）" if g.due_on_provisional else ""),
                      f"{decided_count(g.decision)}/{len(g.items)}")
    console.print(table)


@gate_app.command("decide")
def gate_decide(gate: int = typer.Argument(..., min=1, max=ID_MAX),
                approve: list[int] = typer.Option([], "--approve", min=1, max=ID_MAX, help="批准的事项编号（可重复） / an item id to approve (repeatable)"),
                reject: list[int] = typer.Option([], "--reject", min=1, max=ID_MAX, help="驳回的事项编号（可重复，须填 --reason） / an item id to reject (repeatable; needs --reason)"),
                approve_rest: bool = typer.Option(False, "--approve-rest", help="批准其余全部 / approve all others"),
                reason: str | None = typer.Option(None, "--reason", help="理由（驳回时必填，通知申请人） / the reason, required for a rejection; the applicant reads it"), user: str = typer.Option(..., "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """决定审批事项并唤醒等待的流程 / decide a gate and resume the waiting flow."""
    from sqlmodel import Session

    from flows.resume import resume_waiting_run
    from models.enrollment import Gate
    from models.gate_decisions import decided_ids
    from tasks.gates.deciding import decide_gate
    from tasks.gates.rows import UnknownGate

    engine = _engine()
    if approve_rest:
        with Session(engine) as session:
            row = session.get(Gate, gate)
            if row is None:
                raise UnknownGate(gate)
            done = decided_ids(row.decision)
            approve = [i for i in row.items if i not in done and i not in reject]
    result = decide_gate(engine, gate, approve=approve, reject=reject, reason=reason, user_name=user, clock=_clock())
    console.print(f"审批事项 {gate}: 批准 {len(result.approved)}, 驳回 {len(result.rejected)}, "
                  f"待定 {len(result.undecided)} → {labels.GATE_STATE_LABELS[result.state.value]}")
    console.print(resume_waiting_run(result, user))


@app.command("run")
def run(program: str, phase: PhaseName | None = typer.Option(None, "--phase", help="只运行某一阶段：alliance、drug_list、enrollment、accounts、contracts、continuous_review / run one phase only"),
        wait: bool = typer.Option(False, "--wait", help="等待人工决定 / wait for decisions"),
        as_json: bool = typer.Option(False, "--json", help="输出流程结果的 JSON 供程序读取（默认输出中文摘要） / the flow's result as JSON")) -> None:
    """运行项目流程（或某一阶段），然后显示项目进度 / run the program flow, or one phase flow, then show where it stands."""
    import asyncio  # here, not at the top: only the commands that run a flow pay for it
    import os

    # Offline by default: Prefect's telemetry would log an ERROR line on a machine without internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Staff read the summary below, not Prefect's English INFO lines with run names ("quizzical-pelican"); a
    # warning or an error still shows, and PREFECT_LOGGING_LEVEL=INFO brings the lines back for an operator.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.clients import shared_api_clients
    from flows.program import PHASE_FLOWS, program_flow

    kwargs: dict[str, Any] = {}
    flow: Callable[..., Coroutine[Any, Any, dict[str, Any]]]
    if phase is None:
        flow = program_flow
    else:
        flow = PHASE_FLOWS[phase]
        import inspect

        if "wait" in inspect.signature(flow.fn).parameters:  # type: ignore[attr-defined]
            kwargs["wait"] = wait

    async def main() -> dict[str, Any]:
        async with shared_api_clients():  # the program flow's phase subflows share them
            return await flow(program, **kwargs)

    result = asyncio.run(main())
    if as_json:
        typer.echo(json_text(result, default=str))
        return
    from sanjin.status_view import print_run_summary

    print_run_summary(console, result if phase is None else {phase.value: result})
    status(program, as_json=False)


@app.command("status")
def status(program: str, as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table")) -> None:
    """项目进度：时间线、今日位置、开放窗口、各阶段计数 / where the program stands today."""
    from sanjin.status_view import print_status
    from tasks.status import program_status

    clock = _clock()
    report = program_status(_engine(), program, clock=clock, simulated=clock.simulated() is not None)
    if as_json:
        typer.echo(json_text(report.as_json()))
    else:
        print_status(console, report)


@app.command("demo")
def demo(days: int | None = typer.Option(None, help="只模拟前 N 天 / simulate only N days"),
         home: Path = typer.Option(Path("var/demo"), help="演示数据目录 / where the demo writes")) -> None:
    """沈阳 2025 全流程演示 / the whole Shenyang 2025 program on a simulated clock."""
    from sanjin.demo import run_demo

    run_demo(home=home, days=days, console=console)


def _mount_subcommands() -> None:
    from sanjin.cli_audit import audit_app
    from sanjin.cli_calendar import calendar_app
    from sanjin.cli_compliance import operations_app, violations_app
    from sanjin.cli_deploy import deploy_command
    from sanjin.cli_enforcement import enforcement_app, enterprise_bad_record, enterprise_exit
    from sanjin.cli_notices import notices_app, publish_command
    from sanjin.cli_reports import register_app, report_app
    from sanjin.cli_users import mount as mount_user_commands
    from sanjin.cli_web import serve, serve_all

    app.command("web", help="启动管理与审批网页 / start the web app for managers and reviewers")(serve)
    app.command("serve", help="启动网页及定时流程（Ctrl-C 同时停止） / serve the web app with the flows and schedules")(
        serve_all)
    app.command("deploy", help="部署到进程型工作池 / deploy every program's flows to a process work pool")(deploy_command)
    app.add_typer(notices_app, name="notices")
    app.add_typer(audit_app, name="audit")
    app.add_typer(calendar_app, name="calendar")
    app.add_typer(operations_app, name="operations")
    app.add_typer(violations_app, name="violations")
    app.add_typer(register_app, name="register")
    app.add_typer(report_app, name="report")
    app.add_typer(enforcement_app, name="enforcement")
    enterprise_app.command("exit")(enterprise_exit)
    enterprise_app.command("bad-record")(enterprise_bad_record)
    app.command("publish")(publish_command)
    mount_user_commands(user_app)


_mount_subcommands()


def main() -> None:
    """Run the CLI; a person's mistake (an argument, a file, a setting, an unreachable database) is a clear message
    in Chinese and English and exit code 1, never a traceback."""
    from rich.markup import escape

    # typer 0.29 vendors click (pinned in constraints.txt); its exceptions are not re-exported.
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
    from typer.exceptions import Abort

    from core.offline import apply_offline_defaults

    apply_offline_defaults()  # before anything imports Prefect: no telemetry out of the intranet
    err = SafeConsole(stderr=True)

    def fail(message: str) -> None:
        err.print(f"[red]错误 / error:[/] {escape(message)}", highlight=False, markup=True)
        sys.exit(1)

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Abort:
        fail("已取消 / aborted")
    except ClickException as exc:
        fail(f"命令参数有误 / bad arguments: {exc.format_message()}（`sanjin --help` 查看用法 / see `sanjin --help`)")
    except Exception as exc:
        # Imported only now: the error classes live all over tasks/, and importing them all (SQLAlchemy with
        # them) cost every command, `--help` included, ~1 s of start-up before it did anything.
        from sanjin.errors import USER_ERRORS, environment_message

        if isinstance(exc, USER_ERRORS):
            fail(str(exc))
        message = environment_message(exc)
        if message is None:
            raise
        fail(message)
    else:
        sys.exit(code if isinstance(code, int) else 0)
