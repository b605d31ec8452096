"""The year-end summary (执行情况, seed 001 §三(四): 各市医保部门于2026年12月底前将…执行情况报自治区医保局).

Pure: the summary's columns, and the rows of a city or the whole region from its districts' counts. What each
column counts is tasks/reports/summary.py's docstring and the README's "Year-end summary".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

SUMMARY_TITLE = "集采药品“三进”行动执行情况"

# (attribute, header, format): "count", "share" (a percentage) or "money" (元, 2 decimals).
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("designated", "定点医药机构（名册）", "count"),
    ("covered", "其中参加“三进”", "count"),
    ("share", "覆盖率", "share"),
    ("participants", "参加机构（年末）", "count"),
    ("joined", "参加机构（年内新增）", "count"),
    ("orders", "采购订单数", "count"),
    ("varieties", "采购集采药品品种数", "count"),
    ("amount", "采购集采药品金额（元）", "money"),
    ("violations_found", "发现违规（年内）", "count"),
    ("violations_open", "未整改违规（年末）", "count"),
    ("cases_opened", "启动处理程序（年内）", "count"),
    ("cases_cured", "其中已整改到位", "count"),
    ("cases_severe", "其中暂停结算或取消资格", "count"),
)
SCOPE_HEADER = "地区"
NO_DISTRICT = "（企业、产品，不属区县）"


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary: a district, a city's subtotal, or the total; `level` says which."""

    scope: str
    level: str  # district / city / total
    designated: int = 0
    covered: int = 0
    participants: int = 0
    joined: int = 0
    orders: int = 0
    amount: Decimal = Decimal("0.00")
    violations_found: int = 0
    violations_open: int = 0
    cases_opened: int = 0
    cases_cured: int = 0
    cases_severe: int = 0
    products: frozenset[int] = field(default=frozenset(), repr=False)  # bought in the year: varieties

    @property
    def share(self) -> float:
        return self.covered / self.designated if self.designated else 0.0

    @property
    def varieties(self) -> int:
        """Distinct drugs bought: a drug two districts bought is one variety of their city and of the total."""
        return len(self.products)

    def cells(self) -> list[int | float | Decimal]:
        return [getattr(self, name) for name, _, _ in SUMMARY_COLUMNS]


def combined(scope: str, level: str, rows: Iterable[SummaryRow]) -> SummaryRow:
    """A city's or the region's row: every count summed, varieties as the union of the drugs bought."""
    rows = list(rows)
    products: frozenset[int] = frozenset().union(*(r.products for r in rows))
    counts = {name: sum(getattr(r, name) for r in rows) for name in (
        "designated", "covered", "participants", "joined", "orders", "violations_found", "violations_open",
        "cases_opened", "cases_cured", "cases_severe")}
    return SummaryRow(scope, level, amount=sum((r.amount for r in rows), Decimal("0.00")), products=products, **counts)


def year_bounds(year: int) -> tuple[date, date]:
    """The summary's year: 1 January to 31 December, both included (Shanghai days)."""
    return date(year, 1, 1), date(year, 12, 31)


def arrange(districts: Sequence[tuple[str, str | None]], rows: dict[str, SummaryRow], region: str) -> list[SummaryRow]:
    """The rows in the program's order: each district; after a city's districts, its subtotal; then the rows of
    no district (enterprises, products) when there are any; the total last."""
    out: list[SummaryRow] = []
    cities: dict[str, list[SummaryRow]] = {}
    order: list[str] = []
    for name, city in districts:
        row = rows.get(name, SummaryRow(name, "district"))
        if city:
            if city not in cities:
                order.append(city)
            cities.setdefault(city, []).append(row)
        else:
            out.append(row)
    for city in order:
        out.extend(cities[city])
        out.append(combined(f"{city}（小计）", "city", cities[city]))
    if NO_DISTRICT in rows:
        out.append(rows[NO_DISTRICT])
    all_rows = [r for r in out if r.level == "district"]
    out.append(combined(f"{region}（合计）", "total", all_rows))
    return out


__all__ = ["NO_DISTRICT", "SCOPE_HEADER", "SUMMARY_COLUMNS", "SUMMARY_TITLE", "SummaryRow", "arrange", "combined",
           "year_bounds"]
