"""Taking part for at least the minimum time.

Seed 001 att.2 五 / 002 att.1 五: "参加集采药品“三进”行动的时间不少于一年"; 002 §二: "原则上参加时间不少于一年".

Parameter: `rules.min_participation_years` (1).

An institution that started running on 2025-10-01 may leave from 2026-10-01 on; leaving on 2026-09-30 is early.

Set-based pass (one statement): applications that left (withdrawn or exited, with `left_on`) joined with their
batch's `running_at`, WHERE left_on < the start + N years; the N-years shift is computed per distinct start date
in Python (a small set), like the payment due dates.
"""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta


def earliest_exit(started_on: date, years: int) -> date:
    """The first day an institution may leave without breaking its commitment."""
    return started_on + relativedelta(years=years)


def left_too_early(started_on: date, left_on: date, years: int) -> bool:
    """Left before completing `years` years of participation."""
    return left_on < earliest_exit(started_on, years)
