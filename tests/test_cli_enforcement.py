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
