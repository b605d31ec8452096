"""`sanjin register import …` and `sanjin report …`: the register of designated institutions and the reports.

Kept apart from `sanjin/cli.py`, which mounts these with two lines. Domain errors (an unknown program, a refused
file) propagate, so `sanjin.cli.main()` shows them as messages in Chinese and English, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlalchemy import Engine

from core.clock_store import DatabaseClock
from sanjin.terminal import SafeConsole

register_app = typer.Typer(help="定点医药机构名册 / the register of designated institutions", no_args_is_help=True)
report_app = typer.Typer(help="统计报表 / reports: coverage, quarterly statistics", no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _clock() -> DatabaseClock:
    return DatabaseClock(_engine())


@register_app.command("import")
def register_import(program: str, file: Path = typer.Argument(..., exists=True, dir_okay=False),
                    actor: str = typer.Option("system", "--as")) -> None:
    """导入定点医药机构名册（全部正确才导入） / import the register as today's version (all-or-nothing)."""
    from tasks.intake.register_import import import_register

    result = import_register(_engine(), program, file, clock=_clock(), actor=actor)
    if result.already_imported:
        console.print("定点医药机构名册：该文件已导入过，未作任何改动 / this file was imported before; nothing changed")
        return
    replaced = (f"，替换当日先前导入的 {result.replaced} 条 / replacing {result.replaced} rows imported earlier that day"
                if result.replaced else "")
    console.print(f"定点医药机构名册（{result.as_of.isoformat()} 版）：{result.rows} 行，导入 {result.created} 家{replaced} / "
                  f"register of {result.as_of.isoformat()}: {result.rows} rows, {result.created} institutions")


@report_app.command("coverage")
def report_coverage(program: str, weeks: int = typer.Option(4, "--weeks", min=1, max=520, help="按最近 N 周的速度预测 / rate of the last N weeks"),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """覆盖率及目标达成预测 / coverage by district and kind against each dated target, with its projection."""
    import json

    from rich.table import Table

    from tasks.reports.coverage_report import coverage_report

    report = coverage_report(_engine(), program, clock=_clock(), weeks=weeks)
    if as_json:
        typer.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    basis = (f"定点医药机构名册 {report.register_as_of.isoformat()} 版 / register of {report.register_as_of.isoformat()}"
             if report.register_as_of else "尚未导入定点医药机构名册，以本项目全部申报机构为分母 / no register yet: "
             "divided by this program's applicants")
    console.print(f"{report.name}（{report.today.isoformat()}）覆盖率 / coverage — {basis}；按最近 {report.weeks} 周速度预测")
    targets = report.total.projections
    if not targets:
        console.print("本项目未设定有时限的覆盖率目标 / the program sets no dated coverage target")
    for title, lines in (("区县 / district", report.by_district), ("机构类别 / kind", report.by_kind),
                         ("合计 / total", [report.total])):
        table = Table(title, "参加 / 定点", "覆盖率", *(f"{p.by.isoformat()} 目标 {p.share:.0%}" for p in targets))
        for line in lines:
            share = f"{line.covered / line.total:.1%}" if line.total else "—"
            table.add_row(line.label, f"{line.covered} / {line.total}", share,
                          *(p.describe().split(" / ")[0] for p in line.projections))
        console.print(table)
    if report.unregistered:
        console.print(f"另有 {report.unregistered} 家参加机构不在名册中，未计入 / {report.unregistered} participants "
                      "are not on the register and are not counted")


@report_app.command("quarterly")
def report_quarterly(program: str, quarter: str = typer.Argument(..., help="如 2026Q1 / e.g. 2026Q1"),
                     out: Path = typer.Option(Path("var/reports"), "--out", file_okay=False)) -> None:
    """季度统计表（宁夏方案附件3格式） / the quarterly statistics table (seed 001 att. 3) as XLSX and HTML."""
    from models.quarterly import Quarter
    from tasks.reports.quarterly import quarterly_statistics
    from tasks.reports.quarterly_files import write_quarterly

    stats = quarterly_statistics(_engine(), program, Quarter.parse(quarter))
    files = write_quarterly(stats, out)
    console.print(f"{stats.name} {stats.quarter.label}：{len(stats.tables)} 张表 / tables")
    for kind, path in files.items():
        console.print(f"  {kind}: {path}")
