"""Recording a person's decision on a gate, with its effects, in one transaction.

Deciding is one transaction: check who decides (role, district), check the gate is still open
(a version column: of two deciders one wins, the other gets GateConflict), record the decision,
move the items' states with audit rows and notices. Resuming a waiting Prefect run comes after
commit and is best-effort: the database, not the run, holds the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, update

from core.bulk import write_audit
from core.collector import collector_paused
from core.db import transaction
from models.clock import Clock
from models.enrollment import Gate
from models.gate_decisions import decided_ids, recorded
from models.states import GateState
from models.transitions import GATE, AuditRecord
from tasks.gates.effects import apply_effects
from tasks.gates.rows import (
    BadItems,
    DecisionContext,
    DecisionResult,
    GateConflict,
    GateNotOpen,
    UnknownGate,
    check_decider,
    find_user,
)


def _check_items(gate: Gate, decided: set[int], approve: Sequence[int], reject: Sequence[int],
                 reasons: dict[int, str]) -> None:
    items = set(gate.items)
    approved, rejected = set(approve), set(reject)  # each built once: a city gate's are 100,000 ids
    both = approved & rejected
    if both:
        raise BadItems(f"同一事项不能既批准又驳回 / items both approved and rejected: {sorted(both)}")
    chosen = approved | rejected if rejected else approved
    unknown = chosen - items
    if unknown:
        raise BadItems(f"审批事项 {gate.id} 不包含 {sorted(unknown)} / gate {gate.id} has no items {sorted(unknown)} "
                       f"(its items: {sorted(items)})")
    again = chosen & decided
    if again:
        raise BadItems(f"事项 {sorted(again)} 已决定 / items {sorted(again)} are already decided")
    if not approve and not reject:
        raise BadItems("没有要决定的事项 / nothing to decide: name items to approve or reject")
    missing = [i for i in reject if not reasons.get(i)]
    if missing:
        raise BadItems(f"驳回必须说明理由 / a rejection needs a reason (items {missing})")


def decide_gate(
    engine: Engine,
    gate_id: int,
    *,
    approve: Iterable[int] = (),
    reject: Iterable[int] = (),
    reason: str | None = None,
    reasons: dict[int, str] | None = None,
    user_name: str,
    clock: Clock,
    options: dict[str, Any] | None = None,
) -> DecisionResult:
    """Record a decision on some or all of a gate's items and apply it, in one transaction."""
    approve, reject = sorted(set(approve)), sorted(set(reject))
    per_item = {i: reason for i in reject if reason} | dict(reasons or {})
    now = clock.now()
    # A decision on a city gate reads and moves 100,000 items: no full cycle collections over the worker meanwhile.
    with collector_paused(), transaction(engine) as session:
        gate = session.get(Gate, gate_id)
        if gate is None:
            raise UnknownGate(gate_id)
        user = find_user(session, user_name)
        check_decider(user, gate)
        if gate.state != GateState.OPEN:
            raise GateNotOpen(gate)
        decided = decided_ids(gate.decision)
        _check_items(gate, decided, approve, reject, per_item)
        decision = recorded(gate.decision, approve, reject, per_item, reason=reason, by=user.name,
                            at=now.isoformat())
        decided.update(approve, reject)
        undecided = [i for i in gate.items if i not in decided]
        new_state = GateState.OPEN
        audit: list[AuditRecord] = []
        if not undecided:
            new_state, record = GATE.apply(gate_id, gate.state, "decide", actor=user.name, role=user.role, at=now,
                                           reason=reason, program_id=gate.program_id,
                                           data={"approved": approve, "rejected": reject})
            audit.append(record)
        result = session.execute(
            update(Gate)
            .where(Gate.id == gate_id, Gate.version == gate.version)  # type: ignore[arg-type]
            .values(version=gate.version + 1, state=new_state, decision=decision,
                    decided_by=user.name if new_state == GateState.DECIDED else gate.decided_by,
                    decided_at=now if new_state == GateState.DECIDED else gate.decided_at)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise GateConflict(gate_id)
        write_audit(session, audit)  # the gate's own row first, then its items'
        ctx = DecisionContext(session, gate, approve, reject, per_item, user, clock, options=dict(options or {}))
        apply_effects(ctx)
        write_audit(session, ctx.audit)
        return DecisionResult(gate_id, new_state, approve, reject, undecided, gate.flow_run_id)
