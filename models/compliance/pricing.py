"""Sale prices by kind of institution, and online prices equal to offline ones.

Seed 000 §三(五): "公立基层医疗机构严格执行药品“零”差价政策，按集采中选价格销售中选药品".
Seed 002 §七: "公立医疗机构应严格落实药品“零差率”销售政策，定点民营医疗机构销售中选药品价格不得高于中选价格，鼓励医保定点
零售药店按不高于中选价格销售中选药品；总体价格水平不高于统筹区定点药店医保药品量价比较指数的药店，可按集采中选价格顺加不超
15%销售。" and "线上销售价格应与线下销售价格一致".
Seed 001 §三(二) says the same for private institutions and pharmacies ("也可适当加价，具体由各市…确定").

Parameters: `rules.markup.public_max` (0: at the winning price), `.private_max` (0), `.pharmacy_max` (0),
`.pharmacy_max_with_index` (Jiangxi 0.15; None where the program sets no such cap) and
`rules.online_price_equals_offline`. The index condition (量价比较指数) is an attribute of the pharmacy
(`institution.price_index_ok`), imported from the platform.

The price in force is the institution's latest price of the product by execution date. Markup 15.00 % is allowed
under the index cap, 15.01 % is not; the comparison is exact (`sale ≤ winning × (1 + cap)`, no rounding). A
public institution must sell *at* the winning price: below it is a violation too (零差率 is an equality).

Set-based pass (one statement per rule): the latest price per (institution, product) (a MAX(effective_on)
subquery joined back), joined to the product's winning price and the institution's kind and index flag; the cap
is a CASE over the category with the program's shares as bound parameters.
"""

from __future__ import annotations

from decimal import Decimal

from models.program_definition import MarkupRules
from models.states import InstitutionCategory


def markup_cap(category: InstitutionCategory, markup: MarkupRules, index_ok: bool) -> Decimal:
    """The highest markup over the winning price the institution may charge, as a share (0.15 = 15 %)."""
    if category is InstitutionCategory.PUBLIC_GRASSROOTS:
        return markup.public_max
    if category is InstitutionCategory.PRIVATE_MEDICAL:
        return markup.private_max
    if index_ok and markup.pharmacy_max_with_index is not None:
        return markup.pharmacy_max_with_index
    return markup.pharmacy_max


def price_cap(category: InstitutionCategory, winning: Decimal, markup: MarkupRules, index_ok: bool) -> Decimal:
    """The highest sale price allowed (exact, not rounded to cents)."""
    return winning * (1 + markup_cap(category, markup, index_ok))


def sale_price_breaks_rule(
    category: InstitutionCategory, winning: Decimal, sale: Decimal, markup: MarkupRules, index_ok: bool
) -> bool:
    """Above the cap for its kind, or, for a public institution, anything but the winning price (零差率)."""
    if category is InstitutionCategory.PUBLIC_GRASSROOTS and markup.public_max == 0 and sale < winning:
        return True
    return sale > price_cap(category, winning, markup, index_ok)


def markup_share(winning: Decimal, sale: Decimal) -> Decimal:
    """The markup over the winning price as a share, for the evidence (0.1501 = 15.01 %)."""
    return (sale - winning) / winning


def online_price_differs(offline: Decimal, online: Decimal | None, *, rule_applies: bool) -> bool:
    """An online price that is not the offline one, where the program requires them equal (no online = fine)."""
    return rule_applies and online is not None and online != offline
