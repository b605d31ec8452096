"""A bad record bars an enterprise for the program's bad_record_ban_years (004 §六(十五)), to the day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from models.audit import AuditEvent
from models.catalog import Enterprise
from models.states import EnterpriseState
from tasks.enforcement.bars import bar_enterprise
from tasks.enforcement.lookup import ManagersOnly
from tasks.intake.declaration_import import import_declaration
from tasks.intake.spreadsheets import ImportRejected
from tests.factories import clock_at, make_enterprise, make_program, make_reviewers
from tests.factories_files import DECLARATION_HEADER, product_row, write_xlsx

SLUG = "shenyang-2025"
NAME = "失信制药有限公司"


def test_a_barred_enterprise_is_refused_on_the_last_day_of_the_bar_and_accepted_the_day_after(
        engine: Engine, tmp_path: Path) -> None:
    make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["和平区"])
    make_enterprise(engine, NAME)
    clock = clock_at(2025, 8, 19, 10)
    with pytest.raises(ManagersOnly):
        bar_enterprise(engine, SLUG, NAME, starts_on=date(2023, 8, 20), reason="虚假申报", user_name=reviewers["和平区"],
                       clock=clock)
    bad = bar_enterprise(engine, SLUG, NAME, starts_on=date(2023, 8, 20), reason="虚假申报", user_name="manager",
                         clock=clock)
    assert bad.barred_until == date(2025, 8, 19)  # two years: 2023-08-20 … 2025-08-19
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_HEADER, [product_row(1, 生产企业=NAME, 投标企业=NAME)])
    with pytest.raises(ImportRejected) as caught:
        import_declaration(engine, SLUG, path, NAME, clock=clock)  # the last day of the bar
    assert "2025-08-19" in str(caught.value) and "2025-08-20起可再申报" in str(caught.value)
    result = import_declaration(engine, SLUG, path, NAME, clock=clock_at(2025, 8, 20, 9))
    assert result.created == 1
    with Session(engine) as session:
        assert session.execute(select(Enterprise.state).where(Enterprise.name == NAME)).scalar_one() \
            == EnterpriseState.ACTIVE  # type: ignore[arg-type]
        actions = [a.action for a in session.execute(select(AuditEvent).where(
            AuditEvent.entity == "enterprise")).scalars()]  # type: ignore[arg-type]
    assert actions == ["bar", "lift_bar"]  # the bar is in the audit trail
