from decimal import Decimal

import pytest

from models.compliance.pricing import (
    markup_share,
    online_price_differs,
    price_cap,
    sale_price_breaks_rule,
)
from models.program_definition import MarkupRules
from models.states import InstitutionCategory

PUBLIC, PRIVATE, PHARMACY = (InstitutionCategory.PUBLIC_GRASSROOTS, InstitutionCategory.PRIVATE_MEDICAL,
                             InstitutionCategory.RETAIL_PHARMACY)
JIANGXI = MarkupRules(public_max=Decimal(0), private_max=Decimal(0), pharmacy_max=Decimal(0),
                      pharmacy_max_with_index=Decimal("0.15"))
NO_INDEX_CAP = MarkupRules(public_max=Decimal(0), private_max=Decimal(0), pharmacy_max=Decimal(0))
WIN = Decimal("100.00")


def test_pharmacy_markup_of_15_00_percent_with_the_index_condition_is_allowed() -> None:
    assert not sale_price_breaks_rule(PHARMACY, WIN, Decimal("115.00"), JIANGXI, index_ok=True)
    assert markup_share(WIN, Decimal("115.00")) == Decimal("0.15")


def test_pharmacy_markup_of_15_01_percent_with_the_index_condition_is_a_violation() -> None:
    assert sale_price_breaks_rule(PHARMACY, WIN, Decimal("115.01"), JIANGXI, index_ok=True)


def test_pharmacy_markup_without_the_index_condition_is_a_violation() -> None:
    assert sale_price_breaks_rule(PHARMACY, WIN, Decimal("115.00"), JIANGXI, index_ok=False)
    assert sale_price_breaks_rule(PHARMACY, WIN, Decimal("100.01"), JIANGXI, index_ok=False)
    assert not sale_price_breaks_rule(PHARMACY, WIN, Decimal("100.00"), JIANGXI, index_ok=False)


def test_pharmacy_markup_where_the_program_sets_no_index_cap_is_a_violation_even_with_the_index() -> None:
    assert sale_price_breaks_rule(PHARMACY, WIN, Decimal("115.00"), NO_INDEX_CAP, index_ok=True)


def test_the_cap_is_exact_not_rounded_to_cents() -> None:
    assert price_cap(PHARMACY, Decimal("9.99"), JIANGXI, index_ok=True) == Decimal("11.4885")
    assert not sale_price_breaks_rule(PHARMACY, Decimal("9.99"), Decimal("11.48"), JIANGXI, index_ok=True)
    assert sale_price_breaks_rule(PHARMACY, Decimal("9.99"), Decimal("11.49"), JIANGXI, index_ok=True)


def test_public_institution_must_sell_at_the_winning_price_zero_markup() -> None:
    assert not sale_price_breaks_rule(PUBLIC, WIN, WIN, JIANGXI, index_ok=True)
    assert sale_price_breaks_rule(PUBLIC, WIN, Decimal("100.01"), JIANGXI, index_ok=True)
    assert sale_price_breaks_rule(PUBLIC, WIN, Decimal("99.99"), JIANGXI, index_ok=True)


@pytest.mark.parametrize("index_ok", [True, False])
def test_private_medical_institution_may_sell_at_or_below_but_not_above_the_winning_price(index_ok: bool) -> None:
    assert not sale_price_breaks_rule(PRIVATE, WIN, Decimal("99.00"), JIANGXI, index_ok)
    assert not sale_price_breaks_rule(PRIVATE, WIN, WIN, JIANGXI, index_ok)
    assert sale_price_breaks_rule(PRIVATE, WIN, Decimal("100.01"), JIANGXI, index_ok)


def test_online_price_different_from_offline_is_a_violation_where_the_program_requires_equality() -> None:
    assert online_price_differs(Decimal("10.00"), Decimal("10.01"), rule_applies=True)
    assert not online_price_differs(Decimal("10.00"), Decimal("10.00"), rule_applies=True)
    assert not online_price_differs(Decimal("10.00"), None, rule_applies=True)
    assert not online_price_differs(Decimal("10.00"), Decimal("10.01"), rule_applies=False)
