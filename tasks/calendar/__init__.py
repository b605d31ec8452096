"""The working-day calendar: each program's calendar, and entering the State Council's yearly schedule."""

from tasks.calendar.working_days import display_days, entered_overrides, working_days_for

__all__ = ["display_days", "entered_overrides", "working_days_for"]
