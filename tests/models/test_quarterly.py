"""The quarterly table's rules without a database: every kind has one column, quarters are Shanghai quarters."""

from __future__ import annotations

from datetime import date

import pytest

from models.quarterly import COLUMN_OF_KIND, Quarter, QuarterColumn, QuarterError
from models.states import InstitutionKind


def test_every_institution_kind_falls_in_exactly_one_column_and_township_centres_go_with_village_clinics() -> None:
    assert set(COLUMN_OF_KIND) == set(InstitutionKind)
    assert COLUMN_OF_KIND[InstitutionKind.TOWNSHIP_HEALTH_CENTER] == QuarterColumn.VILLAGE_CLINIC
    assert COLUMN_OF_KIND[InstitutionKind.COMMUNITY_HEALTH_CENTER] == QuarterColumn.COMMUNITY_STATION
    assert COLUMN_OF_KIND[InstitutionKind.SINGLE_PHARMACY] == QuarterColumn.PHARMACY


def test_a_quarter_is_written_2026q1_and_runs_from_its_first_to_its_last_day() -> None:
    q = Quarter.parse("2026Q1")
    assert (q.first_day, q.last_day, str(q.next)) == (date(2026, 1, 1), date(2026, 3, 31), "2026Q2")
    assert Quarter.parse("2025年第4季度").next == Quarter(2026, 1) and Quarter.parse("2025-q4") == Quarter(2025, 4)
    assert q.starts.isoformat() == "2026-01-01T00:00:00+08:00"
    with pytest.raises(QuarterError, match="2026Q1"):
        Quarter.parse("2026Q5")
