"""When a coverage target is reached at the rate of the last N weeks: a constructed series, known answers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from models.coverage import UNREACHABLE_ZH, covered_on, institutions_needed, project

TODAY = date(2025, 10, 1)
# 10 participants gained every week for the last 4 weeks (60 → 100), flat before: 10/7 a day.
SERIES = [(TODAY - timedelta(weeks=6), 60), (TODAY - timedelta(weeks=4), 60), (TODAY - timedelta(weeks=3), 70),
          (TODAY - timedelta(weeks=2), 80), (TODAY - timedelta(weeks=1), 90), (TODAY, 100)]


def test_a_target_needs_the_share_of_designated_institutions_rounded_up() -> None:
    assert institutions_needed(Decimal("0.80"), 200) == 160
    assert institutions_needed(Decimal("0.80"), 101) == 81
    assert covered_on(SERIES, TODAY - timedelta(days=10)) == 80
    assert covered_on(SERIES, date(2020, 1, 1)) == 0


def test_at_ten_a_week_sixty_more_institutions_take_forty_two_days() -> None:
    # 80 % of 200 = 160; 60 to go at 10/7 a day: 42 days → 2025-11-12, before the 2025-12-31 target.
    p = project(SERIES, 200, date(2025, 12, 31), Decimal("0.80"), TODAY, weeks=4)
    assert (p.needed, p.covered, p.rate_per_day * 7) == (160, 100, Decimal(10))
    assert p.reached_on == date(2025, 11, 12) and p.on_time and p.gap == 60 and p.gap_at_target == 0
    assert "预计 2025-11-12 达到" in p.describe()


def test_a_target_after_its_date_says_how_many_will_still_be_missing() -> None:
    # 90 % of 200 = 180 by 2025-10-29 (4 weeks): 40 of the 80 will come, 40 will be missing.
    p = project(SERIES, 200, date(2025, 10, 29), Decimal("0.90"), TODAY, weeks=4)
    assert p.reached_on == date(2025, 11, 26) and not p.on_time
    assert p.gap_at_target == 40 and "到期尚差 40 家" in p.describe()


def test_with_no_gain_in_the_last_weeks_the_target_is_not_reached_at_this_rate() -> None:
    flat = [*SERIES, (TODAY + timedelta(weeks=6), 100)]
    p = project(flat, 200, date(2026, 12, 31), Decimal("0.80"), TODAY + timedelta(weeks=6), weeks=4)
    assert p.reached_on is None and p.gap == 60
    assert p.describe().startswith(UNREACHABLE_ZH) and "尚差 60 家" in p.describe()


def test_a_target_already_met_is_reached_today() -> None:
    p = project(SERIES, 110, date(2025, 12, 31), Decimal("0.80"), TODAY, weeks=4)
    assert p.met and p.reached_on == TODAY and p.gap == 0 and p.describe().startswith("已达到")
