"""`sanjin operations import` and `sanjin violations list` against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from core.settings import get_settings
from models.states import InstitutionKind
from sanjin.cli import app
from tasks.compliance.compliance_pass import run_compliance_pass
from tasks.intake.operations_import import COLUMNS, OperationsKind
from tasks.intake.spreadsheets import ImportRejected
from tests.factories import clock_at, make_enterprise, make_institution, make_product, make_program, shanghai
from tests.factories_files import write_xlsx

runner = CliRunner()


@pytest.fixture
def cli(database_url: str):  # type: ignore[no-untyped-def]
    get_settings.cache_clear()

    def invoke(*args: object):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [str(a) for a in args])
    return invoke


def test_orders_imported_by_the_cli_are_found_late_and_listed_by_rule_district_and_state(
        cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    make_program(engine)
    heping = make_institution(engine, district="和平区")
    shenhe = make_institution(engine, district="沈河区", kind=InstitutionKind.SINGLE_PHARMACY)
    product = make_product(engine, make_enterprise(engine))
    assert cli("clock", "set", "2025-12-10T09:00").exit_code == 0
    ordered = shanghai(2025, 12, 1, 9)
    orders = write_xlsx(tmp_path / "orders.xlsx", COLUMNS[OperationsKind.ORDERS], [
        [f"PO-{i}", inst.insurance_code, product.drug_code, "配送企业", 1, "12.50", f"{ordered:%Y-%m-%d %H:%M}"]
        for i, inst in enumerate((heping, shenhe))])
    result = cli("operations", "import", "shenyang-2025", "orders", orders)
    assert result.exit_code == 0, result.output
    assert "新增 2" in result.output
    assert "已导入过" in cli("operations", "import", "shenyang-2025", "orders", orders).output
    bad = write_xlsx(tmp_path / "bad.xlsx", COLUMNS[OperationsKind.DELIVERIES], [["PO-9", "x", "y", "z"]])
    refused = cli("operations", "import", "shenyang-2025", "deliveries", bad)
    assert isinstance(refused.exception, ImportRejected)
    run_compliance_pass(engine, "shenyang-2025", clock=clock_at(2025, 12, 10, 9))
    listed = json.loads(cli("violations", "list", "shenyang-2025", "--rule", "late_delivery", "--json").output)
    assert sorted(v["object"] for v in listed) == ["PO-0", "PO-1"]
    assert {v["rule_label"] for v in listed} == {"超时配送"}
    mine = json.loads(cli("violations", "list", "shenyang-2025", "--district", "沈河区", "--open", "--json").output)
    assert [(v["object"], v["district"], v["state_label"]) for v in mine] == [("PO-1", "沈河区", "未整改")]
    table = cli("violations", "list", "shenyang-2025", "--open").output
    assert "超时配送" in table and "late_delivery" not in table
    assert ordered + timedelta(hours=72) < shanghai(2025, 12, 10, 9)
