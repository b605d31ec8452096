"""The `sanjin` command line against a real database (SQLite and PostgreSQL, via `database_url`).

`app` lets domain errors propagate (CliRunner shows them as `result.exception`); `main()` turns them
into a message on stderr and exit code 1, which is checked by running the installed script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from core.settings import get_settings
from models.labels import PHASE_LABELS
from models.program import User
from models.program_definition import PhaseName, ProgramFileError
from sanjin.cli import app
from sanjin.errors import USER_ERRORS
from tasks.users import BadUser

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "deploy" / "programs").glob("*.yaml"))
SHENYANG = ROOT / "deploy" / "programs" / "shenyang-2025.yaml"
SANJIN = Path(sys.executable).parent / "sanjin"

runner = CliRunner()


@pytest.fixture
def cli(database_url: str):
    """Invoke the CLI against the test database; settings are re-read as the fixture left them."""
    get_settings.cache_clear()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def edited(tmp_path: Path, replacements: list[tuple[str, str]], name: str = "shenyang-2025.yaml") -> Path:
    """A copy of the Shenyang file with each `old` replaced; each `old` must occur, so the edit is real."""
    text = SHENYANG.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, f"the shipped file no longer contains {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# Six mistakes an editor could make in one file; every one must be reported in one go.
BROKEN = [
    ("slug: shenyang-2025", "slug: Shenyang_2025"),
    ("timezone: Asia/Shanghai", "timezone: UTC"),
    ("window: {opens: 2025-09-10, closes: 2025-09-30}", "window: {opens: 2025-09-30, closes: 2025-09-10}"),
    ("delivery_sla_hours: 72 ", "delivery_sla_hours: -72 "),
    ("  payment_due: next_month_end", "  payment_due_days: 30\n  payment_due: next_month_end"),
    ('{name: 铁西区, code: "210106"}', '{name: 铁西区, code: "310106"}'),
]
BROKEN_PATHS = ["slug", "timezone", "phases[2].window.closes", "rules.delivery_sla_hours", "rules.payment_due_days",
                "districts[4].code"]


def test_loading_the_shipped_programs_creates_them_then_changes_nothing(cli):
    first = ok(cli("program", "load", *SHIPPED))
    assert first.splitlines() == [f"{path.stem}: created" for path in SHIPPED]
    assert len(SHIPPED) == 3
    again = ok(cli("program", "load", *SHIPPED))
    assert again.splitlines() == [f"{path.stem}: unchanged" for path in SHIPPED]


def test_loading_an_edited_program_file_updates_the_program(cli, tmp_path):
    ok(cli("program", "load", SHENYANG))
    changed = edited(tmp_path, [("delivery_sla_hours: 72 ", "delivery_sla_hours: 48 ")])
    assert ok(cli("program", "load", changed)).strip() == "shenyang-2025: updated"
    shown = json.loads(ok(cli("program", "show", "shenyang-2025", "--json")))
    assert shown["rules"]["delivery_sla_hours"] == 48
    assert ok(cli("program", "load", changed)).strip() == "shenyang-2025: unchanged"


def test_program_show_lists_the_six_phases_with_their_windows(cli):
    ok(cli("program", "load", SHENYANG))
    out = ok(cli("program", "show", "shenyang-2025"))
    expected = [
        ("2025-08-07 ~ 2025-08-15", PhaseName.ALLIANCE),
        ("2025-08-10 ~ 2025-09-15", PhaseName.DRUG_LIST),
        ("2025-09-10 ~ 2025-09-30", PhaseName.ENROLLMENT),
        ("2025-10-01 ~ 2025-11-30", PhaseName.ACCOUNTS),
        ("2025-10-01 ~ 2025-11-30", PhaseName.CONTRACTS),
        ("2025-12-01 ~ 长期", PhaseName.CONTINUOUS_REVIEW),
    ]
    phase_lines = [line.strip() for line in out.splitlines() if line.startswith("  2025-")]
    assert phase_lines == [f"{window}  {PHASE_LABELS[phase]}" for window, phase in expected]


def test_a_broken_program_file_is_refused_with_every_mistake_listed(cli, tmp_path):
    broken = edited(tmp_path, BROKEN, name="broken.yaml")
    result = cli("program", "load", broken)
    assert result.exit_code != 0
    assert isinstance(result.exception, ProgramFileError)
    assert [path for path, _ in result.exception.errors] == BROKEN_PATHS


def test_the_sanjin_command_prints_every_mistake_of_a_broken_file_without_a_traceback(database_url, tmp_path):
    broken = edited(tmp_path, BROKEN, name="broken.yaml")
    env = {**os.environ, "SANJIN_DATABASE_URL": database_url, "COLUMNS": "300"}
    proc = subprocess.run([SANJIN, "program", "load", str(broken)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "错误 / error:" in proc.stderr
    assert f"{len(BROKEN_PATHS)} errors in program file" in proc.stderr
    for path in BROKEN_PATHS:
        assert f"broken.yaml: {path}: " in proc.stderr
    assert proc.stdout == ""


def test_a_district_reviewer_without_a_district_is_refused(cli, engine: Engine):
    result = cli("user", "add", "reviewer9", "--role", "district_reviewer")
    assert result.exit_code != 0
    assert isinstance(result.exception, BadUser)
    assert "--district" in str(result.exception)
    assert isinstance(result.exception, USER_ERRORS), "main() must show it as a message, not a traceback"
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_a_district_reviewer_with_a_district_is_added(cli, engine: Engine):
    ok(cli("program", "load", SHENYANG))  # the district must be one of a loaded program
    assert ok(cli("user", "add", "reviewer9", "--role", "district_reviewer", "--district", "和平区")).strip() == (
        "已保存用户 / saved: 和平区医疗保障局区县审核员（区县审核员：和平区；登录名 reviewer9）")
    again = cli("user", "add", "reviewer9", "--role", "program_manager")  # an existing name is never changed
    assert again.exit_code == 1 and "已存在" in str(again.exception) + again.output, again.output
    out = ok(cli("user", "add", "reviewer8", "--role", "district_reviewer", "--district", "和平区",
                 "--display-name", "李审核", "--unit", "和平区医疗保障局"))
    assert out.startswith("已保存用户 / saved: 李审核（和平区医疗保障局）")
    with Session(engine) as session:
        assert session.exec(select(User.districts).where(User.name == "reviewer9")).one() == ["和平区"]
        assert session.exec(select(User.role).where(User.name == "reviewer9")).one() == "district_reviewer"


def test_the_simulated_clock_is_set_and_shown_in_shanghai_time(cli, monkeypatch, engine: Engine):
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    assert ok(cli("clock", "set", "2025-09-12T10:00", "--as", "演示员")).strip() == "2025-09-12 10:00"
    assert ok(cli("clock", "show")).strip() == "2025-09-12 10:00 (模拟时钟 / simulated)"
    from models.audit import AuditEvent

    with Session(engine) as session:
        moved = session.exec(select(AuditEvent).where(AuditEvent.entity == "clock")).one()
    assert (moved.actor, moved.action, moved.data["to"]) == ("演示员", "set", "2025-09-12T10:00:00+08:00")


def test_an_installation_on_real_time_refuses_to_move_the_clock_back(cli, monkeypatch, engine: Engine):
    monkeypatch.delenv("SANJIN_CLOCK", raising=False)
    result = cli("clock", "set", "2025-09-12T10:00")
    assert isinstance(result.exception, PermissionError) and "真实时间" in str(result.exception)
    assert ok(cli("clock", "show")).strip().endswith("(系统时间 / system)")


def test_gate_list_with_nothing_open_says_so_instead_of_an_empty_table(cli):
    ok(cli("program", "load", SHENYANG))
    out = ok(cli("gate", "list", "--program", "shenyang-2025"))
    assert out.strip() == "没有待决定的审批事项（shenyang-2025） / no open gates"
    assert json.loads(ok(cli("gate", "list", "--program", "shenyang-2025", "--json"))) == []


def test_every_option_of_every_command_has_help_text():
    import typer.main

    def walk(command, path):
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                yield path, param
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, [*path, name])

    missing = [f"sanjin {' '.join(path)} {param.opts[0]}" for path, param in walk(typer.main.get_command(app), [])
               if not param.help and param.opts[0] != "--help"]
    assert not missing, missing


def test_status_as_json_shows_the_six_phases_and_the_windows_open_today(cli, monkeypatch):
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    ok(cli("program", "load", SHENYANG))
    ok(cli("clock", "set", "2025-09-12T10:00"))
    report = json.loads(ok(cli("status", "shenyang-2025", "--json")))
    assert report["program"] == "shenyang-2025"
    assert (report["today"], report["simulated"]) == ("2025-09-12", True)
    assert [p["phase"] for p in report["phases"]] == [p.value for p in PhaseName]
    assert report["open_windows"] == ["drug_list", "enrollment"]
    assert {p["phase"]: p["window"] for p in report["phases"]} == {
        "alliance": "closed", "drug_list": "open", "enrollment": "open", "accounts": "not_yet_open",
        "contracts": "not_yet_open", "continuous_review": "not_yet_open"}


def test_status_of_an_unknown_program_names_the_loaded_ones(cli):
    ok(cli("program", "load", SHENYANG))
    result = cli("status", "shanghai-2025", "--json")
    assert result.exit_code != 0
    assert isinstance(result.exception, USER_ERRORS)
    assert "shenyang-2025" in str(result.exception)


def test_a_run_is_summarised_in_words_not_as_raw_json():
    """`sanjin run` prints what ran, the gates waiting and the notices sent; `--json` keeps the codes for machines."""
    from rich.console import Console

    from sanjin.status_view import print_run_summary

    console = Console(record=True, width=120)
    print_run_summary(console, {"alliance": {"invited": 13, "open_gate_ids": []},
                                "enrollment": {"batched": 4, "open_gate_ids": [7, 8]},
                                "accounts": {"calendar_blocked": "2027年节假日安排尚未录入"},
                                "snapshot": {"written": 1},
                                "notices": {"sent": 6, "retried": 1, "dead": 0}})
    out = console.export_text()
    assert "已运行 / ran: 联盟邀请、机构申报、账户注册、每日统计" in out  # the flow's own step, not 其他
    assert "待决定的审批事项 / gates waiting: 2 项" in out
    assert "账户注册：2027年节假日安排尚未录入" in out
    assert "已发送 6，稍后重试 1，发送失败 0" in out
    assert "{" not in out and "open_gate_ids" not in out and "enrollment" not in out
