"""The rule parameters of a program, by family: drug counts, markups, coverage targets, and the rest."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from models.program_definition.base import Loc, NonEmptyStr, NonNegativeInt, PositiveInt, RuleViolations, Share, _Strict


class MinDrugCount(_Strict):
    """Minimum number of 集采 drugs (by generic name) an institution must stock.

    ``use_committed_count``: the count the institution wrote in its commitment letter (001 att.2,
    002 att.1 "种类达__种及以上") is enforced; a per-kind floor, where set, is the least it may
    commit.  ``None`` for a kind means the seed sets no floor for it.
    """

    private_tertiary: PositiveInt | None = None
    private_other: PositiveInt | None = None
    pharmacy: PositiveInt | None = None
    use_committed_count: bool = False


class MarkupRules(_Strict):
    """Sale-price caps as a fraction over the winning price (中选价); 0 means "at most the winning price"."""

    public_max: Share = Decimal(0)  # 零差率: public institutions sell at the winning price (000, 001, 002)
    private_max: Share = Decimal(0)  # private medical: not above the winning price (001, 002)
    pharmacy_max: Share
    # Higher cap for a pharmacy whose price level is within the 量价比较指数 (002: 15 %); None = no such cap.
    pharmacy_max_with_index: Share | None = None

    @model_validator(mode="after")
    def _index_cap_not_lower(self) -> Self:
        if self.pharmacy_max_with_index is not None and self.pharmacy_max_with_index < self.pharmacy_max:
            raise RuleViolations(
                [
                    (
                        ("pharmacy_max_with_index",),
                        "must not be lower than pharmacy_max (it is the relaxed cap)",
                    )
                ]
            )
        return self


class PriceAlertBands(_Strict):
    """Red / yellow / blue price alerts (004 §二(四)2 对议价结果进行"红、黄、蓝"价格提醒): how far above the reference.

    The seed names the three colours but no figure: the defaults are assumed, each a fraction over the
    program's reference price (the median of the region's latest purchase prices), blue < yellow < red.
    """

    blue: Share = Decimal("0.10")  # assumed
    yellow: Share = Decimal("0.20")  # assumed
    red: Share = Decimal("0.30")  # assumed

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        if not self.blue < self.yellow < self.red:
            raise RuleViolations([((), "the bands must rise: blue < yellow < red")])
        return self


class CoverageTarget(_Strict):
    by: date
    share: Annotated[Decimal, Field(gt=0, le=1)]


def _default_focus_categories() -> list[str]:
    return ["心脑血管", "消化系统", "呼吸系统", "内分泌及代谢"]


def _default_agreed_volume() -> dict[int, Decimal]:
    return {1: Decimal("0.5"), 2: Decimal("0.6"), 3: Decimal("0.7")}


class Rules(_Strict):
    """Every parameter of SPEC's "Rules" table.

    Defaults are the value SPEC gives as the common baseline; the region files state every value
    explicitly and mark the ones their seed is silent on as ``# assumed``.
    """

    focus_categories: list[NonEmptyStr] = Field(default_factory=_default_focus_categories)  # 000, 001, 002
    commit_at_or_below_winning_price: bool = True  # enterprise supplies at ≤ 中选价 (001, 002)
    delivery_sla_hours: PositiveInt = 72  # 000: within 72 h of the order (003: 24 h distributor capability)
    delivery_refusal_removes_enterprise: bool = True  # 000; 001/002 after an interview first
    # 000 §四(二) 拒绝或拖延配送 / 001 §三(一) give no count: assumed 3 late or refused orders in 90 days.
    delivery_pattern_count: PositiveInt = 3
    delivery_pattern_days: PositiveInt = 90
    payment_due: Literal["next_month_end"] = "next_month_end"  # 次月底 after acceptance (000, 001, 002)
    # Seeds say payment "不应超过…次月底"; rolling a non-working month end forward would exceed it.
    payment_due_roll_forward_to_working_day: bool = False
    overdue_interview_after_months: PositiveInt = 2  # 000: overdue > 2 months → 约谈
    min_participation_years: PositiveInt = 1  # 001, 002: 不少于一年
    min_drug_count: MinDrugCount = Field(default_factory=MinDrugCount)  # 002 floors; 001 committed count
    recommended_share_min: Share | None = None  # 002: ≥ 60 % from the recommended list
    has_recommended_list: bool = False  # 002: 《“三进”推荐配备药品品种》
    markup: MarkupRules = Field(default_factory=lambda: MarkupRules(pharmacy_max=Decimal(0)))  # 000-002
    online_price_equals_offline: bool = False  # 002: online price = offline price
    coverage_targets: list[CoverageTarget] = Field(default_factory=list)  # 002: 80 % 2025, 90 % 2026
    quarterly_report_due: Literal["first_month_of_quarter"] | None = None  # 001: 每季度第一个月
    enterprise_exit_allowed: bool = True  # 001: 协议期满可申请退出
    contract_period: Literal["annual"] = "annual"  # 000, 003: 每年一签
    # 003: agreed volume = share of the base by number of winners; next year ≥ first year. null: not used
    # (agreed volumes are the institutions' own selections).
    agreed_volume_share_by_winners: dict[PositiveInt, Annotated[Decimal, Field(gt=0, le=1)]] | None = Field(
        default_factory=_default_agreed_volume
    )
    price_report_working_days: PositiveInt = 20  # 004: report a new national lowest price in 20 wd
    bad_record_ban_years: PositiveInt = 2  # 004: 不良记录 → barred for two years
    rectification_working_days: PositiveInt = 10  # assumed: 限期整改 (000 names no period)
    suspension_working_days: PositiveInt = 20  # assumed: suspended this long, still not cured → disqualification gate
    account_reminder_working_days_before_close: PositiveInt = 5  # assumed (no seed gives one)
    contract_reminder_working_days_before_close: PositiveInt = 5  # assumed (no seed gives one)
    special_drugs_need_designation: bool = False  # 000: special drugs only for 特药定点 institutions
    # assumed (no seed gives one): days after an institution's batch starts running before its drug count and
    # recommended share (002) are checked — it needs time to select and buy.
    selection_grace_days: NonNegativeInt = 30
    no_sales_close_months: PositiveInt = 12  # 004 §二(三) 挂网产品一年无销售的…关闭采购状态
    price_alerts: PriceAlertBands = Field(default_factory=PriceAlertBands)  # 004 §二(四)2; bands assumed
    enterprise_admission: Literal["window", "rolling"] = "window"  # 002: 即申即纳 = rolling

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.recommended_share_min is not None and not self.has_recommended_list:
            problems.append(
                (
                    ("recommended_share_min",),
                    "is set but has_recommended_list is false: there is no list to share",
                )
            )
        previous: CoverageTarget | None = None
        for i, target in enumerate(self.coverage_targets):
            if previous is not None:
                if target.by <= previous.by:
                    problems.append(
                        (("coverage_targets", i, "by"), "targets must be in strictly increasing date order")
                    )
                elif target.share < previous.share:
                    problems.append((("coverage_targets", i, "share"), "a later target cannot ask for less coverage"))
            previous = target
        if problems:
            raise RuleViolations(problems)
        return self


