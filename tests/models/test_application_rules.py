from __future__ import annotations

from decimal import Decimal

import pytest

from models.application_rules import (
    PriceOption,
    Reapplication,
    can_be_proxy_procured,
    check_code_matches_kind,
    check_drug_count,
    check_participation_years,
    check_price_option,
    check_private_tertiary,
    check_proxy_parent,
    min_drug_count,
    parse_kind,
    parse_positive_int,
    parse_price_option,
    parse_yes_no,
    reapplication,
)
from models.program_definition import MarkupRules, MinDrugCount, Rules
from models.states import ApplicationState, InstitutionKind
from models.validators import FieldError

K = InstitutionKind
JIANGXI = Rules(
    min_drug_count=MinDrugCount(private_tertiary=80, private_other=50, pharmacy=50, use_committed_count=True),
    markup=MarkupRules(pharmacy_max=Decimal(0), pharmacy_max_with_index=Decimal("0.15")),
    min_participation_years=1,
)
NINGXIA = Rules(min_drug_count=MinDrugCount(use_committed_count=True), markup=MarkupRules(pharmacy_max=Decimal(0)))


def rule_of(call) -> str:
    with pytest.raises(FieldError) as caught:
        call()
    assert " / " in caught.value.message  # Chinese first, then English
    return caught.value.rule


@pytest.mark.parametrize(
    ("kind", "tertiary", "floor"),
    [
        (K.PRIVATE_HOSPITAL, True, 80),
        (K.PRIVATE_HOSPITAL, False, 50),
        (K.PRIVATE_CLINIC, False, 50),
        (K.CHAIN_PHARMACY, False, 50),
        (K.SINGLE_PHARMACY, False, 50),
        (K.VILLAGE_CLINIC, False, None),
        (K.TOWNSHIP_HEALTH_CENTER, False, None),
    ],
)
def test_minimum_drug_count_by_kind(kind, tertiary, floor):
    assert min_drug_count(JIANGXI, kind, tertiary) == floor
    assert min_drug_count(NINGXIA, kind, tertiary) is None


def test_drug_count_below_the_floor_is_refused_and_the_floor_itself_accepted():
    check_drug_count(80, K.PRIVATE_HOSPITAL, True, JIANGXI)
    check_drug_count(50, K.CHAIN_PHARMACY, False, JIANGXI)
    assert rule_of(lambda: check_drug_count(79, K.PRIVATE_HOSPITAL, True, JIANGXI)) == "drug_count.below_minimum"
    assert rule_of(lambda: check_drug_count(49, K.SINGLE_PHARMACY, False, JIANGXI)) == "drug_count.below_minimum"


def test_committed_count_programs_without_floors_accept_any_positive_count():
    check_drug_count(1, K.CHAIN_PHARMACY, False, NINGXIA)
    check_drug_count(1, K.VILLAGE_CLINIC, False, JIANGXI)  # public grassroots: no floor anywhere
    assert rule_of(lambda: check_drug_count(0, K.VILLAGE_CLINIC, False, NINGXIA)) == "drug_count.not_positive"


def test_floor_message_names_the_floor():
    with pytest.raises(FieldError) as caught:
        check_drug_count(30, K.SINGLE_PHARMACY, False, JIANGXI)
    assert "不得少于50种" in caught.value.message and "at least 50" in caught.value.message


def test_markup_only_for_pharmacies_and_only_with_an_index_cap():
    check_price_option(PriceOption.MARKUP_15, K.CHAIN_PHARMACY, JIANGXI.markup)
    check_price_option(PriceOption.AT_WINNING_PRICE, K.VILLAGE_CLINIC, NINGXIA.markup)
    assert rule_of(lambda: check_price_option(PriceOption.MARKUP_15, K.CHAIN_PHARMACY, NINGXIA.markup)) == (
        "price_option.markup_not_allowed")
    assert rule_of(lambda: check_price_option(PriceOption.MARKUP_15, K.PRIVATE_CLINIC, JIANGXI.markup)) == (
        "price_option.markup_not_pharmacy")
    assert rule_of(lambda: check_price_option(PriceOption.MARKUP_15, K.COMMUNITY_HEALTH_CENTER, JIANGXI.markup)) == (
        "price_option.markup_not_pharmacy")


def test_participation_years():
    check_participation_years(1, JIANGXI)
    strict = Rules(min_participation_years=2, markup=MarkupRules(pharmacy_max=Decimal(0)))
    assert rule_of(lambda: check_participation_years(1, strict)) == "participation.too_short"


def test_private_tertiary_only_for_private_medical_institutions():
    check_private_tertiary(K.PRIVATE_HOSPITAL, True)
    check_private_tertiary(K.CHAIN_PHARMACY, False)
    assert rule_of(lambda: check_private_tertiary(K.CHAIN_PHARMACY, True)) == "private_tertiary.not_private"


def test_insurance_code_letter_matches_the_kind():
    check_code_matches_kind("P21010200001", K.CHAIN_PHARMACY)
    check_code_matches_kind("H21010200001", K.VILLAGE_CLINIC)
    assert rule_of(lambda: check_code_matches_kind("H21010200001", K.SINGLE_PHARMACY)) == (
        "institution_code.kind_mismatch")
    assert rule_of(lambda: check_code_matches_kind("P21010200001", K.PRIVATE_CLINIC)) == (
        "institution_code.kind_mismatch")


@pytest.mark.parametrize("kind", list(K))
def test_only_public_grassroots_kinds_can_be_proxy_procured(kind):
    public = kind in (K.TOWNSHIP_HEALTH_CENTER, K.COMMUNITY_HEALTH_CENTER, K.COMMUNITY_HEALTH_STATION, K.VILLAGE_CLINIC)
    assert can_be_proxy_procured(kind) is public


def test_proxy_parent_rules():
    check_proxy_parent(K.VILLAGE_CLINIC, K.TOWNSHIP_HEALTH_CENTER, False)
    check_proxy_parent(K.COMMUNITY_HEALTH_STATION, K.COMMUNITY_HEALTH_CENTER, False)
    assert rule_of(lambda: check_proxy_parent(K.PRIVATE_CLINIC, K.TOWNSHIP_HEALTH_CENTER, False)) == (
        "proxy.kind_not_allowed")
    assert rule_of(lambda: check_proxy_parent(K.VILLAGE_CLINIC, K.CHAIN_PHARMACY, False)) == "proxy.parent_not_public"
    assert rule_of(lambda: check_proxy_parent(K.VILLAGE_CLINIC, K.PRIVATE_HOSPITAL, False)) == (
        "proxy.parent_not_public")
    assert rule_of(lambda: check_proxy_parent(K.VILLAGE_CLINIC, K.TOWNSHIP_HEALTH_CENTER, True)) == (
        "proxy.parent_is_proxied")
    assert rule_of(lambda: check_proxy_parent(K.VILLAGE_CLINIC, K.VILLAGE_CLINIC, False, same_institution=True)) == (
        "proxy.self")


@pytest.mark.parametrize(
    ("latest", "decision"),
    [
        (None, Reapplication.NEW),
        (ApplicationState.REJECTED, Reapplication.NEW),
        (ApplicationState.WITHDRAWN, Reapplication.NEW),
        (ApplicationState.EXITED, Reapplication.NEW),
        (ApplicationState.SUBMITTED, Reapplication.SKIP),
        (ApplicationState.DISTRICT_APPROVED, Reapplication.SKIP),
        (ApplicationState.APPROVED, Reapplication.SKIP),
        (ApplicationState.RUNNING, Reapplication.SKIP),
        (ApplicationState.SUSPENDED, Reapplication.SKIP),
        (ApplicationState.DISQUALIFIED, Reapplication.REFUSE),
    ],
)
def test_reapplication(latest, decision):
    assert reapplication(latest) is decision


@pytest.mark.parametrize(
    ("text", "value"),
    [("是", True), ("否", False), (" 是 ", True), ("TRUE", True), ("false", False), ("1", True), ("0", False),
     ("Y", True), ("n", False)],
)
def test_yes_no(text, value):
    assert parse_yes_no(text, "特药定点") is value


def test_yes_no_blank_and_invalid():
    assert parse_yes_no("", "民营三级", default=False) is False
    assert rule_of(lambda: parse_yes_no("", "特药定点")) == "yes_no.empty"
    assert rule_of(lambda: parse_yes_no("可能", "特药定点")) == "yes_no.invalid"


@pytest.mark.parametrize(("text", "value"), [("60", 60), ("60.0", 60), ("80种", 80), ("1年", 1), ("５０", 50)])
def test_positive_int(text, value):
    assert parse_positive_int(text, "承诺配备药品数量") == value


@pytest.mark.parametrize(("text", "rule"), [("", "int.empty"), ("五十", "int.invalid"), ("12.5", "int.invalid"),
                                            ("-3", "int.invalid"), ("0", "int.not_positive")])
def test_positive_int_errors(text, rule):
    assert rule_of(lambda: parse_positive_int(text, "承诺配备药品数量")) == rule


@pytest.mark.parametrize(
    ("text", "kind"),
    [("村卫生室", K.VILLAGE_CLINIC), ("连锁药店", K.CHAIN_PHARMACY), ("社区卫生服务站", K.COMMUNITY_HEALTH_STATION),
     ("民营诊所", K.PRIVATE_CLINIC), (" 乡镇卫生院 ", K.TOWNSHIP_HEALTH_CENTER), ("single_pharmacy", K.SINGLE_PHARMACY)],
)
def test_kind_labels(text, kind):
    assert parse_kind(text) is kind


def test_unknown_kind_lists_the_labels():
    with pytest.raises(FieldError) as caught:
        parse_kind("卫生所")
    assert caught.value.rule == "kind.unknown" and "村卫生室" in caught.value.message


@pytest.mark.parametrize(
    ("text", "option"),
    [("按中选价", PriceOption.AT_WINNING_PRICE), ("按照中选价销售", PriceOption.AT_WINNING_PRICE),
     ("加价不超过15%", PriceOption.MARKUP_15), ("加价不超过15％", PriceOption.MARKUP_15),
     ("按不高于中选价加价15%销售", PriceOption.MARKUP_15)],
)
def test_price_options(text, option):
    assert parse_price_option(text) is option


def test_unknown_price_option():
    assert rule_of(lambda: parse_price_option("随意定价")) == "price_option.unknown"


def test_markup_promise_above_a_lower_program_cap():
    tighter = MarkupRules(pharmacy_max=Decimal(0), pharmacy_max_with_index=Decimal("0.10"))
    with pytest.raises(FieldError) as caught:
        check_price_option(PriceOption.MARKUP_15, K.CHAIN_PHARMACY, tighter)
    assert caught.value.rule == "price_option.markup_above_cap" and "10%" in caught.value.message
