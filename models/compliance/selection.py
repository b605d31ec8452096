"""What an institution carries: enough drugs, enough from the recommended list, special drugs only if designated.

Seed 002 §五: "原则上集采药品配备数量民营综合型三级医疗机构不少于80种、其他民营医疗机构不少于50种、零售药店不少于50种，其中
《“三进”推荐配备药品品种》药品选择占比原则上不低于60%。" (counted "按药品通用名统计").
Seed 001 att.2 二: "所配备的集采药品种类达    种及以上" (the count the institution committed to).
Seed 000 §三(三): "具有特药管理属性的集采药品，仅限参加“三进”工作的医药机构中具有特药定点属性的医药机构选择。"
Seed 001 §二(二)1: "实现一体化管理的村卫生室和社区卫生服务站，由乡镇卫生院或社区卫生服务中心统一负责集采药品的报量、采购、配送和
管理" — a proxy-procured (代采) clinic carries what its upper institution buys for it as well as its own selections, and a
selection that has ended (its enterprise left, its product was removed) is not carried from its end date on.

Parameters: `rules.min_drug_count.private_tertiary|private_other|pharmacy` (80/50/50 in Jiangxi),
`.use_committed_count` (Ningxia, Shenyang), `rules.recommended_share_min` (0.60 in Jiangxi),
`rules.special_drugs_need_designation` (Shenyang) and `rules.selection_grace_days` (assumed: time after an
institution starts running before its count and share are checked; the seeds give none).

79 drugs for a private tertiary hospital is a violation, 80 is not; a recommended share of 59.9 % is, 60 % is not
(exact: `recommended ≥ share × total`).

Set-based pass (one statement per rule): COUNT(DISTINCT product name) and COUNT(DISTINCT name) FILTER recommended
(a CASE inside the count, portable) per running institution from `selection` ⋈ `product` ⋈ the accepted
declarations' items, GROUP BY institution, compared in SQL with the floor by kind (a CASE over the kind with
bound parameters) and the application's committed count; the special-drug rule is a join of selections of
special products with non-designated institutions.
"""

from __future__ import annotations

from decimal import Decimal

from models.program_definition import MinDrugCount
from models.states import InstitutionCategory


def drug_count_floor(category: InstitutionCategory, private_tertiary: bool, floors: MinDrugCount) -> int | None:
    """The program's floor for this kind and tier (002), or None where the program sets none."""
    if category is InstitutionCategory.PRIVATE_MEDICAL:
        return floors.private_tertiary if private_tertiary else floors.private_other
    if category is InstitutionCategory.RETAIL_PHARMACY:
        return floors.pharmacy
    return None


def required_drug_count(
    category: InstitutionCategory, private_tertiary: bool, committed: int | None, floors: MinDrugCount
) -> int | None:
    """The count an institution must carry: the floor of its kind, or its own commitment if higher and enforced."""
    floor = drug_count_floor(category, private_tertiary, floors)
    own = committed if floors.use_committed_count and committed else None
    candidates = [n for n in (floor, own) if n is not None]
    return max(candidates) if candidates else None


def too_few_drugs(carried: int, required: int | None) -> bool:
    """Fewer distinct drugs (by generic name) than required."""
    return required is not None and carried < required


def recommended_share_too_low(recommended: int, total: int, share_min: Decimal | None) -> bool:
    """Less than `share_min` of the carried drugs come from the recommended list (none carried: no share to judge)."""
    if share_min is None or total == 0:
        return False
    return Decimal(recommended) < share_min * total


def special_drug_not_allowed(product_is_special: bool, institution_designated: bool, *, rule_applies: bool) -> bool:
    """A special drug (特药) carried by an institution without the special-drug designation (特药定点)."""
    return rule_applies and product_is_special and not institution_designated
