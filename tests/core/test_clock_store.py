"""Time cannot be faked in production: a simulated clock exists only where settings allow it (issue #18)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from core.clock_store import DatabaseClock, SimulatedClockRefused
from core.settings import get_settings
from models.audit import AuditEvent
from models.clock import SHANGHAI
from tests.factories import shanghai


@pytest.fixture
def real_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This installation as production runs it: SANJIN_CLOCK unset (system)."""
    monkeypatch.delenv("SANJIN_CLOCK", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _now() -> datetime:
    return datetime.now(SHANGHAI)


def test_a_stored_simulated_time_counts_where_settings_allow_it(engine: Engine) -> None:
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 9, 1, 9))
    assert clock.now() == shanghai(2025, 9, 1, 9) and clock.today().isoformat() == "2025-09-01"


def test_a_simulated_time_left_in_the_database_is_ignored_on_real_time(engine: Engine, real_time: None) -> None:
    """A rehearsal's leftover row, or one written straight into the table, cannot backdate a submission."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clocksetting (id, now) VALUES (1, :t)"),
                     {"t": shanghai(2025, 9, 1, 9).isoformat() if engine.dialect.name == "sqlite"
                      else shanghai(2025, 9, 1, 9)})
    clock = DatabaseClock(engine)
    assert clock.simulated() is None
    assert abs(clock.now() - _now()) < timedelta(minutes=1)


def test_setting_the_clock_on_real_time_is_refused_even_without_the_command_line(engine: Engine,
                                                                                  real_time: None) -> None:
    clock = DatabaseClock(engine)
    with pytest.raises(SimulatedClockRefused, match="真实时间"):
        clock.set(shanghai(2025, 9, 1, 9))
    with pytest.raises(SimulatedClockRefused):
        clock.advance(timedelta(days=-30))
    with pytest.raises(SimulatedClockRefused):
        clock.change_audited(shanghai(2025, 9, 1, 9), actor="王经理")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM clocksetting")).scalar_one() == 0


def test_clearing_a_leftover_simulated_time_on_real_time_is_allowed_and_audited(engine: Engine,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    DatabaseClock(engine).set(shanghai(2025, 9, 1, 9))
    monkeypatch.delenv("SANJIN_CLOCK", raising=False)
    get_settings.cache_clear()
    try:
        DatabaseClock(engine).change_audited(None, actor="王经理")
    finally:
        get_settings.cache_clear()
    with Session(engine) as session:
        row = session.exec(select(AuditEvent).where(AuditEvent.entity == "clock")).one()
    assert (row.action, row.actor, row.data["to"]) == ("clear", "王经理", None)
    assert row.data["from"] == shanghai(2025, 9, 1, 9).isoformat()
