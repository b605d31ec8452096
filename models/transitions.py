"""The allowed moves of every stateful entity, as tables, and the pure function that applies them.

A transition is only ever applied through `Machine.apply`, which returns an `AuditRecord`
describing the move; callers persist that record in the same transaction as the new state,
so no state change exists without its audit event. Guards that depend on more than the state
(a proxy-procured clinic, a special drug) live in `models.rules` and are checked by callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from models.states import (
    AccountState,
    ApplicationState,
    BatchState,
    ContractState,
    DeclarationState,
    EnforcementState,
    EnterpriseState,
    GateState,
    InvitationState,
    NoticeStatus,
    Role,
)

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(Exception):
    """An attempted move the entity's table does not allow; names entity, state and action."""

    def __init__(self, entity: str, entity_id: object, state: StrEnum, action: str, allowed: list[str]) -> None:
        self._args = (entity, entity_id, state, action, allowed)
        self.entity = entity
        self.entity_id = entity_id
        self.state = state
        self.action = action
        self.allowed = allowed
        allowed_txt = ", ".join(allowed) or "none"
        super().__init__(
            f"{entity} {entity_id} 处于“{state.value}”状态，不能执行“{action}” / "
            f"{entity} {entity_id} is '{state.value}': '{action}' is not allowed (allowed: {allowed_txt})"
        )

    def __reduce__(self) -> tuple[type[InvalidTransition], tuple[object, ...]]:
        # Prefect pickles a task's exception to hand it back; rebuild it from its arguments.
        return (type(self), self._args)


@dataclass(frozen=True)
class AuditRecord:
    """One state change as the audit trail stores it."""

    entity: str
    entity_id: int | str
    action: str
    from_state: str | None
    to_state: str | None
    actor: str
    role: Role
    at: datetime
    reason: str | None = None
    program_id: int | None = None
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Machine(Generic[S]):
    """A transition table `(state, action) -> new state` for one entity type."""

    entity: str
    table: Mapping[tuple[S, str], S]

    def allowed_actions(self, state: S) -> list[str]:
        return sorted(action for (src, action) in self.table if src == state)

    def can_apply(self, state: S, action: str) -> bool:
        return (state, action) in self.table

    def next_state(self, entity_id: object, state: S, action: str) -> S:
        try:
            return self.table[(state, action)]
        except KeyError:
            raise InvalidTransition(self.entity, entity_id, state, action, self.allowed_actions(state)) from None

    def apply(
        self,
        entity_id: int | str,
        state: S,
        action: str,
        *,
        actor: str,
        role: Role,
        at: datetime,
        reason: str | None = None,
        program_id: int | None = None,
        data: Mapping[str, object] | None = None,
    ) -> tuple[S, AuditRecord]:
        """The new state and its audit record; raises InvalidTransition and changes nothing."""
        if at.tzinfo is None:
            raise ValueError("transition time must be timezone-aware")
        new = self.next_state(entity_id, state, action)
        record = AuditRecord(
            entity=self.entity,
            entity_id=entity_id,
            action=action,
            from_state=state.value,
            to_state=new.value,
            actor=actor,
            role=role,
            at=at,
            reason=reason,
            program_id=program_id,
            data=dict(data or {}),
        )
        return new, record


A = ApplicationState
APPLICATION = Machine[ApplicationState](
    "application",
    {
        # District review comes first; the city can only decide what a district approved (seed 001 §四).
        (A.SUBMITTED, "district_approve"): A.DISTRICT_APPROVED,
        (A.SUBMITTED, "district_reject"): A.REJECTED,
        (A.DISTRICT_APPROVED, "city_approve"): A.APPROVED,
        (A.DISTRICT_APPROVED, "city_reject"): A.REJECTED,
        (A.SUBMITTED, "withdraw"): A.WITHDRAWN,
        (A.DISTRICT_APPROVED, "withdraw"): A.WITHDRAWN,
        # "成熟一批、运行一批": a matured batch's approved institutions start running.
        (A.APPROVED, "start_running"): A.RUNNING,
        (A.RUNNING, "suspend"): A.SUSPENDED,
        (A.SUSPENDED, "reinstate"): A.RUNNING,
        (A.RUNNING, "disqualify"): A.DISQUALIFIED,
        (A.SUSPENDED, "disqualify"): A.DISQUALIFIED,
        (A.RUNNING, "exit"): A.EXITED,
    },
)

# A program whose chain has a single (district) level approves alone (Jiangxi, 002: 设区市医保部门确认).
APPLICATION_DISTRICT_ONLY = Machine[ApplicationState](
    "application",
    {
        **{k: v for k, v in APPLICATION.table.items() if k[1] != "district_approve"},
        (A.SUBMITTED, "district_approve"): A.APPROVED,
    },
)

# A program whose chain has a single (city) level approves straight from `submitted`.
APPLICATION_CITY_ONLY = Machine[ApplicationState](
    "application",
    {
        **APPLICATION.table,
        (A.SUBMITTED, "city_approve"): A.APPROVED,
        (A.SUBMITTED, "city_reject"): A.REJECTED,
    },
)

B = BatchState
BATCH = Machine[BatchState](
    "batch",
    {
        (B.OPEN, "declare"): B.DECLARED,
        (B.DECLARED, "mature"): B.MATURED,
        (B.MATURED, "run"): B.RUNNING,
    },
)

D = DeclarationState
DECLARATION = Machine[DeclarationState](
    "declaration",
    {
        (D.SUBMITTED, "accept"): D.ACCEPTED,
        (D.SUBMITTED, "reject"): D.REJECTED,
        (D.SUBMITTED, "withdraw"): D.WITHDRAWN,
        (D.ACCEPTED, "withdraw"): D.WITHDRAWN,  # enterprise exit (seed 001 §五)
    },
)

IS = InvitationState
INVITATION = Machine[InvitationState](
    "alliance_invitation",
    {
        (IS.INVITED, "accept"): IS.ACCEPTED,
        (IS.INVITED, "decline"): IS.DECLINED,
        (IS.ACCEPTED, "confirm"): IS.CONFIRMED,
        (IS.ACCEPTED, "exclude"): IS.EXCLUDED,
    },
)

G = GateState
GATE = Machine[GateState](
    "gate",
    {
        (G.OPEN, "decide"): G.DECIDED,
        (G.OPEN, "cancel"): G.CANCELLED,
        (G.OPEN, "expire"): G.EXPIRED,
    },
)

AC = AccountState
ACCOUNT = Machine[AccountState]("platform_account", {(AC.PENDING, "register"): AC.REGISTERED})

C = ContractState
CONTRACT = Machine[ContractState](
    "contract",
    {
        (C.PENDING, "sign"): C.SIGNED,
        (C.SIGNED, "terminate"): C.TERMINATED,
        (C.PENDING, "terminate"): C.TERMINATED,
    },
)

E = EnterpriseState
ENTERPRISE = Machine[EnterpriseState](
    "enterprise",
    {
        (E.ACTIVE, "bar"): E.BARRED,
        (E.BARRED, "lift_bar"): E.ACTIVE,
        (E.ACTIVE, "exit"): E.EXITED,
        (E.ACTIVE, "disqualify"): E.DISQUALIFIED,
        # 004 §六(十五): a bad record bars the enterprise for two years, also after its disqualification.
        (E.DISQUALIFIED, "bar"): E.BARRED,
        (E.EXITED, "bar"): E.BARRED,
    },
)

EN = EnforcementState
ENFORCEMENT = Machine[EnforcementState](
    "enforcement_action",
    {
        (EN.PROPOSED, "approve"): EN.APPROVED,
        (EN.PROPOSED, "reject"): EN.REJECTED,
        (EN.APPROVED, "execute"): EN.EXECUTED,
    },
)

N = NoticeStatus
NOTICE = Machine[NoticeStatus](
    "notice",
    {
        (N.PENDING, "claim"): N.SENDING,
        (N.SENDING, "sent"): N.SENT,
        (N.SENDING, "retry"): N.PENDING,
        (N.SENDING, "dead"): N.DEAD,
        (N.DEAD, "resend"): N.PENDING,
        (N.NO_ADDRESS, "resend"): N.PENDING,
    },
)

ALL_MACHINES: tuple[Machine[ApplicationState] | Machine[BatchState] | Machine[DeclarationState]
                    | Machine[InvitationState] | Machine[GateState] | Machine[AccountState]
                    | Machine[ContractState] | Machine[EnterpriseState] | Machine[EnforcementState]
                    | Machine[NoticeStatus], ...] = (
    APPLICATION, BATCH, DECLARATION, INVITATION, GATE, ACCOUNT, CONTRACT, ENTERPRISE, ENFORCEMENT, NOTICE,
)
