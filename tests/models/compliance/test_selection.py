from decimal import Decimal

import pytest

from models.compliance.selection import (
    drug_count_floor,
    recommended_share_too_low,
    required_drug_count,
    special_drug_not_allowed,
    too_few_drugs,
)
from models.program_definition import MinDrugCount
from models.states import InstitutionCategory

PUBLIC, PRIVATE, PHARMACY = (InstitutionCategory.PUBLIC_GRASSROOTS, InstitutionCategory.PRIVATE_MEDICAL,
                             InstitutionCategory.RETAIL_PHARMACY)
JIANGXI = MinDrugCount(private_tertiary=80, private_other=50, pharmacy=50)
NINGXIA = MinDrugCount(use_committed_count=True)


def test_private_tertiary_hospital_with_79_drugs_is_a_violation_and_with_80_is_not() -> None:
    required = required_drug_count(PRIVATE, True, None, JIANGXI)
    assert required == 80
    assert too_few_drugs(79, required)
    assert not too_few_drugs(80, required)


def test_other_private_institutions_and_pharmacies_need_50() -> None:
    assert drug_count_floor(PRIVATE, False, JIANGXI) == 50
    assert drug_count_floor(PHARMACY, False, JIANGXI) == 50
    assert too_few_drugs(49, required_drug_count(PHARMACY, False, None, JIANGXI))
    assert not too_few_drugs(50, required_drug_count(PHARMACY, False, None, JIANGXI))


def test_public_institutions_have_no_floor_in_jiangxi() -> None:
    assert required_drug_count(PUBLIC, False, 30, JIANGXI) is None
    assert not too_few_drugs(0, None)


def test_an_institution_below_its_own_committed_count_is_a_violation_where_the_program_enforces_it() -> None:
    assert required_drug_count(PHARMACY, False, 30, NINGXIA) == 30
    assert too_few_drugs(29, required_drug_count(PHARMACY, False, 30, NINGXIA))
    assert not too_few_drugs(30, required_drug_count(PHARMACY, False, 30, NINGXIA))
    # Jiangxi does not enforce the commitment: only its floor.
    assert required_drug_count(PHARMACY, False, 70, JIANGXI) == 50


def test_the_floor_applies_when_the_commitment_is_lower() -> None:
    both = MinDrugCount(pharmacy=50, use_committed_count=True)
    assert required_drug_count(PHARMACY, False, 40, both) == 50
    assert required_drug_count(PHARMACY, False, 60, both) == 60


def test_recommended_share_of_59_9_percent_is_a_violation_and_60_percent_is_not() -> None:
    assert recommended_share_too_low(599, 1000, Decimal("0.60"))
    assert not recommended_share_too_low(600, 1000, Decimal("0.60"))
    assert not recommended_share_too_low(30, 50, Decimal("0.60"))
    assert recommended_share_too_low(29, 50, Decimal("0.60"))


def test_no_recommended_share_rule_without_a_recommended_list() -> None:
    assert not recommended_share_too_low(0, 50, None)
    assert not recommended_share_too_low(0, 0, Decimal("0.60"))


@pytest.mark.parametrize(("special", "designated", "applies", "expected"), [
    (True, False, True, True),
    (True, True, True, False),
    (False, False, True, False),
    (True, False, False, False),
])
def test_special_drugs_only_for_special_designated_institutions(
    special: bool, designated: bool, applies: bool, expected: bool
) -> None:
    assert special_drug_not_allowed(special, designated, rule_applies=applies) is expected
