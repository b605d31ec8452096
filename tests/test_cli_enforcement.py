"""`sanjin enforcement list|decide` and `sanjin enterprise bad-record` against a real database."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from core.clock_store import DatabaseClock
from core.settings import get_settings
from models.compliance.codes import SubjectType, ViolationRule
from models.operations import Violation
from sanjin.cli import app
from tasks.enforcement.ladder import reconcile_enforcement
from tasks.gates.rows import BadItems
from tests.factories import make_enterprise, make_program, make_reviewers, shanghai

runner = CliRunner()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SANJIN_CLOCK", "database")  # these tests move the simulated clock
    get_settings.cache_clear()

    def invoke(*args: object):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [str(a) for a in args])
    return invoke


def test_the_cli_lists_a_ladder_in_chinese_and_decides_its_gate(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    program = make_program(engine)
    make_reviewers(engine, [])
    late = make_enterprise(engine, "迟送制药有限公司")
    assert cli("clock", "set", "2025-12-01T09:00").exit_code == 0
    with Session(engine) as session:
        session.add(Violation(program_id=program.id or 0, rule=ViolationRule.DELIVERY_PATTERN,
                              subject_type=SubjectType.ENTERPRISE, subject_id=late.id or 0, object_key="2025Q4",
                              evidence={"超时配送次数": 5}, detected_on=date(2025, 12, 1),
                              detected_at=shanghai(2025, 12, 1, 9)))
        session.commit()
    reconcile_enforcement(engine, "shenyang-2025", clock=DatabaseClock(engine))
    (row,) = json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output)
    assert (row["subject"], row["state"]) == ("生产企业 迟送制药有限公司", "待约谈")
    table = cli("enforcement", "list", "shenyang-2025").output
    assert "企业多次超时或拒绝配送" in table and "delivery_pattern" not in table
    assert isinstance(cli("enforcement", "decide", row["open_gate_id"], "--as", "manager").exception, BadItems)
    done = cli("enforcement", "decide", row["open_gate_id"], "--approve", "--as", "manager")
    assert done.exit_code == 0, done.output
    (row,) = json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output)
    assert row["state"] == "已约谈，待下达整改"
    barred = cli("enterprise", "bad-record", "shenyang-2025", "迟送制药有限公司", "--from", "2025-12-01",
                 "--reason", "拒绝配送", "--as", "manager")
    assert barred.exit_code == 0 and "2027-11-30" in barred.output


def test_the_cli_opens_an_exit_gate_for_the_manager_and_refuses_a_bad_date(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    make_program(engine)
    make_reviewers(engine, [])
    make_enterprise(engine, "期满制药有限公司")
    assert cli("clock", "set", "2025-12-01T09:00").exit_code == 0
    bad = cli("enterprise", "exit", "shenyang-2025", "期满制药有限公司", "--from", "2025-13-01", "--reason", "协议期满",
              "--as", "manager")
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    done = cli("enterprise", "exit", "shenyang-2025", "期满制药有限公司", "--from", "2026-01-01", "--reason", "协议期满",
               "--as", "manager")
    assert done.exit_code == 0, done.output
    gates = json.loads(cli("gate", "list", "--json").output)
    assert [g["kind"] for g in gates] == ["enterprise_exit"] and "2026-01-01" in gates[0]["title"]


def test_a_district_reviewer_starts_a_ladder_by_hand_against_its_own_districts_pharmacy_only(  # type: ignore[no-untyped-def]
        cli, engine: Engine) -> None:
    from tests.factories import make_institution, make_running_application

    program = make_program(engine)
    reviewers = make_reviewers(engine, ["和平区", "沈河区"])
    pharmacy = make_institution(engine, district="和平区")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 9, 30, 9))
    assert cli("clock", "set", "2025-12-01T09:00").exit_code == 0
    args = ("enforcement", "start", "shenyang-2025", "--institution", pharmacy.insurance_code)
    foreign = cli(*args, "--reason", "群众举报：串换集采药品", "--as", reviewers["沈河区"])
    assert foreign.exit_code != 0 and "无权" in str(foreign.exception)
    assert "立案理由" in str(cli(*args, "--as", reviewers["和平区"]).exception)  # no violation, no reason: refused
    done = cli(*args, "--reason", "群众举报：串换集采药品", "--as", reviewers["和平区"])
    assert done.exit_code == 0, done.output
    (row,) = json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output)
    assert (row["rule"], row["state"], row["started_by"]) == ("人工立案", "待约谈", reviewers["和平区"])
    assert row["evidence"] == {"立案理由": "群众举报：串换集采药品"} and row["open_gate_id"] is not None
    again = cli(*args, "--reason", "群众举报：串换集采药品", "--as", "manager")
    assert again.exit_code != 0 and "已有" in str(again.exception)  # the same matter is not started twice
    decided = cli("enforcement", "decide", row["open_gate_id"], "--approve", "--as", reviewers["和平区"])
    assert decided.exit_code == 0, decided.output
    (row,) = json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output)
    assert row["state"] == "已约谈，待下达整改"


def test_a_manager_cites_a_violation_whose_rule_opens_no_ladder_by_itself(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_institution, make_running_application

    program = make_program(engine)
    make_reviewers(engine, ["和平区"])
    pharmacy = make_institution(engine, district="和平区")
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 9, 30, 9))
    assert cli("clock", "set", "2025-12-01T09:00").exit_code == 0
    with Session(engine) as session:
        v = Violation(program_id=program.id or 0, rule=ViolationRule.SPECIAL_DRUG, subject_type=SubjectType.INSTITUTION,
                      subject_id=pharmacy.id or 0, object_key="XA01", district="和平区", evidence={"特药": "XA01"},
                      detected_on=date(2025, 12, 1), detected_at=shanghai(2025, 12, 1, 9))
        session.add(v)
        session.commit()
        violation_id = v.id
    reconcile_enforcement(engine, "shenyang-2025", clock=DatabaseClock(engine))
    assert json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output) == []  # 000 names no measure
    done = cli("enforcement", "start", "shenyang-2025", "--violation", violation_id, "--as", "manager")
    assert done.exit_code == 0, done.output
    (row,) = json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output)
    assert row["evidence"] == {"特药": "XA01"} and row["district"] == "和平区" and row["open_gate_id"] is not None
    reconcile_enforcement(engine, "shenyang-2025", clock=DatabaseClock(engine))
    assert len(json.loads(cli("enforcement", "list", "shenyang-2025", "--json").output)) == 1
