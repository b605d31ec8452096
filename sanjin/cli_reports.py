"""`sanjin register import …` and `sanjin report …`: the register of designated institutions and the reports.

Kept apart from `sanjin/cli.py`, which mounts these with two lines. Domain errors (an unknown program, a refused
file) propagate, so `sanjin.cli.main()` shows them as messages in Chinese and English, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sanjin.terminal import SafeConsole, json_text

if TYPE_CHECKING:  # types only: `sanjin --help` imports no SQLAlchemy
    from sqlalchemy import Engine

    from core.clock_store import DatabaseClock
    from tasks.reports.issue import IssuedReport

register_app = typer.Typer(help="定点医药机构名册 / the register of designated institutions", no_args_is_help=True)
report_app = typer.Typer(help="统计报表 / reports: coverage, quarterly statistics, year-end summary",
                         no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


def _engine() -> Engine:
    from core.db import shared_engine

    return shared_engine()


def _clock() -> DatabaseClock:
    from core.clock_store import DatabaseClock

    return DatabaseClock(_engine())


@register_app.command("import")
def register_import(program: str, file: Path = typer.Argument(..., exists=True, dir_okay=False),
                    actor: str = typer.Option("system", "--as", help="操作人登录名（记入审计日志） / who does this, by login name (audited)")) -> None:
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
                    as_json: bool = typer.Option(False, "--json", help="输出 JSON 供程序读取（默认输出中文表格） / JSON for machines instead of the Chinese table")) -> None:
    """覆盖率及目标达成预测 / coverage by district and kind against each dated target, with its projection."""

    from rich.table import Table

    from tasks.reports.coverage_report import coverage_report

    report = coverage_report(_engine(), program, clock=_clock(), weeks=weeks)
    if as_json:
        typer.echo(json_text(report.as_json()))
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
                     out: Path = typer.Option(Path("var/reports"), "--out", file_okay=False, help="输出目录 / the output folder"),
                     issue: bool = typer.Option(False, "--issue", help="存为新版本并报送 / store as a version and send it"),
                     actor: str | None = typer.Option(None, "--as", help="报送人（项目管理员） / the issuing manager")) -> None:
    """季度统计表（宁夏方案附件3格式） / the quarterly statistics table (seed 001 att. 3) as XLSX and HTML.

    Without --issue: the files only (a look at any past quarter). With --issue --as MANAGER: a new report version
    when the figures changed since the last one (version 1 is kept), sent to the program's managers.
    """
    from models.quarterly import Quarter
    from tasks.reports.quarterly import quarterly_statistics
    from tasks.reports.quarterly_files import write_quarterly

    parsed = Quarter.parse(quarter)
    if issue:
        from tasks.reports.issue import issue_quarterly

        if not actor:
            raise typer.BadParameter("报送须注明 --as 项目管理员 / --issue needs --as MANAGER", param_hint="--as")
        _print_issued(parsed.label, issue_quarterly(_engine(), program, parsed, clock=_clock(), actor=actor,
                                                    out_dir=out))
        return
    stats = quarterly_statistics(_engine(), program, parsed)
    files = write_quarterly(stats, out)
    console.print(f"{stats.name} {stats.quarter.label}：{len(stats.tables)} 张表 / tables")
    for kind, path in files.items():
        console.print(f"  {kind}: {path}")


@report_app.command("summary")
def report_summary(program: str, year: int = typer.Argument(..., min=2000, max=2100, help="如 2026 / e.g. 2026"),
                   out: Path = typer.Option(Path("var/reports"), "--out", file_okay=False, help="输出目录 / the output folder"),
                   issue: bool = typer.Option(False, "--issue", help="存为新版本并报送 / store as a version and send it"),
                   actor: str | None = typer.Option(None, "--as", help="报送人（项目管理员） / the issuing manager")) -> None:
    """年度执行情况（宁夏方案：2026年12月底前报送） / the year-end summary per district and city, XLSX and HTML.

    With --issue --as MANAGER: a new report version when the figures changed (earlier ones kept), sent to the
    program's managers with the workbook attached.
    """
    from tasks.reports.summary import year_summary
    from tasks.reports.summary_files import write_summary

    if issue:
        from tasks.reports.issue import issue_summary

        if not actor:
            raise typer.BadParameter("报送须注明 --as 项目管理员 / --issue needs --as MANAGER", param_hint="--as")
        _print_issued(f"{year}年", issue_summary(_engine(), program, year, clock=_clock(), actor=actor, out_dir=out))
        return
    summary = year_summary(_engine(), program, year)
    files = write_summary(summary, out)
    total = summary.rows[-1]
    console.print(f"{summary.name} {year}年执行情况 / summary: 参加机构 {total.participants}，覆盖率 {total.share:.1%}，"
                  f"采购金额 {total.amount:,.2f} 元，发现违规 {total.violations_found}，启动处理程序 {total.cases_opened}")
    for kind, path in files.items():
        console.print(f"  {kind}: {path}")


def _print_issued(label: str, issued: IssuedReport) -> None:
    state = (f"已生成第{issued.version}版并报送 {issued.notices} 人 / issued version {issued.version} to "
             f"{issued.notices} recipients" if issued.created else
             f"数据未变，仍为第{issued.version}版，未重复报送 / figures unchanged: version {issued.version} stands, "
             "nothing sent again")
    console.print(f"{label}：{state}")
    for kind, path in issued.files.items():
        console.print(f"  {kind}: {path}")


@report_app.command("versions")
def report_versions(program: str,
                    out: Path | None = typer.Option(None, "--out", file_okay=False,
                                                    help="写出各版本文件 / write every version's files here")) -> None:
    """已报送的报表版本 / the issued report versions (quarterly, summary), each as it was sent."""
    from models.clock import to_shanghai
    from models.labels import REPORT_KIND_LABELS
    from tasks.reports.report_versions import stored_versions, write_stored_files

    engine = _engine()
    versions = stored_versions(engine, program)
    if not versions:
        console.print("尚无已报送的报表 / no report issued yet")
    for v in versions:
        console.print(f"{REPORT_KIND_LABELS[v.kind.value]} {v.period} 第{v.version}版  "
                      f"{to_shanghai(v.generated_at):%Y-%m-%d %H:%M}  {v.generated_by}  {v.content_hash[:12]}")
        if out is not None:
            for path in write_stored_files(engine, v.id, out).values():
                console.print(f"  {path}")
