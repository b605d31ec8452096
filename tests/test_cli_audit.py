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


def _program_rows(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(text(
            "SELECT id FROM auditevent WHERE program_id IS NOT NULL ORDER BY chain, chain_seq")).scalars()]


def test_rows_deleted_from_the_middle_are_named_with_exit_1(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    _loaded(cli, engine)
    for name in ("zhao", "qian"):
        assert cli("user", "add", name, "--role", "observer", "--as", "王经理").exit_code == 0
    with engine.connect() as conn:
        rows = [int(i) for i in conn.execute(text("SELECT id FROM auditevent WHERE chain = 0 ORDER BY chain_seq"))
                .scalars()]
    assert len(rows) >= 3
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": rows[1]})
    result = cli("audit", "verify")
    assert result.exit_code == 1 and "deleted" in result.output and f"before row {rows[2]}" in result.output


def test_rows_cut_off_the_end_are_named_with_exit_1(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    _loaded(cli, engine)
    rows = _program_rows(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": rows[-1]})
    result = cli("audit", "verify", "shenyang-2025")
    assert result.exit_code == 1 and "to the end of chain" in result.output, result.output


def test_a_row_inserted_by_hand_is_named_with_exit_1(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    _loaded(cli, engine)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO auditevent (program_id, entity, entity_id, action, actor, role, data, at) "
            "SELECT program_id, entity, entity_id, 'approve', '王经理', role, data, at FROM auditevent "
            "WHERE id = :i"), {"i": _program_rows(engine)[0]})
        forged = int(conn.execute(text("SELECT max(id) FROM auditevent")).scalar_one())
    result = cli("audit", "verify", "shenyang-2025")
    assert result.exit_code == 1 and f"audit row {forged}" in result.output and "inserted" in result.output


def test_rows_cut_off_with_the_head_moved_back_are_noticed_by_the_next_check(  # type: ignore[no-untyped-def]
        cli, engine: Engine, tmp_path, monkeypatch) -> None:
    """The database alone cannot show it; the heads the previous check recorded in SANJIN_HOME still do."""
    monkeypatch.setenv("SANJIN_AUDIT_HEADS_FILE", "")
    monkeypatch.setenv("SANJIN_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    _loaded(cli, engine)
    assert cli("user", "add", "zhao", "--role", "observer", "--as", "王经理").exit_code == 0
    assert cli("audit", "verify").exit_code == 0
    assert (tmp_path / "home" / "audit-heads.json").exists()
    with engine.connect() as conn:
        rows = [int(i) for i in conn.execute(text("SELECT id FROM auditevent WHERE chain = 0 ORDER BY chain_seq"))
                .scalars()]
    with engine.begin() as conn:  # a superuser: the newest row and the head moved back together
        conn.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": rows[-1]})
        conn.execute(text("DELETE FROM auditchainhead WHERE chain = 0"))
        conn.execute(text("INSERT INTO auditchainhead (chain, seq, hash) SELECT chain, chain_seq, chain_hash "
                          "FROM auditevent WHERE id = :i"), {"i": rows[-2]})
    result = cli("audit", "verify", "shenyang-2025")
    assert result.exit_code == 1 and "此前校验记下的链头" in result.output and "were deleted" in result.output
