"""The CLI's equivalents of the scoped pages: `--as USER` shows a district reviewer only its districts (issue #18)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from core.settings import get_settings
from sanjin.cli import app
from tasks.trust.audit_check import verify_audit
from tasks.users import BadUser
from tests.web.test_authorization_matrix import OTHER, OWN, build_matrix

runner = CliRunner()


@pytest.fixture
def cli(database_url: str):  # type: ignore[no-untyped-def]
    get_settings.cache_clear()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_as_a_district_reviewer_the_cli_shows_only_its_districts(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    matrix = build_matrix(engine)
    mine, theirs = matrix.world.reviewers[OWN], matrix.world.reviewers[OTHER]
    # Enrollment's reconcilers, user changes and a publication wrote that world's audit rows: all in their chains.
    assert verify_audit(engine).broken is None

    late = json.loads(cli("laggards", "shenyang-2025", "--json", "--as", mine).stdout)
    assert late and {r["district"] for r in late} == {OWN}
    everyone = json.loads(cli("laggards", "shenyang-2025", "--json").stdout)
    assert {r["district"] for r in everyone} == {OWN, OTHER}

    gates = json.loads(cli("gate", "list", "--json", "--as", theirs).stdout)
    assert gates and {g["district"] for g in gates} == {OTHER}

    letters = cli("notices", "list", "--limit", "500", "--as", mine).stdout
    assert "heping-letter" in letters and "shenhe-letter" not in letters
    assert "shenhe-letter" in cli("notices", "list", "--limit", "500", "--as", "manager").stdout


def test_a_reviewer_asking_for_another_district_or_an_unknown_user_gets_a_message(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    matrix = build_matrix(engine)
    refused = cli("violations", "list", "shenyang-2025", "--district", OWN, "--as", matrix.world.reviewers[OTHER])
    assert isinstance(refused.exception, BadUser) and "只能查看本人负责的区县" in str(refused.exception)
    refused = cli("gate", "list", "--district", OWN, "--as", matrix.world.reviewers[OTHER])
    assert isinstance(refused.exception, BadUser)
    unknown = cli("laggards", "shenyang-2025", "--as", "nobody")
    assert isinstance(unknown.exception, BadUser) and "nobody" in str(unknown.exception)
