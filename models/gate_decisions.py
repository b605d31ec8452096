"""A gate's recorded decisions (its `decision` column): one entry per outcome, naming the items it covers.

Stored item by item (`{"items": {"<id>": {decision, reason, by, at}}}`, until migration 0029), a city gate's
one decision on 100,000 applications was a 10.7 MB document: ~0.3 s to serialize and write and much of a 0.9 s
commit on SQLite, in figure 1 (issue #17). A decision gives most items the same outcome, so the document keeps
each distinct outcome once with the ids it covers: `{"outcomes": [{"decision", "reason", "by", "at", "items":
[ids]}]}`, 0.7 MB for that decision. Pure functions: whoever reads the column reads it through these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

Outcome = dict[str, Any]  # {"decision": "approve" | "reject", "reason": str | None, "by": login, "at": ISO time}
OUTCOME_FIELDS = ("decision", "reason", "by", "at")


def no_decisions() -> dict[str, Any]:
    """A gate's column before anyone decided anything."""
    return {"outcomes": []}


def _groups(decision: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return list((decision or {}).get("outcomes") or [])


def recorded(decision: Mapping[str, Any] | None, approve: Sequence[int], reject: Sequence[int],
             reasons: Mapping[int, str | None], *, reason: str | None, by: str, at: str) -> dict[str, Any]:
    """The column after a decision: the earlier outcomes, then one entry per new (decision, reason).

    An approved item's reason is its own (`reasons`) or the decision's (`reason`); a rejected item's is its own.
    Within an entry the ids are sorted; entries keep the order they were decided in.
    """
    new: dict[tuple[str, str | None], list[int]] = {}
    if reasons and any(reasons.get(i) for i in approve):
        for i in approve:
            new.setdefault(("approve", reasons.get(i) or reason), []).append(i)
    elif approve:  # the usual case, a whole gate approved alike: one group, no loop in Python
        new[("approve", reason)] = list(approve)
    for i in reject:
        new.setdefault(("reject", reasons.get(i)), []).append(i)
    added = [{"decision": verdict, "reason": why, "by": by, "at": at, "items": sorted(ids)}
             for (verdict, why), ids in new.items()]
    return {"outcomes": _groups(decision) + added}


def decided_ids(decision: Mapping[str, Any] | None) -> set[int]:
    """The items decided so far."""
    return set(chain.from_iterable(group["items"] for group in _groups(decision)))


def decided_count(decision: Mapping[str, Any] | None) -> int:
    """How many items are decided (an item is decided once: deciding it again is refused)."""
    return sum(len(group["items"]) for group in _groups(decision))


def item_outcomes(decision: Mapping[str, Any] | None, only: Iterable[int] | None = None) -> dict[str, Outcome]:
    """Each decided item's outcome, keyed by the item's id as text (how the gate pages look items up).

    Items of one entry share one outcome dict. `only`: just these items (a page of a big gate).
    """
    wanted = None if only is None else {int(i) for i in only}
    out: dict[str, Outcome] = {}
    for group in _groups(decision):
        outcome = {k: group.get(k) for k in OUTCOME_FIELDS}
        for i in group["items"]:
            if wanted is None or i in wanted:
                out[str(i)] = outcome
    return out


def tally(decision: Mapping[str, Any] | None) -> dict[str, int]:
    """Decided items per decision ("approve", "reject")."""
    counts: dict[str, int] = {}
    for group in _groups(decision):
        counts[group["decision"]] = counts.get(group["decision"], 0) + len(group["items"])
    return counts


def any_approved(decision: Mapping[str, Any] | None) -> bool:
    return any(group["decision"] == "approve" and group["items"] for group in _groups(decision))


def from_items(items: Mapping[str, Outcome]) -> dict[str, Any]:
    """The column from the item-by-item form it had before migration 0029 (outcomes grouped, first seen first)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for key, outcome in items.items():
        groups.setdefault(tuple(outcome.get(k) for k in OUTCOME_FIELDS), []).append(int(key))
    return {"outcomes": [{**dict(zip(OUTCOME_FIELDS, fields, strict=True)), "items": sorted(ids)}
                         for fields, ids in groups.items()]}


def to_items(decision: Mapping[str, Any] | None) -> dict[str, Any]:
    """The item-by-item form of before migration 0029 (its downgrade)."""
    return {"items": {key: dict(outcome) for key, outcome in item_outcomes(decision).items()}}
