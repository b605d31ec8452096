"""`sanjin laggards`: a long list is cut to the latest by default, filtered by district, and says when none is late."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Engine
from typer.testing import CliRunner

from core.settings import get_settings
from models.states import InstitutionKind
from sanjin.cli import app
from tests.factories import make_program, shanghai
from tests.tasks.test_reminders import _account, _running

runner = CliRunner()


def _cli(*args: str) -> str:
    get_settings.cache_clear()
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def test_laggards_are_cut_to_the_limit_filtered_by_district_and_named_in_chinese(engine: Engine, database_url: str,
                                                                                 monkeypatch) -> None:
    monkeypatch.setenv("SANJIN_CLOCK", "database")
    program = make_program(engine, "shenyang-2025")
    late = {"和平区": 3, "沈河区": 2}
    for district, n in late.items():
        for _ in range(n):
            inst = _running(engine, program, district=district, kind=InstitutionKind.CHAIN_PHARMACY)
            _account(engine, program, inst, date(2025, 11, 14))
    _cli("clock", "set", shanghai(2025, 12, 1, 9).isoformat())

    out = _cli("laggards", "shenyang-2025", "--limit", "2")
    assert "平台账户未注册" in out and "account" not in out
    assert "共 5 家，显示最晚的 2 家（--limit 0 显示全部）" in out
    out = _cli("laggards", "shenyang-2025", "--district", "沈河区")
    assert "共 2 家（沈河区）" in out and "和平区" not in out.split("共 2 家")[0]
    rows = json.loads(_cli("laggards", "shenyang-2025", "--district", "和平区", "--json", "--limit", "0"))
    assert [r["district"] for r in rows] == ["和平区"] * 3
    assert _cli("laggards", "shenyang-2025", "--district", "铁西区").strip() == (
        "没有进度滞后的机构（铁西区） / no institution is behind")


def test_a_name_with_terminal_controls_is_shown_escaped_in_the_table_and_in_json(engine: Engine, database_url: str,
                                                                                monkeypatch) -> None:
    """Issue #18: control characters (ESC sequences, U+202E) in names were printed raw to the terminal. JSON keeps
    its meaning: the escape `\\u202e` reads back as the same name."""
    from sqlmodel import Session

    from models.enrollment import Institution

    monkeypatch.setenv("SANJIN_CLOCK", "database")
    program = make_program(engine, "shenyang-2025")
    inst = _running(engine, program, district="和平区", kind=InstitutionKind.CHAIN_PHARMACY)
    hostile = "大药房\x1b[2J\x1b]0;pwned\x07\u202e店药"
    with Session(engine) as session:
        row = session.get(Institution, inst.id)
        assert row is not None
        row.name = hostile
        session.add(row)
        session.commit()
    _account(engine, program, inst, date(2025, 11, 14))
    _cli("clock", "set", shanghai(2025, 12, 1, 9).isoformat())
    table = _cli("laggards", "shenyang-2025")
    raw = _cli("laggards", "shenyang-2025", "--json")
    for out in (table, raw):
        assert not any(c in out for c in "\x1b\x07\u202e"), repr(out)
    assert "\\u202e店药" in table
    assert [r["name"] for r in json.loads(raw)] == [hostile]
