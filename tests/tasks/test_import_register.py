"""The register of designated institutions: all-or-nothing, every bad row reported, one version per import date."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from typer.testing import CliRunner

from core.settings import get_settings
from models.register import DesignationStatus, RegisterEntry
from models.states import InstitutionKind
from sanjin.cli import app
from tasks.intake.register_import import COLUMNS, import_register, register_versions
from tasks.intake.spreadsheets import ImportRejected
from tests.factories import clock_at, make_program, table_counts
from tests.factories_files import insurance_code, write_csv, write_xlsx

DAY1, DAY2 = clock_at(2025, 12, 1, 9), clock_at(2025, 12, 8, 9)


def _rows(n: int, start: int = 1) -> list[list[object]]:
    kinds = ("社区卫生服务中心", "村卫生室", "连锁药店", "民营诊所")
    return [[insurance_code(i, pharmacy=kinds[i % 4] == "连锁药店"), f"测试机构{i}", "和平区" if i % 2 else "沈河区",
             kinds[i % 4], "正常" if i % 5 else "暂停", "2024-03-01"] for i in range(start, start + n)]


def _entries(engine: Engine) -> list[tuple[str, str, str, str]]:
    with Session(engine) as session:
        return [(r.as_of.isoformat(), r.insurance_code, r.kind.value, r.status.value) for r in session.execute(
            select(RegisterEntry).order_by(RegisterEntry.as_of, RegisterEntry.insurance_code)).scalars()]


def test_a_register_is_versioned_by_its_import_date_and_the_same_bytes_twice_change_nothing(
        engine: Engine, tmp_path: Path) -> None:
    program = make_program(engine)
    first = write_xlsx(tmp_path / "名册.xlsx", COLUMNS, _rows(5))
    result = import_register(engine, "shenyang-2025", first, clock=DAY1)
    assert (result.as_of.isoformat(), result.rows, result.created) == ("2025-12-01", 5, 5)
    counts = table_counts(engine)
    assert import_register(engine, "shenyang-2025", first, clock=DAY2).already_imported
    assert table_counts(engine) == counts
    # A week later, a CSV in GB18030 with one more institution is a new version; the first stays as it was.
    second = write_csv(tmp_path / "名册.csv", COLUMNS, _rows(6), encoding="gb18030")
    assert import_register(engine, "shenyang-2025", second, clock=DAY2).created == 6
    assert register_versions(engine, program.id or 0) == [(DAY1.today(), 5), (DAY2.today(), 6)]
    # Another file the same day replaces that day's version.
    again = write_csv(tmp_path / "更正.csv", COLUMNS, _rows(3))
    replaced = import_register(engine, "shenyang-2025", again, clock=DAY2)
    assert (replaced.created, replaced.replaced) == (3, 6)
    assert register_versions(engine, program.id or 0) == [(DAY1.today(), 5), (DAY2.today(), 3)]
    entries = _entries(engine)
    assert entries[0][1:] == (insurance_code(1), InstitutionKind.VILLAGE_CLINIC.value, DesignationStatus.ACTIVE.value)
    assert next(e for e in entries if e[1] == insurance_code(5))[3] == DesignationStatus.SUSPENDED.value


def test_a_bad_register_is_refused_whole_with_every_bad_row(engine: Engine, tmp_path: Path) -> None:
    make_program(engine)
    rows = [
        *_rows(2),
        ["X123", "坏编码", "和平区", "连锁药店", "正常", "2024-03-01"],
        [insurance_code(9), "外地机构", "南昌县", "村卫生室", "正常", "2024-03-01"],
        [insurance_code(10), "未知类别", "和平区", "大医院", "正常", "2024-03-01"],
        [insurance_code(11), "未知状态", "和平区", "村卫生室", "待定", "2024-03-01"],
        [insurance_code(12), "未来日期", "和平区", "村卫生室", "正常", "2026-01-01"],
        [insurance_code(1), "重复", "和平区", "村卫生室", "正常", "2024-03-01"],
    ]
    path = write_xlsx(tmp_path / "bad.xlsx", COLUMNS, rows)
    with pytest.raises(ImportRejected) as caught:
        import_register(engine, "shenyang-2025", path, clock=DAY1)
    found = {(e.row, e.column) for e in caught.value.errors}
    assert found == {(4, "机构医保编码"), (5, "所属区县"), (6, "机构类别"), (7, "定点状态"), (8, "定点日期"), (9, "机构医保编码")}
    assert all(" / " in e.message for e in caught.value.errors)  # Chinese and English
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(RegisterEntry)).scalar_one() == 0


def test_the_register_import_command_reports_the_version_and_refuses_a_wrong_header(
        engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    get_settings.cache_clear()
    make_program(engine)
    runner = CliRunner()
    assert runner.invoke(app, ["clock", "set", "2025-12-01T09:00"]).exit_code == 0
    path = write_xlsx(tmp_path / "名册.xlsx", COLUMNS, _rows(4))
    result = runner.invoke(app, ["register", "import", "shenyang-2025", str(path)])
    assert result.exit_code == 0, result.output
    assert "2025-12-01 版" in result.output and "导入 4 家" in result.output
    wrong = write_xlsx(tmp_path / "wrong.xlsx", COLUMNS[:-1], [r[:-1] for r in _rows(1)])
    refused = runner.invoke(app, ["register", "import", "shenyang-2025", str(wrong)])
    assert isinstance(refused.exception, ImportRejected) and "定点日期" in str(refused.exception)
