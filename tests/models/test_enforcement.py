"""The enforcement ladder as pure rules: no database, no Prefect."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from models.clock import SHANGHAI
from models.compliance.codes import RULE_SEEDS, SubjectType, ViolationRule
from models.enforcement import (
    ENTERPRISE_LADDER,
    FINAL,
    GATE_STEP,
    INSTITUTION_LADDER,
    LADDER_LABELS,
    LADDER_PLANS,
    NO_LADDER,
    SIGN_LADDER,
    LadderState,
    Track,
    decider_of,
    ladder_for,
    last_barred_day,
    plan_for,
    seeds_of,
    track_of,
)
from models.states import EnforcementKind, Role
from models.transitions import InvalidTransition

AT = datetime(2026, 2, 2, 9, tzinfo=SHANGHAI)
S = LadderState


def _walk(machine, actions: list[str]) -> LadderState:  # type: ignore[no-untyped-def]
    state = S.PROPOSED
    for action in actions:
        state = machine.next_state(1, state, action)
    return state


def test_an_institution_climbs_interview_rectification_suspension_disqualification() -> None:
    steps = ["approve", "approve", "deadline_passed", "approve", "deadline_passed", "approve"]
    assert _walk(INSTITUTION_LADDER, steps) == S.DISQUALIFIED


def test_an_enterprise_has_no_suspension_rung() -> None:
    assert _walk(ENTERPRISE_LADDER, ["approve", "approve", "deadline_passed"]) == S.DISQUALIFICATION_DUE
    assert ENTERPRISE_LADDER.table.get((S.SUSPENSION_DUE, "approve")) is None


def test_a_cure_ends_the_ladder_on_every_rung_but_a_final_one_never_moves() -> None:
    for state in S:
        if state in FINAL:
            with pytest.raises(InvalidTransition):
                INSTITUTION_LADDER.apply(1, state, "cure", actor="system", role=Role.SYSTEM, at=AT)
        else:
            assert INSTITUTION_LADDER.next_state(1, state, "cure") == S.CURED


def test_a_deadline_cannot_pass_on_a_rung_that_waits_for_a_person_and_the_state_is_unchanged() -> None:
    state = S.PROPOSED
    with pytest.raises(InvalidTransition):
        state = INSTITUTION_LADDER.apply(1, state, "deadline_passed", actor="system", role=Role.SYSTEM, at=AT)[0]
    assert state == S.PROPOSED


def test_the_district_decides_interview_and_rectification_where_the_chain_has_a_district_level() -> None:
    inst = SubjectType.INSTITUTION
    assert decider_of(EnforcementKind.INTERVIEW, inst, ["district", "city"]) == Role.DISTRICT_REVIEWER
    assert decider_of(EnforcementKind.RECTIFICATION, inst, ["district"]) == Role.DISTRICT_REVIEWER
    assert decider_of(EnforcementKind.SUSPENSION, inst, ["district", "city"]) == Role.PROGRAM_MANAGER
    assert decider_of(EnforcementKind.INTERVIEW, inst, ["city"]) == Role.PROGRAM_MANAGER
    assert decider_of(EnforcementKind.INTERVIEW, SubjectType.ENTERPRISE, ["district"]) == Role.PROGRAM_MANAGER


def test_every_ladder_state_has_a_chinese_label_and_every_gate_state_a_rung() -> None:
    assert set(LADDER_LABELS) == set(S)
    assert set(GATE_STEP) == {S.PROPOSED, S.INTERVIEWED, S.SUSPENSION_DUE, S.DISQUALIFICATION_DUE,
                              S.SIGN_REMOVAL_DUE}


def test_a_two_year_bar_ends_the_day_before_its_anniversary() -> None:
    assert last_barred_day(date(2023, 8, 20), 2) == date(2025, 8, 19)
    assert last_barred_day(date(2024, 2, 29), 2) == date(2026, 2, 28)


def test_every_rule_either_opens_a_ladder_citing_its_seed_or_says_why_not() -> None:
    assert set(LADDER_PLANS) | set(NO_LADDER) == set(ViolationRule)
    assert not set(LADDER_PLANS) & set(NO_LADDER)
    for rule, plans in LADDER_PLANS.items():
        for plan in plans:
            assert plan.seed in RULE_SEEDS[rule], rule  # it quotes one of the rule's own seeds
            assert plan.first in GATE_STEP  # a ladder starts at a rung a person decides


SHENYANG, NINGXIA, JIANGXI = ("000", "003", "004"), ("001", "003", "004"), ("002", "003", "004")


def test_the_seeds_first_rungs_and_where_each_rule_leads_in_each_program() -> None:
    def step(rule: ViolationRule, seeds: tuple[str, ...]) -> EnforcementKind | None:
        plan = plan_for(rule, seeds)
        return GATE_STEP[plan.first] if plan is not None else None

    assert step(ViolationRule.OVERDUE_INTERVIEW, SHENYANG) == EnforcementKind.INTERVIEW  # 000: 超过2个月……进行约谈
    assert step(ViolationRule.DELIVERY_PATTERN, NINGXIA) == EnforcementKind.INTERVIEW  # 001: 约谈后拒不整改的……取消
    assert step(ViolationRule.LATE_PRICE_REPORT, JIANGXI) == EnforcementKind.DISQUALIFICATION  # 004: 取消挂网资格
    # One rule, three programs: 001 removes the sign, 002 suspends, 000 prescribes nothing.
    assert track_of(ViolationRule.TOO_FEW_DRUGS, SubjectType.INSTITUTION, NINGXIA) == Track.SIGN
    assert track_of(ViolationRule.TOO_FEW_DRUGS, SubjectType.INSTITUTION, JIANGXI) == Track.SETTLEMENT
    assert plan_for(ViolationRule.TOO_FEW_DRUGS, SHENYANG) is None
    assert plan_for(ViolationRule.SALE_PRICE, SHENYANG) is None and plan_for(ViolationRule.OVERDUE_INTERVIEW, JIANGXI) is None
    assert plan_for(ViolationRule.SUPPLY_ABOVE_WINNING_PRICE, SHENYANG) is None
    assert all(p.subject == SubjectType.ENTERPRISE for ps in LADDER_PLANS.values() for p in ps
               if p.track == Track.ENTERPRISE)
    assert seeds_of(["001_2bf7bc81c00a77da.txt", "003_f330921f16556343.txt"]) == ("001", "003")


def test_sign_removal_is_its_own_rung_not_a_disqualification_and_a_cure_gives_the_sign_back() -> None:
    assert _walk(SIGN_LADDER, ["approve", "approve", "deadline_passed"]) == S.SIGN_REMOVAL_DUE
    assert _walk(SIGN_LADDER, ["approve", "approve", "deadline_passed", "approve"]) == S.SIGN_REMOVED
    assert SIGN_LADDER.table.get((S.SIGN_REMOVED, "deadline_passed")) is None  # no rung above it
    assert SIGN_LADDER.table.get((S.SIGN_REMOVAL_DUE, "approve")) != S.DISQUALIFIED
    assert SIGN_LADDER.next_state(1, S.SIGN_REMOVED, "cure") == S.CURED
    assert ladder_for(SubjectType.INSTITUTION, ViolationRule.TOO_FEW_DRUGS, NINGXIA) is SIGN_LADDER
    assert ladder_for(SubjectType.INSTITUTION, ViolationRule.SPECIAL_DRUG, NINGXIA) is INSTITUTION_LADDER  # by hand
