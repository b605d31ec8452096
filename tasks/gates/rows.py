"""Gate rows: opening them idempotently, who may decide one, listing them, the run waiting on them, the errors.

Recording a decision is tasks.gates.deciding's; what it does to the items is tasks.gates.effects'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from core.bulk import insert_ignoring_conflicts
from core.db import transaction
from models.calendar import due_columns
from models.clock import Clock
from models.enrollment import Gate
from models.gate_decisions import no_decisions
from models.program import User
from models.states import GateKind, GateState, Role
from models.transitions import AuditRecord
from models.workdays import Deadline


class GateError(Exception):
    """A decision that cannot be recorded; the message is for the person who tried."""


class UnknownGate(GateError):
    def __init__(self, gate_id: int) -> None:
        super().__init__(f"没有编号为 {gate_id} 的审批事项 / no gate {gate_id}")


class UnknownUser(GateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"用户 {name!r} 不存在或已停用 / user {name!r} does not exist or is inactive "
                         "(add one with `sanjin user add`)")


class NotAllowedToDecide(GateError):
    def __init__(self, user: User, gate: Gate) -> None:
        super().__init__(
            f"{user.name}（{user.role.value}）无权决定审批事项 {gate.id}「{gate.title}」，需由 {gate.decider_role.value} 决定 / "
            f"{user.name} ({user.role.value}) may not decide gate {gate.id}: it needs a {gate.decider_role.value}"
        )


class NotYourDistrict(GateError):
    def __init__(self, user: User, gate: Gate) -> None:
        super().__init__(
            f"{user.name} 负责 {'、'.join(user.districts) or '无'}，不能审核{gate.district}的申请（审批事项 {gate.id}） / "
            f"{user.name} reviews {', '.join(user.districts) or 'no district'}, "
            f"not {gate.district} (gate {gate.id})"
        )


class GateNotOpen(GateError):
    def __init__(self, gate: Gate) -> None:
        self.state = gate.state.value
        super().__init__(f"审批事项 {gate.id} 已是“{gate.state.value}”状态，不能再决定 / "
                         f"gate {gate.id} is {gate.state.value}: it can no longer be decided")


class GateConflict(GateError):
    def __init__(self, gate_id: int) -> None:
        super().__init__(f"审批事项 {gate_id} 刚被他人决定，请刷新后重试 / gate {gate_id} was decided by someone else "
                         "meanwhile; reload and try again")


class BadItems(GateError):
    pass


@dataclass(frozen=True)
class GateSpec:
    """What a flow wants open; `natural_key` makes asking twice open one gate."""

    natural_key: str
    program_id: int
    phase: str
    kind: GateKind
    title: str
    subject_type: str
    subject_id: int | None
    items: list[int]
    decider_role: Role
    due: Deadline
    district: str | None = None


def open_gates(session: Session, specs: Sequence[GateSpec], clock: Clock) -> int:
    """Open the gates not open yet (by natural key); returns how many are new."""
    now = clock.now()
    rows: list[dict[str, Any]] = [
        {
            "natural_key": s.natural_key, "program_id": s.program_id, "phase": s.phase, "kind": s.kind,
            "title": s.title, "subject_type": s.subject_type, "subject_id": s.subject_id, "items": list(s.items),
            "district": s.district, "decider_role": s.decider_role, "state": GateState.OPEN, "opened_at": now,
            **due_columns(s.due), "decision": no_decisions(), "version": 1,
        }
        for s in specs
    ]
    return insert_ignoring_conflicts(session, Gate, rows, ["natural_key"])


@dataclass
class DecisionContext:
    """What an effect function needs to move the decided items."""

    session: Session
    gate: Gate
    approved: list[int]
    rejected: list[int]
    reasons: dict[int, str]
    user: User
    clock: Clock
    audit: list[AuditRecord] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # per gate kind, e.g. enforcement's bad_record


@dataclass(frozen=True)
class DecisionResult:
    gate_id: int
    state: GateState
    approved: list[int]
    rejected: list[int]
    undecided: list[int]
    flow_run_id: str | None


def check_decider(user: User, gate: Gate) -> None:
    """Raise unless `user` may decide `gate`: the right role, and for district gates its district."""
    if user.role != gate.decider_role:
        raise NotAllowedToDecide(user, gate)
    if gate.district is not None and gate.district not in user.districts:
        raise NotYourDistrict(user, gate)


def find_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None or not user.active:
        raise UnknownUser(name)
    return user


def list_gates(
    engine: Engine,
    *,
    program_id: int | None = None,
    district: str | None = None,
    states: Sequence[GateState] = (GateState.OPEN,),
) -> list[Gate]:
    with Session(engine) as session:
        query = select(Gate).where(Gate.state.in_(list(states)))  # type: ignore[attr-defined]
        if program_id is not None:
            query = query.where(Gate.program_id == program_id)
        if district is not None:
            query = query.where(Gate.district == district)
        return list(session.exec(query.order_by(Gate.due_on, Gate.id)).all())  # type: ignore[arg-type]


def attach_waiting_run(engine: Engine, gate_ids: Sequence[int], flow_run_id: str) -> tuple[list[int], list[str]]:
    """Attach a run that is about to wait; (the gates still open, the other runs that were attached to them).

    A decision may have landed since the run's reconciliation read its gates: a run that waited on a gate
    already decided would sleep until its re-arm interval, so it waits only on the ones still open. The runs
    attached before it are superseded: only the newest waiter is woken by a decision.
    """
    if not gate_ids:
        return [], []
    ids = list(gate_ids)
    with transaction(engine) as session:
        before = session.execute(select(Gate.flow_run_id).where(Gate.id.in_(ids)).distinct()).scalars().all()  # type: ignore[union-attr]
        session.execute(update(Gate).where(Gate.id.in_(ids)).values(flow_run_id=flow_run_id))  # type: ignore[union-attr]
        still_open = session.execute(select(Gate.id).where(Gate.id.in_(ids), Gate.state == GateState.OPEN)  # type: ignore[union-attr]
                                     .order_by(col(Gate.id))).scalars().all()
    return [int(i) for i in still_open], sorted({r for r in before if r and r != flow_run_id})


def attach_flow_run(engine: Engine, gate_ids: Sequence[int], flow_run_id: str) -> None:
    """Remember which run waits on these gates, so a decision elsewhere can resume it."""
    if not gate_ids:
        return
    with transaction(engine) as session:
        session.execute(update(Gate).where(Gate.id.in_(list(gate_ids))).values(flow_run_id=flow_run_id))  # type: ignore[union-attr]
