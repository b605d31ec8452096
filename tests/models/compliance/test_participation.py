from datetime import date

from models.compliance.participation import earliest_exit, left_too_early


def test_leaving_before_one_year_of_participation_is_a_violation_and_after_it_is_not() -> None:
    start = date(2025, 10, 1)
    assert earliest_exit(start, 1) == date(2026, 10, 1)
    assert left_too_early(start, date(2026, 9, 30), 1)
    assert not left_too_early(start, date(2026, 10, 1), 1)


def test_a_start_on_29_february_may_leave_on_28_february() -> None:
    assert not left_too_early(date(2024, 2, 29), date(2025, 2, 28), 1)
    assert left_too_early(date(2024, 2, 29), date(2025, 2, 27), 1)
