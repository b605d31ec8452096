from datetime import datetime, timedelta

from models.clock import SHANGHAI
from models.compliance.delivery import (
    DeliveryPart,
    completed_at,
    delivery_deadline,
    hours_late,
    is_delivery_pattern,
    is_late_delivery,
)

ORDERED = datetime(2025, 12, 1, 9, 30, tzinfo=SHANGHAI)
LONG_AFTER = ORDERED + timedelta(days=30)


def test_delivery_at_exactly_72_hours_is_on_time() -> None:
    parts = [DeliveryPart(ORDERED + timedelta(hours=72), 10)]
    assert not is_late_delivery(ORDERED, 10, parts, 72, LONG_AFTER)


def test_delivery_at_72_hours_and_one_minute_is_late() -> None:
    parts = [DeliveryPart(ORDERED + timedelta(hours=72, minutes=1), 10)]
    assert is_late_delivery(ORDERED, 10, parts, 72, LONG_AFTER)
    assert round(hours_late(ORDERED, 72, parts[0].arrived_at), 4) == round(1 / 60, 4)


def test_the_sla_is_the_programs_parameter_not_72_hours() -> None:
    parts = [DeliveryPart(ORDERED + timedelta(hours=30), 10)]
    assert is_late_delivery(ORDERED, 10, parts, 24, LONG_AFTER)
    assert not is_late_delivery(ORDERED, 10, parts, 72, LONG_AFTER)


def test_an_order_is_delivered_when_its_parts_add_up_to_the_quantity() -> None:
    # 足量: the first part alone is on time but short; the order is complete only with the late second part.
    parts = [DeliveryPart(ORDERED + timedelta(hours=80), 4), DeliveryPart(ORDERED + timedelta(hours=10), 6)]
    assert completed_at(10, parts) == ORDERED + timedelta(hours=80)
    assert is_late_delivery(ORDERED, 10, parts, 72, LONG_AFTER)
    assert not is_late_delivery(ORDERED, 6, parts, 72, LONG_AFTER)


def test_an_undelivered_order_is_late_only_once_its_deadline_has_passed() -> None:
    deadline = delivery_deadline(ORDERED, 72)
    assert not is_late_delivery(ORDERED, 10, [], 72, deadline)
    assert is_late_delivery(ORDERED, 10, [], 72, deadline + timedelta(minutes=1))
    short = [DeliveryPart(ORDERED + timedelta(hours=1), 9)]
    assert is_late_delivery(ORDERED, 10, short, 72, deadline + timedelta(minutes=1))


def test_an_enterprise_with_n_late_orders_in_the_period_is_flagged_and_with_fewer_is_not() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=SHANGHAI)
    late = [now - timedelta(days=10), now - timedelta(days=40), now - timedelta(days=89)]
    assert is_delivery_pattern(late, now, count=3, within_days=90)
    assert not is_delivery_pattern(late, now, count=4, within_days=90)
    # One of them falls out of the period: the enterprise is no longer flagged.
    assert not is_delivery_pattern(late, now + timedelta(days=2), count=3, within_days=90)
