"""The transition tables: every move not in a table is refused, and the seeds' order of review holds.

No database and no Prefect: a machine is a table and a pure `apply` (STYLE "Rules and state").
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.clock import SHANGHAI
from models.states import ApplicationState, BatchState, Role
from models.transitions import (
    ACCOUNT,
    ALL_MACHINES,
    APPLICATION,
    APPLICATION_CITY_ONLY,
    APPLICATION_DISTRICT_ONLY,
    BATCH,
    CONTRACT,
    DECLARATION,
    ENFORCEMENT,
    ENTERPRISE,
    GATE,
    INVITATION,
    NOTICE,
    AuditRecord,
    InvalidTransition,
    Machine,
)

A = ApplicationState
B = BatchState
AT = datetime(2025, 9, 22, 10, 30, tzinfo=SHANGHAI)

MACHINES: dict[str, Machine[Any]] = {
    "APPLICATION": APPLICATION,
    "APPLICATION_CITY_ONLY": APPLICATION_CITY_ONLY,
    "APPLICATION_DISTRICT_ONLY": APPLICATION_DISTRICT_ONLY,
    "BATCH": BATCH,
    "DECLARATION": DECLARATION,
    "INVITATION": INVITATION,
    "GATE": GATE,
    "ACCOUNT": ACCOUNT,
    "CONTRACT": CONTRACT,
    "ENTERPRISE": ENTERPRISE,
    "ENFORCEMENT": ENFORCEMENT,
    "NOTICE": NOTICE,
}
# Every action any machine knows, plus one nobody knows: each is tried against every state of every machine.
EVERY_ACTION = sorted({action for m in MACHINES.values() for (_, action) in m.table} | {"no_such_action"})


def states_of(machine: Machine[Any]) -> type[StrEnum]:
    enum_types = {type(state) for pair in machine.table.items() for state in (pair[0][0], pair[1])}
    assert len(enum_types) == 1, f"{machine.entity} mixes state enums: {enum_types}"
    return enum_types.pop()


def reachable(machine: Machine[Any], start: StrEnum, *, avoiding: StrEnum | None = None) -> set[StrEnum]:
    """States reachable from `start` by moves of the table, optionally never entering `avoiding`."""
    seen, queue = {start}, deque([start])
    while queue:
        state = queue.popleft()
        for (src, _action), dst in machine.table.items():
            if src == state and dst != avoiding and dst not in seen:
                seen.add(dst)
                queue.append(dst)
    return seen


@dataclass
class Entity:
    """Stands for the caller's row: `apply` must leave its state alone when it raises."""

    state: StrEnum


def apply(machine: Machine[Any], entity: Entity, action: str) -> AuditRecord:
    entity.state, record = machine.apply(42, entity.state, action, actor="reviewer0", role=Role.DISTRICT_REVIEWER,
                                         at=AT)
    return record


# --------------------------------------------------------------------------- every machine


def test_every_machine_of_the_product_is_covered_here():
    covered = {id(m) for m in MACHINES.values()}
    assert all(id(m) in covered for m in ALL_MACHINES)


@pytest.mark.parametrize("machine", MACHINES.values(), ids=MACHINES.keys())
def test_every_move_not_in_the_table_is_refused_and_changes_nothing(machine: Machine[Any]):
    refused = 0
    for state in states_of(machine):
        for action in EVERY_ACTION:
            if (state, action) in machine.table:
                continue
            entity = Entity(state)
            with pytest.raises(InvalidTransition) as info:
                apply(machine, entity, action)
            assert entity.state is state
            assert not machine.can_apply(state, action)
            err = info.value
            assert (err.entity, err.entity_id, err.state, err.action) == (machine.entity, 42, state, action)
            assert err.allowed == machine.allowed_actions(state)
            message = str(err)
            assert f"{machine.entity} 42" in message
            assert f"“{state.value}”" in message and f"“{action}”" in message
            assert f"is '{state.value}': '{action}' is not allowed" in message
            refused += 1
    assert refused == len(states_of(machine)) * len(EVERY_ACTION) - len(machine.table)


@pytest.mark.parametrize("machine", MACHINES.values(), ids=MACHINES.keys())
def test_every_move_in_the_table_lands_where_the_table_says_with_its_audit_record(machine: Machine[Any]):
    for (state, action), target in machine.table.items():
        assert machine.can_apply(state, action)
        assert action in machine.allowed_actions(state)
        entity = Entity(state)
        record = apply(machine, entity, action)
        assert entity.state is target
        assert (record.entity, record.entity_id, record.action) == (machine.entity, 42, action)
        assert (record.from_state, record.to_state) == (state.value, target.value)


# --------------------------------------------------------------------------- application: seed guards


def test_the_city_cannot_approve_before_the_district_has_approved():
    for action in ("city_approve", "city_reject"):
        entity = Entity(A.SUBMITTED)
        with pytest.raises(InvalidTransition):
            apply(APPLICATION, entity, action)
        assert entity.state is A.SUBMITTED


def test_the_city_decides_what_the_district_approved():
    entity = Entity(A.SUBMITTED)
    apply(APPLICATION, entity, "district_approve")
    after_district = entity.state
    apply(APPLICATION, entity, "city_approve")
    assert (after_district, entity.state) == (A.DISTRICT_APPROVED, A.APPROVED)


def test_a_city_only_program_approves_or_rejects_straight_from_submitted():
    assert APPLICATION_CITY_ONLY.next_state(1, A.SUBMITTED, "city_approve") is A.APPROVED
    assert APPLICATION_CITY_ONLY.next_state(1, A.SUBMITTED, "city_reject") is A.REJECTED


def test_a_city_only_program_differs_from_the_two_level_one_only_in_the_direct_city_decision():
    extra = {key: dst for key, dst in APPLICATION_CITY_ONLY.table.items() if key not in APPLICATION.table}
    assert extra == {(A.SUBMITTED, "city_approve"): A.APPROVED, (A.SUBMITTED, "city_reject"): A.REJECTED}
    assert all(APPLICATION_CITY_ONLY.table[key] is dst for key, dst in APPLICATION.table.items())
    assert APPLICATION_CITY_ONLY.entity == APPLICATION.entity


@pytest.mark.parametrize("machine", [APPLICATION, APPLICATION_CITY_ONLY], ids=["two_level", "city_only"])
@pytest.mark.parametrize("action", ["district_approve", "city_approve", "start_running", "reinstate"])
def test_a_withdrawn_application_cannot_be_approved(machine: Machine[ApplicationState], action: str):
    entity = Entity(A.WITHDRAWN)
    with pytest.raises(InvalidTransition):
        apply(machine, entity, action)
    assert entity.state is A.WITHDRAWN


@pytest.mark.parametrize("machine", [APPLICATION, APPLICATION_CITY_ONLY], ids=["two_level", "city_only"])
def test_a_rejected_application_cannot_run(machine: Machine[ApplicationState]):
    entity = Entity(A.REJECTED)
    with pytest.raises(InvalidTransition):
        apply(machine, entity, "start_running")
    assert entity.state is A.REJECTED


@pytest.mark.parametrize("machine", [APPLICATION, APPLICATION_CITY_ONLY], ids=["two_level", "city_only"])
@pytest.mark.parametrize("state", [A.REJECTED, A.WITHDRAWN, A.DISQUALIFIED, A.EXITED])
def test_a_closed_application_stays_closed_a_new_attempt_is_a_new_application(
        machine: Machine[ApplicationState], state: ApplicationState):
    assert machine.allowed_actions(state) == []


def test_only_a_fully_approved_application_starts_running():
    sources = {src for (src, action) in APPLICATION_CITY_ONLY.table if action == "start_running"}
    assert sources == {A.APPROVED}


def test_the_two_level_table_has_no_path_to_approval_around_the_district():
    assert A.APPROVED in reachable(APPLICATION, A.SUBMITTED)
    assert A.APPROVED not in reachable(APPLICATION, A.SUBMITTED, avoiding=A.DISTRICT_APPROVED)
    for after in (A.RUNNING, A.SUSPENDED, A.DISQUALIFIED, A.EXITED):
        assert after not in reachable(APPLICATION, A.SUBMITTED, avoiding=A.APPROVED)
        assert after not in reachable(APPLICATION_CITY_ONLY, A.SUBMITTED, avoiding=A.APPROVED)


def test_every_application_state_can_be_reached_from_submission():
    assert reachable(APPLICATION, A.SUBMITTED) == set(ApplicationState)


def test_a_batch_runs_only_after_it_matured_and_matures_only_after_it_was_declared():
    assert reachable(BATCH, B.OPEN) == set(BatchState)
    assert B.RUNNING not in reachable(BATCH, B.OPEN, avoiding=B.MATURED)
    assert B.MATURED not in reachable(BATCH, B.OPEN, avoiding=B.DECLARED)
    assert BATCH.allowed_actions(B.RUNNING) == []


# --------------------------------------------------------------------------- audit record


def test_a_transition_returns_its_audit_record_with_who_when_and_why():
    data = {"gate": 7}
    new, record = APPLICATION.apply(
        42, A.SUBMITTED, "district_reject", actor="reviewer0", role=Role.DISTRICT_REVIEWER, at=AT,
        reason="统一社会信用代码与营业执照不符", program_id=3, data=data,
    )
    assert new is A.REJECTED
    assert (record.from_state, record.to_state) == ("submitted", "rejected")
    assert (record.actor, record.role, record.at) == ("reviewer0", Role.DISTRICT_REVIEWER, AT)
    assert record.at.tzinfo is SHANGHAI
    assert (record.reason, record.program_id, record.data) == ("统一社会信用代码与营业执照不符", 3, {"gate": 7})
    data["gate"] = 8
    assert record.data == {"gate": 7}, "the record keeps its own copy of the data"
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.to_state = "approved"  # type: ignore[misc]


def test_a_utc_transition_time_is_kept_as_the_same_instant():
    _, record = BATCH.apply(1, B.OPEN, "declare", actor="system", role=Role.SYSTEM,
                            at=datetime(2025, 9, 19, 16, 0, tzinfo=UTC))
    assert record.at == datetime(2025, 9, 20, 0, 0, tzinfo=SHANGHAI)


def test_a_naive_transition_time_is_refused_and_changes_nothing():
    entity = Entity(A.SUBMITTED)
    with pytest.raises(ValueError, match="timezone-aware"):
        entity.state, _ = APPLICATION.apply(42, A.SUBMITTED, "district_approve", actor="reviewer0",
                                            role=Role.DISTRICT_REVIEWER, at=datetime(2025, 9, 22, 10, 30))
    assert entity.state is A.SUBMITTED


# --------------------------------------------------------------------------- random walks


APPLICATION_ACTIONS = sorted({action for (_, action) in APPLICATION_CITY_ONLY.table} | {"declare", "run"})
BATCH_ACTIONS = sorted({action for (_, action) in BATCH.table} | {"start_running", "city_approve"})
AFTER_APPROVAL = {A.RUNNING, A.SUSPENDED, A.DISQUALIFIED, A.EXITED}


def walk(machine: Machine[Any], start: StrEnum, actions: Iterable[str]) -> list[StrEnum]:
    """Apply each action in turn, as a caller would, skipping refused ones; returns every state held."""
    entity = Entity(start)
    history = [start]
    for action in actions:
        before = entity.state
        if machine.can_apply(before, action):
            record = apply(machine, entity, action)
            assert (record.from_state, record.to_state) == (before.value, entity.state.value)
        else:
            with pytest.raises(InvalidTransition):
                apply(machine, entity, action)
            assert entity.state is before
        history.append(entity.state)
    return history


def first(history: list[StrEnum], state: StrEnum) -> int:
    return history.index(state) if state in history else len(history)


@given(st.lists(st.sampled_from(APPLICATION_ACTIONS), max_size=40))
def test_random_application_histories_never_skip_a_review_level(actions: list[str]):
    history = walk(APPLICATION, A.SUBMITTED, actions)
    allowed = reachable(APPLICATION, A.SUBMITTED)
    assert all(state in allowed for state in history)
    if A.APPROVED in history:
        assert first(history, A.DISTRICT_APPROVED) < first(history, A.APPROVED)
    for state in AFTER_APPROVAL & set(history):
        assert first(history, A.APPROVED) < first(history, state)


@given(st.lists(st.sampled_from(APPLICATION_ACTIONS), max_size=40))
def test_random_city_only_histories_never_run_unapproved(actions: list[str]):
    history = walk(APPLICATION_CITY_ONLY, A.SUBMITTED, actions)
    assert all(state in reachable(APPLICATION_CITY_ONLY, A.SUBMITTED) for state in history)
    for state in AFTER_APPROVAL & set(history):
        assert first(history, A.APPROVED) < first(history, state)


@given(st.lists(st.sampled_from(BATCH_ACTIONS), max_size=20))
def test_random_batch_histories_run_only_after_maturing_after_declaring(actions: list[str]):
    history = walk(BATCH, B.OPEN, actions)
    assert all(state in reachable(BATCH, B.OPEN) for state in history)
    if B.RUNNING in history:
        assert first(history, B.DECLARED) < first(history, B.MATURED) < first(history, B.RUNNING)
    if B.MATURED in history:
        assert first(history, B.DECLARED) < first(history, B.MATURED)


def test_the_random_walk_does_reach_running_so_the_invariants_are_exercised():
    history = walk(APPLICATION, A.SUBMITTED, ["city_approve", "district_approve", "start_running", "city_approve",
                                              "start_running", "suspend", "reinstate"])
    assert history == [A.SUBMITTED, A.SUBMITTED, A.DISTRICT_APPROVED, A.DISTRICT_APPROVED, A.APPROVED, A.RUNNING,
                       A.SUSPENDED, A.RUNNING]
    assert walk(BATCH, B.OPEN, ["run", "declare", "run", "mature", "run"])[-1] is B.RUNNING
