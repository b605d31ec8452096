"""The enforcement ladder as pure rules: no database, no Prefect."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from models.clock import SHANGHAI
from models.compliance.codes import SubjectType
from models.enforcement import (
    ENTERPRISE_LADDER,
    FINAL,
    GATE_STEP,
    INSTITUTION_LADDER,
    LADDER_LABELS,
    LadderState,
    decider_of,
    last_barred_day,
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
    assert set(GATE_STEP) == {S.PROPOSED, S.INTERVIEWED, S.SUSPENSION_DUE, S.DISQUALIFICATION_DUE}


def test_a_two_year_bar_ends_the_day_before_its_anniversary() -> None:
    assert last_barred_day(date(2023, 8, 20), 2) == date(2025, 8, 19)
    assert last_barred_day(date(2024, 2, 29), 2) == date(2026, 2, 28)
