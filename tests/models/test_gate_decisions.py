"""A gate's decisions keep each outcome once with the items it covers (no database)."""

from __future__ import annotations

import json

from models.gate_decisions import (
    any_approved,
    decided_count,
    decided_ids,
    from_items,
    item_outcomes,
    no_decisions,
    recorded,
    tally,
    to_items,
)

AT = "2025-09-22T10:00:00+08:00"


def test_a_whole_gate_approved_alike_is_one_outcome_naming_every_item() -> None:
    decision = recorded(no_decisions(), list(range(1, 100_001)), [], {}, reason=None, by="manager", at=AT)
    assert len(decision["outcomes"]) == 1
    assert decision["outcomes"][0] == {"decision": "approve", "reason": None, "by": "manager", "at": AT,
                                       "items": list(range(1, 100_001))}
    # Item by item this was 10.7 MB (migration 0029); now the ids once.
    assert len(json.dumps(decision)) < 700_000


def test_each_distinct_reason_is_its_own_outcome_and_every_item_keeps_its_own() -> None:
    decision = recorded(no_decisions(), [5, 1, 3], [4, 2], {3: "资料齐全", 4: "地址不符", 2: "电话错误"},
                        reason="同意", by="reviewer", at=AT)
    outcomes = item_outcomes(decision)
    assert {k: (o["decision"], o["reason"]) for k, o in outcomes.items()} == {
        "1": ("approve", "同意"), "5": ("approve", "同意"), "3": ("approve", "资料齐全"),
        "4": ("reject", "地址不符"), "2": ("reject", "电话错误")}
    assert all(o["by"] == "reviewer" and o["at"] == AT for o in outcomes.values())
    assert [g["items"] for g in decision["outcomes"]] == [[1, 5], [3], [4], [2]]


def test_a_later_decision_adds_to_the_earlier_ones() -> None:
    first = recorded(no_decisions(), [1, 2], [], {}, reason=None, by="a", at=AT)
    second = recorded(first, [], [3], {3: "材料不全"}, reason=None, by="b", at=AT)
    assert decided_ids(second) == {1, 2, 3}
    assert decided_count(second) == 3
    assert tally(second) == {"approve": 2, "reject": 1}
    assert item_outcomes(second)["3"]["by"] == "b"
    assert decided_ids(first) == {1, 2}  # the earlier value is not changed in place


def test_nothing_decided_reads_as_empty_in_either_form() -> None:
    for empty in (no_decisions(), {}, None, {"items": {}}):
        assert decided_ids(empty) == set()
        assert decided_count(empty) == 0
        assert tally(empty) == {}
        assert item_outcomes(empty) == {}
        assert not any_approved(empty)


def test_only_an_approval_counts_as_approved() -> None:
    assert not any_approved(recorded(no_decisions(), [], [1], {1: "不同意"}, reason=None, by="m", at=AT))
    assert any_approved(recorded(no_decisions(), [1], [], {}, reason=None, by="m", at=AT))


def test_a_page_reads_only_its_items() -> None:
    decision = recorded(no_decisions(), [1, 2, 3, 4], [], {}, reason=None, by="m", at=AT)
    assert set(item_outcomes(decision, only=[2, 4, 9])) == {"2", "4"}


def test_the_item_by_item_form_converts_both_ways_without_loss() -> None:
    old = {"items": {"7": {"decision": "approve", "reason": None, "by": "m", "at": AT},
                     "3": {"decision": "approve", "reason": None, "by": "m", "at": AT},
                     "9": {"decision": "reject", "reason": "材料不全", "by": "m", "at": AT}}}
    new = from_items(old["items"])
    assert new["outcomes"] == [{"decision": "approve", "reason": None, "by": "m", "at": AT, "items": [3, 7]},
                               {"decision": "reject", "reason": "材料不全", "by": "m", "at": AT, "items": [9]}]
    assert to_items(new) == old
