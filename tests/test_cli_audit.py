"""`sanjin audit verify [PROGRAM]`: exit 0 on an intact trail, exit 1 naming the first broken row (issue #18)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from core.settings import get_settings
from sanjin.cli import app
from tests.test_cli import SHENYANG

runner = CliRunner()


@pytest.fixture
def cli(database_url: str):  # type: ignore[no-untyped-def]
    get_settings.cache_clear()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def _loaded(cli, engine: Engine) -> int:  # type: ignore[no-untyped-def]
    assert cli("program", "load", SHENYANG, "--as", "王经理").exit_code == 0
    assert cli("user", "add", "liu", "--role", "district_reviewer", "--district", "和平区", "--as", "王经理"
               ).exit_code == 0
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT min(id) FROM auditevent WHERE program_id IS NOT NULL")).scalar_one())


def test_an_intact_trail_verifies_with_exit_0(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    _loaded(cli, engine)
    result = cli("audit", "verify", "shenyang-2025")
    assert result.exit_code == 0 and "audit trail intact" in result.stdout, result.output
    assert cli("audit", "verify").exit_code == 0


def test_an_edited_row_is_named_with_exit_1(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    row = _loaded(cli, engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET at = at - interval '1 day' WHERE id = :i"
                          if engine.dialect.name == "postgresql" else
                          "UPDATE auditevent SET actor = '张三' WHERE id = :i"), {"i": row})
    result = cli("audit", "verify", "shenyang-2025")
    assert result.exit_code == 1 and f"audit row {row}" in result.output and "edited" in result.output


def test_a_deleted_user_row_is_named_with_exit_1(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    _loaded(cli, engine)
    assert cli("user", "add", "zhao", "--role", "observer", "--as", "王经理").exit_code == 0
    with engine.begin() as conn:  # the reviewer's creation disappears; the observer's stays
        conn.execute(text("DELETE FROM auditevent WHERE entity = 'user' AND to_state = 'district_reviewer'"))
    result = cli("audit", "verify")
    assert result.exit_code == 1 and "deleted" in result.output, result.output


def test_an_unknown_program_is_a_message(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("audit", "verify", "nosuch")
    assert result.exit_code != 0
