"""Text from people's files is printed as typed, never obeyed as Rich markup (issue #19): an institution named
"药房[red]x[/red]" shows its brackets in a CLI table, and a bracket in a message does not swallow the words after it."""

from __future__ import annotations

from datetime import date

from rich.console import Console
from sqlalchemy import Engine
from typer.testing import CliRunner

from core.settings import get_settings
from models.states import InstitutionKind, Role
from sanjin.cli import app
from sanjin.terminal import SafeConsole, data
from tests.factories import ensure_user, make_institution, make_program, make_running_application, shanghai
from tests.tasks.test_reminders import RAN, _account

runner = CliRunner()
NAME = "药房[red]x[/red][bold]"


def _cli(*args: str) -> str:
    get_settings.cache_clear()
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def test_a_name_with_markup_is_printed_as_typed_in_a_cli_table(engine: Engine, database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    program = make_program(engine, "shenyang-2025")
    inst = make_institution(engine, district="和平区", kind=InstitutionKind.CHAIN_PHARMACY, name=NAME)
    make_running_application(engine, program, inst, running_at=RAN)
    _account(engine, program, inst, date(2025, 11, 14))
    ensure_user(engine, "marked", Role.OBSERVER, display_name="[blink]王[/blink]")
    _cli("clock", "set", shanghai(2025, 12, 1, 9).isoformat())
    out = _cli("laggards", "shenyang-2025")
    assert "药房[red]x[/red][bold]" in "".join(out.split())  # the cell may wrap; its brackets are all there
    assert "[blink]王[/blink]" in _cli("user", "list")


def test_the_consoles_own_styles_still_apply_and_the_data_inside_them_is_escaped() -> None:
    console = SafeConsole(width=200, record=True, color_system="truecolor", force_terminal=True)
    console.print(f"[red]错误 / error:[/] {data(NAME)} 之后的文字", markup=True)
    console.print(f"{NAME} 未加样式的一行")
    text = console.export_text(styles=False, clear=False)
    assert f"错误 / error: {NAME} 之后的文字" in text and f"{NAME} 未加样式的一行" in text
    assert "\x1b[31m" in console.export_text(styles=True)  # 错误 is still red
    plain = Console(width=200, record=True)
    plain.print(f"{NAME} 之后")  # what a console with markup on did: the brackets vanished
    assert "[red]" not in plain.export_text()
