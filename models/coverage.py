"""Coverage targets and when they will be reached: pure arithmetic on counts, no database.

Coverage is participating ÷ designated institutions (tasks/reports/coverage.py counts both). A target
`share` by a date needs ⌈share × designated⌉ institutions; at the rate of the last N weeks (participants gained
in those weeks ÷ their days) it is reached on the first day the line crosses that number, or never when
the line does not rise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

UNREACHABLE_ZH = "按当前速度无法达到"


def institutions_needed(share: Decimal, designated: int) -> int:
    """The fewest participants that make `share` of `designated` (80 % of 101 is 81, not 80.8)."""
    return int((share * designated).to_integral_value(rounding=ROUND_CEILING))


def covered_on(series: Sequence[tuple[date, int]], day: date) -> int:
    """The count of the series' last point on or before `day` (a step line); 0 before its first point."""
    value = 0
    for point, count in sorted(series):
        if point > day:
            break
        value = count
    return value


def weekly_rate(series: Sequence[tuple[date, int]], today: date, weeks: int) -> Decimal:
    """Participants gained per day over the last `weeks` weeks up to `today`."""
    days = 7 * weeks
    gained = covered_on(series, today) - covered_on(series, today - timedelta(days=days))
    return Decimal(gained) / days


@dataclass(frozen=True)
class Projection:
    """One dated target seen from `today`: met already, reached on a date, or not at this rate."""

    today: date
    by: date
    share: Decimal
    needed: int  # participants the target asks for
    covered: int  # participants today
    rate_per_day: Decimal
    reached_on: date | None  # the projected day (today when met already); None: not at this rate

    @property
    def met(self) -> bool:
        return self.covered >= self.needed

    @property
    def on_time(self) -> bool:
        return self.reached_on is not None and self.reached_on <= self.by

    @property
    def gap(self) -> int:
        """Participants still missing today."""
        return max(self.needed - self.covered, 0)

    @property
    def gap_at_target(self) -> int:
        """Participants that will still be missing on the target date at this rate."""
        if self.on_time:
            return 0
        days = max((self.by - self.today).days, 0)
        expected = self.covered + int(self.rate_per_day * days)
        return max(self.needed - expected, 0)

    def describe(self) -> str:
        """The projection in Chinese and English, as the report prints it."""
        if self.met:
            return "已达到 / met"
        if self.reached_on is None:
            return f"{UNREACHABLE_ZH}，尚差 {self.gap} 家 / not at this rate: {self.gap} institutions short"
        when = self.reached_on.isoformat()
        if self.on_time:
            return f"预计 {when} 达到，尚差 {self.gap} 家 / reached on {when}; {self.gap} institutions to go"
        return (f"预计 {when} 达到，晚于目标日期，到期尚差 {self.gap_at_target} 家 / reached on {when}, after the "
                f"target date: {self.gap_at_target} institutions short on {self.by.isoformat()}")


def project(series: Sequence[tuple[date, int]], designated: int, by: date, share: Decimal, today: date,
            weeks: int) -> Projection:
    """When `share` of `designated` will be reached, at the rate of the last `weeks` weeks of `series`."""
    covered = covered_on(series, today)
    needed = institutions_needed(share, designated)
    rate = weekly_rate(series, today, weeks)
    if covered >= needed:
        reached: date | None = today
    elif rate <= 0:
        reached = None
    else:
        reached = today + timedelta(days=math.ceil((needed - covered) / rate))
    return Projection(today, by, share, needed, covered, rate, reached)


__all__ = ["UNREACHABLE_ZH", "Projection", "covered_on", "institutions_needed", "project", "weekly_rate"]
