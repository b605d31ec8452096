"""What every rule's finding query needs: the program, today, now, the calendar and the rule parameters.

Every parameter is read from the program file's `rules` (`models/program_definition/rules.py`), none defaulted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from models.program_definition import Rules
from models.workdays import WorkingDays


@dataclass(frozen=True)
class PassContext:
    program_id: int
    rules: Rules
    today: date
    now: datetime
    calendar: WorkingDays
