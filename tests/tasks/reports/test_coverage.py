"""Coverage divides a program's participants by ITS register of designated institutions, by district and kind."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session
from typer.testing import CliRunner

from core.settings import get_settings
from models.enrollment import Application, Institution
from models.states import ApplicationState, InstitutionKind
from sanjin.cli import app
from tasks.intake.register_import import COLUMNS, import_register
from tasks.reports.coverage import coverage, coverage_on_days
from tasks.reports.coverage_report import coverage_report
from tests.factories import clock_at, make_institution, make_program, make_running_application, shanghai
from tests.factories_files import write_xlsx

VILLAGE, CHAIN = InstitutionKind.VILLAGE_CLINIC, InstitutionKind.CHAIN_PHARMACY


def _register(tmp_path: Path, name: str, rows: list[tuple[Institution, str]]) -> Path:
    label = {VILLAGE: "村卫生室", CHAIN: "连锁药店"}
    return write_xlsx(tmp_path / name, COLUMNS, [[i.insurance_code, i.name, i.district, label[i.kind], status,
                                                  "2024-01-01"] for i, status in rows])


@pytest.fixture
def two_programs(engine: Engine, tmp_path: Path) -> dict[str, list[Institution]]:
    """Jiangxi: 4 designated in 南昌市 (+1 suspended in 九江市), two join; Shenyang: 3 designated, all three run."""
    jiangxi, shenyang = make_program(engine, "jiangxi-2025"), make_program(engine)
    jx = [make_institution(engine, district="南昌市", kind=k) for k in (VILLAGE, VILLAGE, CHAIN, CHAIN)]
    jx.append(make_institution(engine, district="九江市", kind=CHAIN))
    sy = [make_institution(engine, district="和平区", kind=VILLAGE) for _ in range(3)]
    import_register(engine, "jiangxi-2025", _register(tmp_path, "jx.xlsx", [
        *((i, "正常") for i in jx[:4]), (jx[4], "暂停")]), clock=clock_at(2025, 10, 1, 9))
    import_register(engine, "shenyang-2025", _register(tmp_path, "sy.xlsx", [(i, "正常") for i in sy]),
                    clock=clock_at(2025, 10, 1, 9))
    make_running_application(engine, jiangxi, jx[0], running_at=shanghai(2025, 10, 11, 9))
    make_running_application(engine, jiangxi, jx[2], running_at=shanghai(2025, 10, 25, 9))
    for inst in sy:
        make_running_application(engine, shenyang, inst, running_at=shanghai(2025, 10, 2, 9))
    return {"jiangxi": jx, "shenyang": sy}


def _program_id(engine: Engine, slug: str) -> int:
    from tasks.programs import get_program

    with Session(engine) as session:
        return get_program(session, slug)[0].id or 0


def test_jiangxis_coverage_counts_only_jiangxis_register(engine: Engine, two_programs: dict[str, list[Institution]]
                                                         ) -> None:
    with Session(engine) as session:
        jx = coverage(session, _program_id(engine, "jiangxi-2025"))
        sy = coverage(session, _program_id(engine, "shenyang-2025"))
    assert (jx.covered, jx.total, str(jx.register_as_of)) == (2, 4, "2025-10-01")  # the suspended one is not designated
    assert [(r.key, r.covered, r.total) for r in jx.by_district] == [("南昌市", 2, 4)]
    assert [(r.key, r.covered, r.total) for r in jx.by_kind] == [("village_clinic", 1, 2), ("chain_pharmacy", 1, 2)]
    assert (sy.covered, sy.total, [r.key for r in sy.by_district]) == (3, 3, ["和平区"])


def test_coverage_on_a_past_day_counts_who_had_joined_by_then(engine: Engine,
                                                              two_programs: dict[str, list[Institution]]) -> None:
    with Session(engine) as session:
        before = coverage(session, _program_id(engine, "jiangxi-2025"), shanghai(2025, 10, 20, 9).date())
    assert (before.covered, before.total) == (1, 4)


def test_without_a_register_a_program_divides_by_its_own_applicants_only(engine: Engine) -> None:
    jiangxi, shenyang = make_program(engine, "jiangxi-2025"), make_program(engine)
    make_running_application(engine, jiangxi, make_institution(engine, district="南昌市"), running_at=shanghai(2025, 10, 2, 9))
    for _ in range(3):
        make_institution(engine, district="和平区")  # applied nowhere: in no program's denominator
    make_running_application(engine, shenyang, make_institution(engine, district="和平区"),
                             running_at=shanghai(2025, 10, 2, 9))
    with Session(engine) as session:
        jx = coverage(session, jiangxi.id or 0)
    assert (jx.covered, jx.total, jx.register_as_of, [r.key for r in jx.by_district]) == (1, 1, None, ["南昌市"])


def test_the_report_projects_each_jiangxi_target_at_the_rate_of_the_last_four_weeks(
        engine: Engine, two_programs: dict[str, list[Institution]], database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Two joined in the last four weeks (0.5 a week); both targets (80 %, 90 % of 4) need all 4: 28 more days.
    report = coverage_report(engine, "jiangxi-2025", clock=clock_at(2025, 11, 1, 9), weeks=4)
    assert [n for _, n in report.total.series] == [0, 1, 1, 2, 2]
    assert [(str(p.by), p.needed, p.gap, str(p.reached_on), p.on_time) for p in report.total.projections] == [
        ("2025-12-31", 4, 2, "2025-11-29", True), ("2026-12-31", 4, 2, "2025-11-29", True)]
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["clock", "set", "2025-11-01T09:00"]).exit_code == 0
    out = runner.invoke(app, ["report", "coverage", "jiangxi-2025", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["total"]["covered"], data["total"]["designated"], data["register_as_of"]) == (2, 4, "2025-10-01")
    assert [k["label"] for k in data["by_kind"]] == ["村卫生室", "连锁药店"]
    table = runner.invoke(app, ["report", "coverage", "jiangxi-2025"]).output
    assert "预计 2025-11-29 达到" in table and "村卫生室" in table
    # Nobody joins for six more weeks: the rate of the last four is nil.
    assert runner.invoke(app, ["clock", "set", "2025-12-13T09:00"]).exit_code == 0
    later = json.loads(runner.invoke(app, ["report", "coverage", "jiangxi-2025", "--json"]).output)
    assert later["total"]["targets"][0]["text"].startswith("按当前速度无法达到，尚差 2 家")



def _same(engine: Engine, program_id: int, days: list[date], as_of: date | None) -> None:
    with Session(engine) as session:
        one = coverage_on_days(session, program_id, days, as_of=as_of)
        each = [coverage(session, program_id, d, as_of=as_of) for d in days]
    assert [(c.covered, c.total, c.by_district, c.by_kind, c.register_as_of) for c in one] == [
        (c.covered, c.total, c.by_district, c.by_kind, c.register_as_of) for c in each]


def test_the_series_in_one_statement_counts_each_day_as_coverage_on_that_day_does(
        engine: Engine, two_programs: dict[str, list[Institution]]) -> None:
    with Session(engine) as session:  # jx[2] left on 10-28 (exited): counted from 10-25 to 10-28 only
        session.execute(update(Application).where(Application.institution_id == two_programs["jiangxi"][2].id)  # type: ignore[arg-type]
                        .values(state=ApplicationState.EXITED, left_on=date(2025, 10, 28)))
        session.commit()
    days = [date(2025, 10, 1) + timedelta(days=k) for k in range(0, 40, 3)]
    jiangxi = _program_id(engine, "jiangxi-2025")
    _same(engine, jiangxi, days, date(2025, 10, 1))
    with Session(engine) as session:
        series = [c.covered for c in coverage_on_days(session, jiangxi, days, as_of=date(2025, 10, 1))]
    assert series == [0, 0, 0, 0, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1]  # jx[0] from 10-11; jx[2] on 10-25, gone on 10-28


def test_the_series_without_a_register_divides_by_the_applicants_as_coverage_does(engine: Engine) -> None:
    ningxia = make_program(engine, "ningxia-2025")
    make_running_application(engine, ningxia, make_institution(engine, district="兴庆区"), running_at=shanghai(2025, 10, 2, 9))
    make_running_application(engine, ningxia, make_institution(engine, district="金凤区", kind=VILLAGE),
                             running_at=shanghai(2025, 10, 20, 9))
    _same(engine, ningxia.id or 0, [date(2025, 10, 1), date(2025, 10, 10), date(2025, 10, 31)], None)
