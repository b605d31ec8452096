"""Red, yellow and blue alerts on institutions' purchase prices against the region's reference price.

Seed 004 §三(八)2: "省平台通过对同一商品名药品在不同公立医疗机构的议价采购价格、数量进行动态监测和比对分析，对公立医疗机构的
议价结果进行“红、黄、蓝”价格提醒、预警和调控。"

Parameters: `rules.price_alerts` — the reference (`median`: the median of the program's purchase prices of the
product) and the three bands as shares above it, `blue < yellow < red`. All assumed: the seed names the colours,
not the figures.

An institution's purchase price of a product is the unit price of its latest order of it. A price at exactly a
band's threshold is in that band; below the blue threshold there is no alert.

Set-based pass (one statement per run, three rule codes): the latest order per (institution, product) (MAX(id)
per pair, joined back); the median per product with ROW_NUMBER() and COUNT() windows ordered by price (portable:
SQLite has no percentile function), averaging the one or two middle rows; the band is a CASE over the ratio
with the shares as bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum


class AlertBand(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"


def median(prices: Sequence[Decimal]) -> Decimal:
    """The middle price (the mean of the two middle ones for an even count)."""
    if not prices:
        raise ValueError("median of no prices")
    ordered = sorted(prices)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def alert_band(price: Decimal, reference: Decimal, *, blue: Decimal, yellow: Decimal, red: Decimal) -> AlertBand | None:
    """The band a price falls in: at or above reference × (1 + threshold) of the highest band it reaches."""
    if reference <= 0:
        return None
    for band, share in ((AlertBand.RED, red), (AlertBand.YELLOW, yellow), (AlertBand.BLUE, blue)):
        if price >= reference * (1 + share):
            return band
    return None
