"""Delivery within the SLA after an order, and an enterprise's pattern of late or refused deliveries.

Seed 000 §四(二): "生产企业是“三进”集采药品供应保障的第一责任人，要自主选择优质高效的配送企业，在医药机构订单下达的
72小时内及时足量供应配送，如无特殊原因，拒绝或拖延配送将取消生产企业“三进”集采药品资格。"
Seed 001 §四(一) and 002 §八: "对无正当理由不能保障稳定供应…的，…要及时约谈中选企业" (the pattern rule).

Parameters: `rules.delivery_sla_hours` (72 in Shenyang); `rules.delivery_pattern.count` and `.within_days`
(assumed: the seeds name the sanction, not a count).

An order is delivered on time when the accepted quantity of its deliveries reaches the ordered quantity
("及时足量") no later than `ordered_at + SLA`: exactly 72 h is on time, 72 h and a minute is late. An order still
short once the deadline has passed is late too (refused or delayed); its violation closes when the order is
complete, the evidence keeping how late it was.

Set-based pass (one statement): per order, the running sum of accepted quantity over its deliveries in arrival
order (a window SUM), the first arrival at which it reaches the ordered quantity (MIN … WHERE running ≥ qty),
compared with `ordered_at + SLA` computed in Python once per run as an interval (SQLite: `julianday`, PostgreSQL:
interval arithmetic, both through SQLAlchemy expressions over a bound parameter). The pattern is a GROUP BY
enterprise over the late orders of the period, HAVING count ≥ N.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class DeliveryPart:
    """One delivery of an order: when it arrived (送达时间) and the quantity accepted (验收数量)."""

    arrived_at: datetime
    quantity: int


def delivery_deadline(ordered_at: datetime, sla_hours: int) -> datetime:
    """The latest moment an order may be complete: the order time plus the program's SLA."""
    return ordered_at + timedelta(hours=sla_hours)


def completed_at(ordered_quantity: int, parts: Iterable[DeliveryPart]) -> datetime | None:
    """When the accepted deliveries first add up to the ordered quantity (足量), or None if they never do."""
    total = 0
    for part in sorted(parts, key=lambda p: p.arrived_at):
        total += part.quantity
        if total >= ordered_quantity:
            return part.arrived_at
    return None


def is_late_delivery(
    ordered_at: datetime, ordered_quantity: int, parts: Iterable[DeliveryPart], sla_hours: int, now: datetime
) -> bool:
    """Whether an order broke the SLA: completed after the deadline, or still short once it has passed."""
    deadline = delivery_deadline(ordered_at, sla_hours)
    done = completed_at(ordered_quantity, parts)
    if done is None:
        return now > deadline
    return done > deadline


def hours_late(ordered_at: datetime, sla_hours: int, done_or_now: datetime) -> float:
    """How far past the deadline, in hours (evidence for the violation), never negative."""
    late = done_or_now - delivery_deadline(ordered_at, sla_hours)
    return max(0.0, late.total_seconds() / 3600)


def pattern_window_start(now: datetime, within_days: int) -> datetime:
    """Start of the period in which an enterprise's late or refused orders are counted (by order time)."""
    return now - timedelta(days=within_days)


def is_delivery_pattern(late_ordered_at: Iterable[datetime], now: datetime, count: int, within_days: int) -> bool:
    """Whether an enterprise had at least `count` late or refused orders placed in the last `within_days` days."""
    start = pattern_window_start(now, within_days)
    return sum(1 for t in late_ordered_at if start < t <= now) >= count
