"""The working-day calendar a program uses: the shipped overrides plus the program's unknown-year policy."""

from __future__ import annotations

from functools import lru_cache

from core.settings import get_settings
from models.program_definition import ProgramDefinition
from models.workdays import WorkingDays, load_working_days


@lru_cache(maxsize=8)
def _calendar(policy: str) -> WorkingDays:
    return load_working_days(get_settings().calendar_overrides, unknown_year=policy)  # type: ignore[arg-type]


def working_days_for(defn: ProgramDefinition) -> WorkingDays:
    return _calendar(defn.calendar_unknown_year)
