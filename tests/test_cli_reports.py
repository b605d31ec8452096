"""`sanjin report …`: a manager issues the quarterly statistics; anyone else gets a message, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from typer.testing import CliRunner

from core.settings import get_settings
from models.reports import ReportVersion
from models.states import Role
from sanjin.cli import app, main
from tasks.users import add_user
from tests.factories import make_program

runner = CliRunner()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    get_settings.cache_clear()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_a_manager_issues_a_quarter_once_and_a_reviewer_is_refused_with_a_message(
        cli, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    make_program(engine, "ningxia-2025")
    add_user(engine, "nx_manager", Role.PROGRAM_MANAGER, email="jc@nx.example.gov.cn")
    add_user(engine, "xq_reviewer", Role.DISTRICT_REVIEWER, districts=["兴庆区"])
    assert cli("clock", "set", "2026-04-02T09:00", "--as", "测试").exit_code == 0
    first = cli("report", "quarterly", "ningxia-2025", "2026Q1", "--out", tmp_path, "--issue", "--as", "nx_manager")
    assert first.exit_code == 0, first.output
    assert "已生成第1版并报送 1 人" in first.output
    again = cli("report", "quarterly", "ningxia-2025", "2026Q1", "--out", tmp_path, "--issue", "--as", "nx_manager")
    assert "数据未变，仍为第1版" in again.output
    assert (tmp_path / "ningxia-2025-2026Q1-quarterly-v1.xlsx").exists()
    listed = cli("report", "versions", "ningxia-2025", "--out", tmp_path / "again")
    assert listed.exit_code == 0, listed.output
    assert "季度统计表 2026Q1 第1版" in listed.output and "nx_manager" in listed.output
    assert (tmp_path / "again" / "ningxia-2025-2026Q1-quarterly-v1.xlsx").read_bytes() == (
        tmp_path / "ningxia-2025-2026Q1-quarterly-v1.xlsx").read_bytes()  # exactly as issued
    monkeypatch.setattr("sys.argv", ["sanjin", "report", "quarterly", "ningxia-2025", "2026Q1", "--issue",
                                     "--as", "xq_reviewer", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert "不是项目管理员" in capsys.readouterr().err
    with Session(engine) as session:
        assert session.execute(select(ReportVersion.version)).scalars().all() == [1]  # type: ignore[call-overload]


def test_the_year_end_summary_is_written_as_xlsx_and_html(cli, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_program(engine, "ningxia-2025")
    result = cli("report", "summary", "ningxia-2025", "2026", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "参加机构 0，覆盖率 0.0%" in result.output  # an empty year: zeros, not an error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ningxia-2025-2026-summary.html",
                                                          "ningxia-2025-2026-summary.xlsx"]
    add_user(engine, "nx_manager", Role.PROGRAM_MANAGER, email="jc@nx.example.gov.cn")
    assert cli("clock", "set", "2026-12-28T09:00", "--as", "测试").exit_code == 0
    issued = cli("report", "summary", "ningxia-2025", "2026", "--out", tmp_path, "--issue", "--as", "nx_manager")
    assert issued.exit_code == 0, issued.output
    assert "2026年：已生成第1版并报送 1 人" in issued.output and (tmp_path / "ningxia-2025-2026-summary-v1.xlsx").exists()
