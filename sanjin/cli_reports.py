"""`sanjin register import …` and `sanjin report …`: the register of designated institutions and the reports.

Kept apart from `sanjin/cli.py`, which mounts these with two lines. Domain errors (an unknown program, a refused
file) propagate, so `sanjin.cli.main()` shows them as messages in Chinese and English, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy import Engine

from core.clock_store import DatabaseClock

register_app = typer.Typer(help="定点医药机构名册 / the register of designated institutions", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


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
