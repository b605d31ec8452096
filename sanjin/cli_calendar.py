"""`sanjin calendar …`: where each year's working days come from, and entering the State Council's notice."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from models.clock import to_shanghai
from sanjin.terminal import SafeConsole, data

if TYPE_CHECKING:  # types only: `sanjin --help` imports no SQLAlchemy
    from sqlalchemy import Engine

calendar_app = typer.Typer(help="节假日安排 / the official holiday schedules (working days)", no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


@calendar_app.command("status")
def calendar_status_command() -> None:
    """每年的节假日安排来源：软件包、本局录入或暂定 / where each year's schedule comes from."""
    from core.clock_store import DatabaseClock
    from tasks.calendar.schedules import STANDING_LABELS, calendar_status, calendar_warning

    engine = _engine()
    today = DatabaseClock(engine).today()
    table = Table("年份", "节假日安排", "录入时间", "录入人", "待重算的暂定期限")
    for y in calendar_status(engine, today):
        table.add_row(str(y.year), STANDING_LABELS[y.standing],
                      f"{to_shanghai(y.entered_at):%Y-%m-%d %H:%M}" if y.entered_at else "—",
                      y.entered_by or "—", str(y.provisional_dates) if y.provisional_dates else "—")
    console.print(table)
    from sqlmodel import Session

    from core.settings import get_settings

    with Session(engine) as session:
        warning = calendar_warning(session, today, get_settings().calendar_warning_from_day)
    if warning:
        console.print(f"[yellow]提醒 / warning:[/] {data(warning)}", highlight=False, markup=True)


@calendar_app.command("import")
def calendar_import_command(
    notice: Path = typer.Argument(..., help="国务院办公厅节假日安排通知的全文（UTF-8 文本） / the notice's text"),
    user: str = typer.Option(..., "--as", help="录入人（项目管理员） / who enters it (a program manager)"),
    year: int | None = typer.Option(None, "--year", min=2000, max=2100, help="通知没有标题时指定年份 / the year, if the text has no title"),
    yes: bool = typer.Option(False, "--yes", help="不再询问，直接录入 / enter without asking"),
) -> None:
    """读取通知全文，显示识别结果，确认后录入并重算暂定期限 / enter a year's schedule from the notice's text."""
    from core.clock_store import DatabaseClock
    from models.holiday_notice import parse_holiday_notice
    from tasks.calendar.schedules import enter_schedule

    text = notice.read_text(encoding="utf-8-sig")
    parsed = parse_holiday_notice(text, year)
    table = Table("节日", "放假", "天数", "调休上班", title=f"{parsed.year}年节假日安排（识别结果）")
    for f in parsed.festivals:
        rest = f"{f.rest_days[0]:%m-%d} 至 {f.rest_days[-1]:%m-%d}" if len(f.rest_days) > 1 else f"{f.rest_days[0]:%m-%d}"
        table.add_row(f.name, rest, str(len(f.rest_days)), "、".join(f"{d:%m-%d}" for d in f.workdays) or "—")
    console.print(table)
    if not yes and not typer.confirm("按以上安排录入？ / enter this schedule?", default=False):
        console.print("未录入 / nothing entered")
        raise typer.Exit(1)
    engine = _engine()
    report = enter_schedule(engine, parsed, text, user_name=user, clock=DatabaseClock(engine))
    if report.already_entered:
        console.print(f"{parsed.year}年安排已按同一通知录入，无变化 / already entered from the same text")
        return
    total = sum(report.recomputed.values())
    console.print(f"已录入{parsed.year}年节假日安排{'（替换原录入）' if report.replaced else ''}；重新计算暂定期限 {total} 项 / "
                  f"entered; {total} provisional deadlines recomputed")
