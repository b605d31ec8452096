from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from models.clock import SHANGHAI, Clock, FixedClock, SystemClock, local_date, to_shanghai


def test_naive_datetime_is_read_as_shanghai_local_time():
    dt = to_shanghai(datetime(2025, 10, 1, 9, 0))
    assert dt.tzinfo is SHANGHAI
    assert dt.astimezone(UTC) == datetime(2025, 10, 1, 1, 0, tzinfo=UTC)


def test_aware_datetime_is_converted_not_relabelled():
    dt = to_shanghai(datetime(2025, 9, 30, 17, 0, tzinfo=UTC))
    assert (dt.date(), dt.hour, dt.tzinfo) == (date(2025, 10, 1), 1, SHANGHAI)


def test_local_date_of_a_utc_evening_is_the_next_shanghai_day():
    late_utc = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)
    assert late_utc.date() == date(2025, 9, 30)
    assert local_date(late_utc) == date(2025, 10, 1)
    assert local_date(datetime(2025, 9, 30, 23, 59, tzinfo=timezone(timedelta(hours=8)))) == date(2025, 9, 30)


def test_fixed_clock_interprets_naive_as_shanghai_and_reports_aware_times():
    clock = FixedClock(datetime(2025, 9, 26, 9, 30))
    assert clock.now() == datetime(2025, 9, 26, 9, 30, tzinfo=SHANGHAI)
    assert clock.now().tzinfo is SHANGHAI
    assert clock.today() == date(2025, 9, 26)


def test_fixed_clock_today_follows_shanghai_not_utc():
    clock = FixedClock(datetime(2025, 12, 31, 16, 0, tzinfo=UTC))
    assert clock.today() == date(2026, 1, 1)


def test_fixed_clock_moves_only_when_told():
    clock = FixedClock(datetime(2025, 9, 30, 23, 0))
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(hours=2)) == datetime(2025, 10, 1, 1, 0, tzinfo=SHANGHAI)
    assert clock.today() == date(2025, 10, 1)
    clock.set(datetime(2025, 1, 1, 8, 0, tzinfo=UTC))
    assert clock.now() == datetime(2025, 1, 1, 16, 0, tzinfo=SHANGHAI)
    assert clock.now().tzinfo is SHANGHAI
    clock.set(datetime(2024, 12, 31, 12, 0))  # backwards is allowed
    assert clock.today() == date(2024, 12, 31)


def test_system_clock_is_aware_shanghai_and_close_to_real_time():
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is SHANGHAI
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
    assert clock.today() in {local_date(datetime.now(UTC)), local_date(now)}


@pytest.mark.parametrize("clock", [SystemClock(), FixedClock(datetime(2025, 1, 1))])
def test_both_clocks_satisfy_the_protocol(clock):
    assert isinstance(clock, Clock)
