"""`sanjin notices …` and `sanjin publish`: the outbox and the public lists, for the people who run them.

Kept apart from `sanjin/cli.py` so its owner mounts these with two lines. Domain errors (an unknown
program, an unknown user) propagate, so `sanjin.cli.main()` shows them as messages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from models import labels
from models.clock import to_shanghai
from models.labels import LIST_KIND_LABELS
from models.states import NoticeStatus, Role
from sanjin.terminal import SafeConsole, data

if TYPE_CHECKING:  # types only: `sanjin --help` imports no SQLAlchemy
    from sqlalchemy import Engine

    from models.outbox import Notice

notices_app = typer.Typer(help="通知 / outgoing notices (the outbox)", no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _program_id(engine: Engine, slug: str | None) -> int | None:
    from sqlmodel import Session

    if slug is None:
        return None
    from tasks.programs import get_program

    with Session(engine) as session:
        return get_program(session, slug)[0].id


def _when(notice: Notice) -> str:
    moment = notice.sent_at or notice.next_attempt_at or notice.created_at
    return f"{to_shanghai(moment):%Y-%m-%d %H:%M}"


@notices_app.command("list")
def notices_list(program: str | None = typer.Option(None, "--program", help="项目代码，如 shenyang-2025 / the program's slug"),
                 status: NoticeStatus | None = typer.Option(None, "--status", help="只看某一状态：pending 待发送、sent 已发送、dead 发送失败、no_address 无邮箱 / one status only"),
                 limit: int = typer.Option(50, "--limit", min=1, help="最多显示条数 / show at most this many rows"),
                 actor: str | None = typer.Option(None, "--as", help="以该用户身份查看（区县审核员只见本区县） / "
                                                                     "show what this user may see")) -> None:
    """列出通知（最新在前） / list notices, newest first."""
    from sqlmodel import Session, col, select

    from models.outbox import Notice
    from tasks.trust.scope import acting_user, notice_scope

    engine = _engine()
    program_id = _program_id(engine, program)
    query = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if actor and (mine := notice_scope(acting_user(engine, actor))) is not None:
        query = query.where(mine)
    if program_id is not None:
        query = query.where(Notice.program_id == program_id)
    if status is not None:
        query = query.where(Notice.status == status)
    with Session(engine) as session:
        notices = session.exec(query).all()
    table = Table("编号", "状态", "类型", "收件人", "邮箱", "次数", "时间", "说明")
    for n in notices:
        table.add_row(str(n.id), labels.NOTICE_STATUS_LABELS[n.status.value], labels.NOTICE_KIND_LABELS.get(n.kind, n.kind),
                      n.recipient_name, n.email or "—", str(n.attempts),
                      _when(n), (n.last_error or n.subject or "")[:60])
    console.print(table)
    console.print(f"共 {len(notices)} 条 / {len(notices)} notices" + ("（可能还有更多，可加大 --limit / there may be more: raise --limit）" if len(notices) == limit else ""))


@notices_app.command("send")
def notices_send() -> None:
    """发送所有到期的通知 / send every due notice (SMTP or maildir, per SANJIN_MAILER)."""
    from core.clock_store import DatabaseClock
    from tasks.outbox.mailers import mailer_from_settings
    from tasks.outbox.send_notices import send_pending

    engine = _engine()
    report = send_pending(engine, mailer_from_settings(), clock=DatabaseClock(engine))
    console.print(f"已发送 sent {report.sent}, 待重试 retried {report.retried}, 失败 dead {report.dead}, "
                  f"跳过 skipped {report.skipped}, 回收 reclaimed {report.reclaimed}"
                  + (f", 已发出未确认 sent unconfirmed {report.unconfirmed}（见说明 / see the notes）"
                     if report.unconfirmed else ""))


def _parse_emails(values: list[str]) -> dict[int, str]:
    emails: dict[int, str] = {}
    for value in values:
        ident, sep, address = value.partition("=")
        if not sep or not ident.strip().isdigit() or "@" not in address:
            raise typer.BadParameter(f"{value!r}: 应为 编号=邮箱 / expected ID=address, e.g. 12=clinic@example.cn",
                                     param_hint="--email")
        emails[int(ident)] = address.strip()
    return emails


@notices_app.command("retry")
def notices_retry(ids: list[int] = typer.Argument(..., min=1, max=2**31 - 1, help="通知编号 / notice ids"),
                  email: list[str] = typer.Option([], "--email", help="编号=邮箱 / ID=address for a no-address notice"),
                  actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """重新发送失败或无地址的通知 / requeue dead or no-address notices (exit 1 if any stays)."""
    from sqlmodel import Session, col, select

    from core.clock_store import DatabaseClock
    from models.outbox import Notice
    from tasks.gates.rows import find_user
    from tasks.outbox.followup import resend

    emails = _parse_emails(email)
    wanted = sorted(set(ids) | emails.keys())
    engine = _engine()
    role = Role.SYSTEM
    if actor != "system":
        with Session(engine) as session:
            role = find_user(session, actor).role  # a person's resend is audited under their role
    count = resend(engine, wanted, clock=DatabaseClock(engine), emails=emails, actor=actor, role=role)
    console.print(f"已重新排队 / requeued: {count} / {len(wanted)}")
    with Session(engine) as session:
        found = {n.id: n for n in session.exec(select(Notice).where(col(Notice.id).in_(wanted))).all()}
    left = [i for i in wanted if i not in found or found[i].status != NoticeStatus.PENDING]
    for i in left:
        notice = found.get(i)
        why = ("不存在 / no such notice" if notice is None
               else "仍无邮箱，请用 --email 提供 / still no address: give one with --email"
               if notice.status == NoticeStatus.NO_ADDRESS
               else f"状态为“{labels.NOTICE_STATUS_LABELS[notice.status.value]}”，无需重发 / is {notice.status.value}: "
                    "nothing to resend")
        console.print(f"  [yellow]{data(i)}[/]: {data(why)}", markup=True)
    if left:
        raise typer.Exit(1)


@notices_app.command("no-address")
def notices_no_address(program: str | None = typer.Option(None, "--program", help="项目代码，如 shenyang-2025 / the program's slug")) -> None:
    """无邮箱的通知：打印或电话通知 / notices nobody can e-mail, for print or phone follow-up."""
    from sqlmodel import Session, col, select

    from models.catalog import Enterprise
    from models.enrollment import Institution
    from tasks.outbox.followup import list_no_address

    engine = _engine()
    notices = list_no_address(engine, program_id=_program_id(engine, program))
    def wanted(kind: str) -> set[int]:
        return {n.recipient_id for n in notices if n.recipient_type == kind and n.recipient_id is not None}

    phones: dict[tuple[str, int | None], str] = {}
    with Session(engine) as session:  # the phone number is what a follow-up by phone needs
        for inst_id, phone in session.exec(select(Institution.id, Institution.phone)
                                           .where(col(Institution.id).in_(wanted("institution")))).all():
            phones[("institution", inst_id)] = phone
        for ent_id, ent_phone in session.exec(select(Enterprise.id, Enterprise.phone)
                                              .where(col(Enterprise.id).in_(wanted("enterprise")))).all():
            if ent_phone:
                phones[("enterprise", ent_id)] = ent_phone
    table = Table("编号", "类型", "收件人", "电话", "生成日期")
    for n in notices:
        phone = phones.get((n.recipient_type, n.recipient_id), "—")
        table.add_row(str(n.id), labels.NOTICE_KIND_LABELS.get(n.kind, "通知"), n.recipient_name, phone,
                      f"{to_shanghai(n.created_at):%Y-%m-%d}" + ("（已打印）" if n.printed_at else ""))
    console.print(table)
    console.print(f"共 {len(notices)} 条；取得邮箱后用 `sanjin notices retry ID --email ID=邮箱` 重发 / "
                  f"{len(notices)} notices; once an address is known: `sanjin notices retry ID --email ID=address`")


@notices_app.command("print")
def notices_print(program: str,
                  out: Path | None = typer.Option(None, "--out", help="保存为此 HTML 文件（默认 SANJIN_HOME/out/print/项目-时间.html） / the HTML file to write"),
                  again: bool = typer.Option(False, "--again", help="连同已打印过的一并重新打印 / print the letters printed before too"),
                  actor: str = typer.Option(..., "--as", help="操作人登录名（记入审计日志） / who prints, by login name (audited)")) -> None:
    """打印无邮箱收件人的通知：一个 HTML 文件，每封一页（A4），并标记为已打印 / print the letters nobody can e-mail."""
    from core.clock_store import DatabaseClock
    from core.settings import get_settings
    from tasks.outbox.printing import print_no_address
    from tasks.users import get_user

    engine = _engine()
    user = get_user(engine, actor)
    batch = print_no_address(engine, program, clock=DatabaseClock(engine), actor=user.name, role=user.role,
                             again=again)
    if not batch.notice_ids:
        console.print(f"没有待打印的通知（{batch.program_name}） / no letter waits to be printed"
                      + ("" if again else "；已打印过的可加 --again 重印"))
        return
    target = out or get_settings().output_dir / "print" / f"{program}-{DatabaseClock(engine).now():%Y%m%d-%H%M%S}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(batch.html, encoding="utf-8")
    console.print(f"已生成 {len(batch.notice_ids)} 封待打印通知（每封一页，A4），已标记为已打印 / "
                  f"{len(batch.notice_ids)} letters to print: {target}", highlight=False)


def publish_command(program: str,
                    list_: str | None = typer.Option(None, "--list", help="drugs 或 institutions（默认两者）"),
                    out: Path | None = typer.Option(None, "--out", help="输出目录 / output folder (default: SANJIN_HOME/out)"),
                    actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
    """发布公开名单（有变化时出新版本）并生成文件 / publish the public lists and write their files."""
    from core.clock_store import DatabaseClock
    from core.settings import get_settings
    from tasks.lists.publication import PUBLISHABLE, Outcome, publish

    names = [k.value for k in PUBLISHABLE]
    if list_ is not None and list_ not in names:
        raise typer.BadParameter(f"{list_!r}: 可选 / choose from {', '.join(names)}", param_hint="--list")
    engine = _engine()
    results = publish(engine, program, (list_,) if list_ else names, clock=DatabaseClock(engine), actor=actor,
                      out_dir=out or get_settings().output_dir)
    labels = {Outcome.PUBLISHED: "已发布新版本 / published", Outcome.UNCHANGED: "无变化 / unchanged",
              Outcome.AWAITING_APPROVAL: "待审批 / awaiting approval", Outcome.EMPTY: "暂无内容 / nothing to publish",
              Outcome.FILES_ONLY: "补写文件 / files written"}
    for r in results:
        line = f"{LIST_KIND_LABELS[r.kind.value]}: {labels[r.outcome]}" + (f"，当前第{r.version}版 / v{r.version}" if r.version else "")
        if r.outcome == Outcome.AWAITING_APPROVAL:
            counts = ", ".join(f"{k} {v}" for k, v in r.pending.items())
            line += (f"（{counts}；审批事项 / gate {r.gate_id}）" if r.gate_id is not None
                     else f"（{counts}；审批事项将由药品清单流程开启 / the drug-list run opens the gate）")
        if r.rendered:
            line += f"；生成文件 / rendered v{', v'.join(map(str, r.rendered))}"
        console.print(line)
    if results:
        console.print(f"索引 / index: {results[0].index}")
