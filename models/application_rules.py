"""The checks an institution's application (申请表 + 承诺书) must pass, as pure functions.

They take plain values and a program's :class:`Rules`, and raise :class:`FieldError` whose
``field`` is the form's Chinese column name, so an importer, a web form and a reviewer's screen
all report the same rule id and the same bilingual message. No I/O here: whoever calls them has
already looked up the proxy parent or the previous application.

Seeds: 000 Shenyang (代采 §三(四), §四(一)), 001 Ningxia (att.1 application, att.2 commitment),
002 Jiangxi (floors §五, 15 % markup §七, att.1 price options).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from enum import StrEnum

from models.program_definition import MarkupRules, Rules
from models.states import (
    KIND_LABELS,
    ApplicationState,
    InstitutionCategory,
    InstitutionKind,
    category_of,
)
from models.validators import field_error

__all__ = [
    "ACTIVE_APPLICATION_STATES",
    "MAX_COUNT",
    "PRICE_OPTION_LABELS",
    "PROXY_PROCURABLE_KINDS",
    "PriceOption",
    "Reapplication",
    "can_be_proxy_procured",
    "check_code_matches_kind",
    "check_drug_count",
    "check_participation_years",
    "check_price_option",
    "check_private_tertiary",
    "check_proxy_parent",
    "min_drug_count",
    "parse_kind",
    "parse_positive_int",
    "parse_price_option",
    "parse_yes_no",
    "reapplication",
]




def _clean(value: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))


# ---------------------------------------------------------------- parsing form values

_YES = frozenset({"是", "y", "yes", "true", "1", "√", "✓", "有"})
_NO = frozenset({"否", "n", "no", "false", "0", "×", "无", "不是"})


def parse_yes_no(value: str, field: str, *, default: bool | None = None) -> bool:
    """是/否 cells; Excel may also hand back TRUE/FALSE or 1/0. Blank is ``default`` if one is given."""
    text = _clean(value).lower()
    if not text:
        if default is not None:
            return default
        raise field_error(field, value, "yes_no.empty", f"{field}不能为空，请填“是”或“否”", f"{field} is required: 是 or 否")
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise field_error(field, value, "yes_no.invalid", f"{field}只能填“是”或“否”", "must be 是 (yes) or 否 (no)")


MAX_COUNT = 999_999_999  # nine digits: any count or volume a person writes, and within every integer column


def parse_positive_int(value: str, field: str) -> int:
    """Counts and years: whole numbers only; "50种" or "1年" are accepted because people write them."""
    text = _clean(value)
    if not text:
        raise field_error(field, value, "int.empty", f"{field}不能为空", f"{field} is required")
    match = re.fullmatch(r"(\d+)(?:\.0+)?(?:种|个|年|品种)?", text)
    if match is None:
        raise field_error(field, value, "int.invalid", f"{field}应为正整数", "must be a whole number")
    if len(match[1].lstrip("0")) > 9:  # also keeps 10^20 from the 32-bit column it would overflow (issue #18)
        raise field_error(field, value, "int.too_large", f"{field}数值过大（不能超过{MAX_COUNT}）",
                          f"is too large (at most {MAX_COUNT})")
    number = int(match[1])
    if number <= 0:
        raise field_error(field, value, "int.not_positive", f"{field}应大于0", "must be greater than zero")
    return number


_KIND_BY_TEXT: dict[str, InstitutionKind] = {
    **{label: kind for kind, label in KIND_LABELS.items()},
    **{kind.value: kind for kind in InstitutionKind},
    # Wordings found in the seeds and on real forms for the same kinds.
    "民营诊所/门诊部": InstitutionKind.PRIVATE_CLINIC,
    "民营门诊部": InstitutionKind.PRIVATE_CLINIC,
    "民营医疗机构": InstitutionKind.PRIVATE_HOSPITAL,
    "连锁药房": InstitutionKind.CHAIN_PHARMACY,
    "单体药房": InstitutionKind.SINGLE_PHARMACY,
}


def parse_kind(value: str, field: str = "机构类别") -> InstitutionKind:
    """The Chinese kind label of the form (村卫生室, 连锁药店, ...); the kind decides every other rule."""
    text = _clean(value)
    if not text:
        raise field_error(field, value, "kind.empty", f"{field}不能为空", f"{field} is required")
    kind = _KIND_BY_TEXT.get(text) or _KIND_BY_TEXT.get(text.lower())
    if kind is None:
        allowed = "、".join(KIND_LABELS.values())
        raise field_error(
            field, value, "kind.unknown", f"{field}“{text}”无效，应为：{allowed}",
            f"unknown institution kind; expected one of: {allowed}",
        )
    return kind


class PriceOption(StrEnum):
    """The sale-price promise ticked on the commitment letter (002 att.1 一(四))."""

    AT_WINNING_PRICE = "at_winning_price"  # □按照中选价销售
    MARKUP_15 = "markup_15"  # □按不高于中选价加价15%销售


_MARKUP_15 = Decimal("0.15")

PRICE_OPTION_LABELS: dict[PriceOption, str] = {
    PriceOption.AT_WINNING_PRICE: "按中选价",
    PriceOption.MARKUP_15: "加价不超过15%",
}

_PRICE_OPTION_BY_TEXT: dict[str, PriceOption] = {
    "按中选价": PriceOption.AT_WINNING_PRICE,
    "按中选价销售": PriceOption.AT_WINNING_PRICE,
    "按照中选价销售": PriceOption.AT_WINNING_PRICE,
    "不高于中选价": PriceOption.AT_WINNING_PRICE,
    "at_winning_price": PriceOption.AT_WINNING_PRICE,
    "加价不超过15%": PriceOption.MARKUP_15,
    "按不高于中选价加价15%销售": PriceOption.MARKUP_15,
    "中选价加价15%": PriceOption.MARKUP_15,
    "markup_15": PriceOption.MARKUP_15,
}


def parse_price_option(value: str, field: str = "销售价格承诺") -> PriceOption:
    """One of the two boxes of 002 att.1; the seed's own wordings are accepted as well."""
    text = _clean(value)
    if not text:
        raise field_error(field, value, "price_option.empty", f"{field}不能为空", f"{field} is required")
    option = _PRICE_OPTION_BY_TEXT.get(text) or _PRICE_OPTION_BY_TEXT.get(text.lower())
    if option is None:
        raise field_error(
            field, value, "price_option.unknown", f"{field}应为“按中选价”或“加价不超过15%”",
            "must be 按中选价 (at the winning price) or 加价不超过15% (markup up to 15 %)",
        )
    return option


# ---------------------------------------------------------------- the rules


def min_drug_count(rules: Rules, kind: InstitutionKind, private_tertiary: bool) -> int | None:
    """The least number of drugs this institution may commit to; None where the program sets no floor.

    Public grassroots institutions must take part whatever they stock (000 §二), so no floor. With
    ``use_committed_count`` the committed count itself is enforced later, but a floor, where the
    program sets one, is still the least it may commit (MinDrugCount; Jiangxi sets both).
    """
    floors = rules.min_drug_count
    category = category_of(kind)
    if category is InstitutionCategory.RETAIL_PHARMACY:
        return floors.pharmacy
    if category is InstitutionCategory.PRIVATE_MEDICAL:
        return floors.private_tertiary if private_tertiary else floors.private_other
    return None


def check_drug_count(
    count: int, kind: InstitutionKind, private_tertiary: bool, rules: Rules, field: str = "承诺配备药品数量"
) -> None:
    """The commitment "所配备的集采药品种类达 N 种及以上" must reach the program's floor (002 §五)."""
    if count <= 0:
        raise field_error(field, str(count), "drug_count.not_positive", f"{field}应大于0", "must be greater than zero")
    floor = min_drug_count(rules, kind, private_tertiary)
    if floor is not None and count < floor:
        who = "民营三级医疗机构" if private_tertiary else KIND_LABELS[kind]
        raise field_error(
            field, str(count), "drug_count.below_minimum",
            f"{who}承诺配备药品数量不得少于{floor}种，实为{count}种",
            f"a {kind.value}{' (private tertiary)' if private_tertiary else ''} must commit to at least "
            f"{floor} drugs, got {count}",
        )


def check_price_option(
    option: PriceOption, kind: InstitutionKind, markup: MarkupRules, field: str = "销售价格承诺"
) -> None:
    """The 15 % markup is a pharmacy privilege, and only where the program sets that cap (002 §七).

    Public institutions sell at zero markup and private medical ones at most at the winning price
    (000, 001, 002), so for them only "按中选价" exists.
    """
    if option is PriceOption.AT_WINNING_PRICE:
        return
    label = PRICE_OPTION_LABELS[option]
    if category_of(kind) is not InstitutionCategory.RETAIL_PHARMACY:
        raise field_error(
            field, label, "price_option.markup_not_pharmacy",
            f"只有定点零售药店可选择“{label}”，{KIND_LABELS[kind]}应按中选价销售",
            f"only retail pharmacies may mark up; a {kind.value} sells at the winning price",
        )
    cap = markup.pharmacy_max_with_index
    if cap is None:
        raise field_error(
            field, label, "price_option.markup_not_allowed",
            "本项目未设定药店加价上限，只能选择“按中选价”",
            "this program sets no pharmacy markup cap: only 按中选价 (at the winning price) is allowed",
        )
    if cap < _MARKUP_15:
        percent = f"{(cap * 100).normalize():f}%"
        raise field_error(
            field, label, "price_option.markup_above_cap",
            f"本项目药店加价上限为{percent}，不能承诺“{label}”",
            f"this program caps the pharmacy markup at {percent}, below the 15 % promised",
        )


def check_participation_years(years: int, rules: Rules, field: str = "承诺参加年限") -> None:
    """参加…的时间不少于一年 (001 att.2 五, 002 §二)."""
    least = rules.min_participation_years
    if years < least:
        raise field_error(
            field, str(years), "participation.too_short", f"{field}不得少于{least}年，实为{years}年",
            f"participation must be at least {least} year(s), got {years}",
        )


def check_private_tertiary(kind: InstitutionKind, private_tertiary: bool, field: str = "民营三级") -> None:
    """民营三级 raises the floor to 80 (002); on a public clinic or a pharmacy it is a form mistake."""
    if private_tertiary and category_of(kind) is not InstitutionCategory.PRIVATE_MEDICAL:
        raise field_error(
            field, "是", "private_tertiary.not_private",
            f"只有民营医疗机构可填“民营三级”为“是”，{KIND_LABELS[kind]}不适用",
            f"only private medical institutions can be private tertiary, not a {kind.value}",
        )


def check_code_matches_kind(code: str, kind: InstitutionKind, field: str = "机构医保编码") -> None:
    """Insurance codes start with P for pharmacies and H for medical institutions (SPEC identifiers).

    A mismatch means either the code or the kind is wrong, and the kind decides the price rules.
    """
    is_pharmacy = category_of(kind) is InstitutionCategory.RETAIL_PHARMACY
    expected = "P" if is_pharmacy else "H"
    if code[:1].upper() != expected:
        raise field_error(
            field, code, "institution_code.kind_mismatch",
            f"{KIND_LABELS[kind]}的{field}应以{expected}开头",
            f"a {kind.value} has an insurance code starting with {expected}",
        )


PROXY_PROCURABLE_KINDS: frozenset[InstitutionKind] = frozenset(
    {
        InstitutionKind.TOWNSHIP_HEALTH_CENTER,
        InstitutionKind.COMMUNITY_HEALTH_CENTER,
        InstitutionKind.COMMUNITY_HEALTH_STATION,
        InstitutionKind.VILLAGE_CLINIC,
    }
)


def can_be_proxy_procured(kind: InstitutionKind) -> bool:
    """代采 is for 乡镇卫生院、社区卫生服务中心/站、村卫生室 only (000 §三(四)); private ones buy themselves."""
    return kind in PROXY_PROCURABLE_KINDS


def check_proxy_parent(
    kind: InstitutionKind,
    parent_kind: InstitutionKind,
    parent_is_proxied: bool,
    *,
    same_institution: bool = False,
    field: str = "代采上级机构医保编码",
    parent_code: str = "",
) -> None:
    """A proxy-procured institution needs a public upper institution that buys for itself.

    The upper institution registers the account, signs the contracts and settles (000 §四(一)-(三));
    a parent that is itself proxy-procured has no account to buy with, so chains are refused.
    """
    if same_institution:
        raise field_error(
            field, parent_code, "proxy.self", "代采上级机构不能是本机构", "an institution cannot proxy-procure for itself"
        )
    if not can_be_proxy_procured(kind):
        raise field_error(
            field, parent_code, "proxy.kind_not_allowed",
            f"{KIND_LABELS[kind]}不能由上级机构代采，只有乡镇卫生院、社区卫生服务中心/站、村卫生室可以",
            f"a {kind.value} cannot be proxy-procured; only public grassroots institutions can",
        )
    if category_of(parent_kind) is not InstitutionCategory.PUBLIC_GRASSROOTS:
        raise field_error(
            field, parent_code, "proxy.parent_not_public",
            f"代采上级机构应为公立基层医疗机构，该机构为{KIND_LABELS[parent_kind]}",
            f"the proxy parent must be a public grassroots institution, not a {parent_kind.value}",
        )
    if parent_is_proxied:
        raise field_error(
            field, parent_code, "proxy.parent_is_proxied",
            "代采上级机构本身也由其他机构代采，不能再为下级代采",
            "the proxy parent is itself proxy-procured and cannot buy for others",
        )


class Reapplication(StrEnum):
    """What an application file does with an institution that already applied to the program."""

    NEW = "new"  # first application, or a new attempt after rejection/withdrawal/exit
    SKIP = "skip"  # already applied or taking part: the row is reported, not an error
    REFUSE = "refuse"  # disqualified: re-entry is the bureau's decision, not an upload's


ACTIVE_APPLICATION_STATES: frozenset[ApplicationState] = frozenset(
    {
        ApplicationState.SUBMITTED,
        ApplicationState.DISTRICT_APPROVED,
        ApplicationState.APPROVED,
        ApplicationState.RUNNING,
        ApplicationState.SUSPENDED,
    }
)


def reapplication(latest: ApplicationState | None) -> Reapplication:
    """Districts resend their whole list each round; rows already in the program must not fail the file.

    A rejected institution may apply again into a later batch (000 "成熟一批"); one that exited
    after its year may come back; a disqualified one may not re-enter through an upload.
    """
    if latest is None or latest in (ApplicationState.REJECTED, ApplicationState.WITHDRAWN, ApplicationState.EXITED):
        return Reapplication.NEW
    if latest is ApplicationState.DISQUALIFIED:
        return Reapplication.REFUSE
    return Reapplication.SKIP
