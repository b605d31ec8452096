"""The quarterly statistics table (集采药品“三进”相关数据统计表, seed 001 att. 3): its layout and counting rules.

Pure: which column an institution kind falls in, what a quarter is, and the table's cells from per-column counts.
tasks/reports/quarterly.py counts in the database; the README explains each cell beside the table.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum

from models.clock import SHANGHAI
from models.states import InstitutionKind


class QuarterColumn(StrEnum):
    """The attachment's four columns of institutions (汇总 is their total)."""

    PHARMACY = "pharmacy"  # 定点药店
    PRIVATE_MEDICAL = "private_medical"  # 民营医疗机构
    VILLAGE_CLINIC = "village_clinic"  # 村卫生室
    COMMUNITY_STATION = "community_station"  # 社区卫生站


QUARTER_COLUMN_LABELS: dict[QuarterColumn, str] = {
    QuarterColumn.PHARMACY: "定点药店", QuarterColumn.PRIVATE_MEDICAL: "民营医疗机构",
    QuarterColumn.VILLAGE_CLINIC: "村卫生室", QuarterColumn.COMMUNITY_STATION: "社区卫生站",
}
TOTAL_LABEL = "汇总"
TITLE = "集采药品“三进”相关数据统计表"

# 001 §二(二)1: 村卫生室 and 社区卫生服务站 are run as one with the 乡镇卫生院 / 社区卫生服务中心 above them, which buy for
# them; so the township health centre goes with the village clinics (the rural tier) and the community health
# centre with the community stations (the urban tier). The two pharmacy kinds are 定点药店, the two private kinds
# 民营医疗机构. Every kind has exactly one column, so the four columns add up to 汇总.
COLUMN_OF_KIND: dict[InstitutionKind, QuarterColumn] = {
    InstitutionKind.CHAIN_PHARMACY: QuarterColumn.PHARMACY,
    InstitutionKind.SINGLE_PHARMACY: QuarterColumn.PHARMACY,
    InstitutionKind.PRIVATE_HOSPITAL: QuarterColumn.PRIVATE_MEDICAL,
    InstitutionKind.PRIVATE_CLINIC: QuarterColumn.PRIVATE_MEDICAL,
    InstitutionKind.VILLAGE_CLINIC: QuarterColumn.VILLAGE_CLINIC,
    InstitutionKind.TOWNSHIP_HEALTH_CENTER: QuarterColumn.VILLAGE_CLINIC,
    InstitutionKind.COMMUNITY_HEALTH_STATION: QuarterColumn.COMMUNITY_STATION,
    InstitutionKind.COMMUNITY_HEALTH_CENTER: QuarterColumn.COMMUNITY_STATION,
}


class QuarterRow(StrEnum):
    """The attachment's six rows, in its order."""

    INSTITUTIONS_NEW = "institutions_new"
    INSTITUTIONS_TOTAL = "institutions_total"
    VARIETIES_NEW = "varieties_new"
    VARIETIES_TOTAL = "varieties_total"
    AMOUNT_NEW = "amount_new"
    AMOUNT_TOTAL = "amount_total"


QUARTER_ROW_LABELS: dict[QuarterRow, str] = {
    QuarterRow.INSTITUTIONS_NEW: "参加集采药品医药机构数量（新增）",
    QuarterRow.INSTITUTIONS_TOTAL: "参加集采药品医药机构数量（累计）",
    QuarterRow.VARIETIES_NEW: "采购集采药品品种数量（新增）",
    QuarterRow.VARIETIES_TOTAL: "采购集采药品品种数量（累计）",
    QuarterRow.AMOUNT_NEW: "采购集采药品金额（新增）",
    QuarterRow.AMOUNT_TOTAL: "采购集采药品金额（累计）",
}
MONEY_ROWS = (QuarterRow.AMOUNT_NEW, QuarterRow.AMOUNT_TOTAL)


class QuarterError(ValueError):
    """A quarter written other than as 2026Q1 (or 2026-Q1, 2026年第1季度)."""


_QUARTER = re.compile(r"(\d{4})(?:-?Q|年第)([1-4])(?:季度)?")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = _QUARTER.fullmatch(unicodedata.normalize("NFKC", text).strip().upper())
        if m is None:
            raise QuarterError(f"季度“{text}”应写作 2026Q1 / a quarter is written 2026Q1, not {text!r}")
        return cls(int(m[1]), int(m[2]))

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.next.first_day.toordinal() - 1)

    @property
    def starts(self) -> datetime:
        """00:00 of its first day in Shanghai: an order placed at 23:30 on 03-31 local is in Q1."""
        return datetime.combine(self.first_day, time(), tzinfo=SHANGHAI)

    @property
    def ends(self) -> datetime:
        """00:00 of the next quarter's first day in Shanghai (exclusive)."""
        return self.next.starts

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def label(self) -> str:
        return f"{self.year}年第{self.number}季度（{self.first_day.isoformat()}至{self.last_day.isoformat()}）"


def quarter_to_issue(today: date) -> Quarter | None:
    """The quarter whose statistics are issued on `today`: the previous one, during a quarter's first month.

    001 §四(四): 每季度第一个月上报上一季度数据. None in the second and third months.
    """
    if today.month % 3 != 1:
        return None
    current = Quarter(today.year, (today.month - 1) // 3 + 1)
    return Quarter(today.year - 1, 4) if current.number == 1 else Quarter(today.year, current.number - 1)


Cell = int | Decimal


@dataclass(frozen=True)
class ColumnCounts:
    """What the database counted for one column (or for all institutions, for 汇总)."""

    institutions_new: int = 0
    institutions_total: int = 0
    varieties_new: int = 0
    varieties_total: int = 0
    amount_new: Decimal = Decimal("0.00")
    amount_total: Decimal = Decimal("0.00")

    def cell(self, row: QuarterRow) -> Cell:
        value: Cell = getattr(self, row.value)
        return value


@dataclass(frozen=True)
class QuarterlyTable:
    """One table of the attachment: for a region, or one city of it."""

    scope: str  # 宁夏回族自治区, 银川市 …
    quarter: Quarter
    columns: dict[QuarterColumn, ColumnCounts]
    total: ColumnCounts  # 汇总: institutions and amounts add up; varieties are distinct over all columns

    def cell(self, row: QuarterRow, column: QuarterColumn | None) -> Cell:
        """A cell; column None is 汇总."""
        return (self.total if column is None else self.columns[column]).cell(row)

    def rows(self) -> list[tuple[str, list[Cell]]]:
        """The attachment's rows, each with its four columns and 汇总, in order."""
        return [(QUARTER_ROW_LABELS[r], [*(self.cell(r, c) for c in QuarterColumn), self.cell(r, None)])
                for r in QuarterRow]


def table_of(scope: str, quarter: Quarter, per_column: dict[QuarterColumn, ColumnCounts],
             distinct: ColumnCounts) -> QuarterlyTable:
    """The table from per-column counts; `distinct` gives 汇总's varieties (a drug two columns bought is one)."""
    columns = {c: per_column.get(c, ColumnCounts()) for c in QuarterColumn}
    total = ColumnCounts(
        sum(c.institutions_new for c in columns.values()), sum(c.institutions_total for c in columns.values()),
        distinct.varieties_new, distinct.varieties_total,
        sum((c.amount_new for c in columns.values()), Decimal("0.00")),
        sum((c.amount_total for c in columns.values()), Decimal("0.00")))
    return QuarterlyTable(scope, quarter, columns, total)


__all__ = ["COLUMN_OF_KIND", "MONEY_ROWS", "QUARTER_COLUMN_LABELS", "QUARTER_ROW_LABELS", "TITLE", "TOTAL_LABEL",
           "ColumnCounts", "Quarter", "QuarterColumn", "QuarterError", "QuarterRow", "QuarterlyTable", "quarter_to_issue",
           "table_of"]
