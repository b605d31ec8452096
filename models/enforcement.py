"""The enforcement ladder (000, 001, 002) as a pure state machine: 约谈 → 限期整改 → 暂停医保结算 → 取消资格.

A ladder (an `EnforcementCase`) follows one violation of a rule that calls for enforcement. Each rung waiting
for a person is a gate; approving it climbs, rejecting it drops the ladder. After the rectification (and the
suspension) a deadline in working days runs; when it passes with the violation still open, the next rung's gate
opens by itself. A violation that is cured ends the ladder wherever it stands (a suspension is lifted).
An enterprise has no suspension: interview → rectification → disqualification (its products leave the list).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models import labels
from models.base import AwareDateTime, EnumString
from models.calendar import ProvisionalDue
from models.compliance.codes import SubjectType, ViolationRule
from models.states import EnforcementKind, Role
from models.transitions import Machine


class LadderState(StrEnum):
    PROPOSED = "proposed"  # the interview gate is open
    INTERVIEWED = "interviewed"  # the rectification gate is open
    RECTIFYING = "rectifying"  # the rectification deadline runs
    SUSPENSION_DUE = "suspension_due"  # the deadline passed: the suspension gate is open
    SUSPENDED = "suspended"  # settlement suspended; a second deadline runs
    DISQUALIFICATION_DUE = "disqualification_due"  # the disqualification gate is open
    DISQUALIFIED = "disqualified"  # final: off the list
    CURED = "cured"  # final: the violation's cause is gone (整改到位)
    DROPPED = "dropped"  # final: a decider chose not to go on


FINAL: frozenset[LadderState] = frozenset({LadderState.DISQUALIFIED, LadderState.CURED, LadderState.DROPPED})

LADDER_LABELS: dict[LadderState, str] = {v: labels.LADDER_STATE_LABELS[v.value] for v in LadderState}

# The rung whose gate a state waits on.
GATE_STEP: dict[LadderState, EnforcementKind] = {
    LadderState.PROPOSED: EnforcementKind.INTERVIEW,
    LadderState.INTERVIEWED: EnforcementKind.RECTIFICATION,
    LadderState.SUSPENSION_DUE: EnforcementKind.SUSPENSION,
    LadderState.DISQUALIFICATION_DUE: EnforcementKind.DISQUALIFICATION,
}

STEP_LABELS: dict[EnforcementKind, str] = {
    EnforcementKind.INTERVIEW: "约谈",
    EnforcementKind.RECTIFICATION: "限期整改",
    EnforcementKind.SUSPENSION: "暂停医保结算",
    EnforcementKind.DISQUALIFICATION: "取消“三进”资格（摘除标识牌）",
    EnforcementKind.SIGN_REMOVAL: "摘除标识牌",
}

# The rules whose violation starts a ladder: overdue payment past the interview threshold (000 §四(三)) and an
# enterprise refusing or delaying delivery (000 §四(二), 001, 002).
LADDER_RULES: dict[ViolationRule, SubjectType] = {
    ViolationRule.OVERDUE_INTERVIEW: SubjectType.INSTITUTION,
    ViolationRule.DELIVERY_PATTERN: SubjectType.ENTERPRISE,
}

_S = LadderState
_COMMON: dict[tuple[LadderState, str], LadderState] = {
    (_S.PROPOSED, "approve"): _S.INTERVIEWED,
    (_S.PROPOSED, "reject"): _S.DROPPED,
    (_S.INTERVIEWED, "approve"): _S.RECTIFYING,
    (_S.INTERVIEWED, "reject"): _S.DROPPED,
    (_S.DISQUALIFICATION_DUE, "approve"): _S.DISQUALIFIED,
    (_S.DISQUALIFICATION_DUE, "reject"): _S.DROPPED,
    **{(s, "cure"): _S.CURED for s in _S if s not in FINAL},
}
INSTITUTION_LADDER = Machine[LadderState]("enforcement_case", {
    **_COMMON,
    (_S.RECTIFYING, "deadline_passed"): _S.SUSPENSION_DUE,
    (_S.SUSPENSION_DUE, "approve"): _S.SUSPENDED,
    (_S.SUSPENSION_DUE, "reject"): _S.DROPPED,
    (_S.SUSPENDED, "deadline_passed"): _S.DISQUALIFICATION_DUE,
})
ENTERPRISE_LADDER = Machine[LadderState]("enforcement_case", {
    **_COMMON,
    (_S.RECTIFYING, "deadline_passed"): _S.DISQUALIFICATION_DUE,
})


def ladder_for(subject: SubjectType | str) -> Machine[LadderState]:
    return ENTERPRISE_LADDER if SubjectType(subject) == SubjectType.ENTERPRISE else INSTITUTION_LADDER


def decider_of(step: EnforcementKind, subject: SubjectType | str, chain_levels: list[str]) -> Role:
    """Who decides a rung, as the program file's approval chain says.

    The institution's district reviewer records the interview and orders the rectification where the chain has
    a district level; suspension and disqualification are the program manager's, as is everything about an
    enterprise (it has no district).
    """
    if (step in (EnforcementKind.INTERVIEW, EnforcementKind.RECTIFICATION)
            and SubjectType(subject) == SubjectType.INSTITUTION and "district" in chain_levels):
        return Role.DISTRICT_REVIEWER
    return Role.PROGRAM_MANAGER


class EnforcementCase(ProvisionalDue, table=True):
    """One ladder: the violation it follows, where it stands, and the running deadline (整改期限) if any."""

    __table_args__ = (UniqueConstraint("violation_id"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    violation_id: int = Field(foreign_key="violation.id")
    subject_type: SubjectType = Field(sa_column=Column(EnumString(SubjectType), nullable=False))
    subject_id: int
    district: str | None = Field(default=None, max_length=32)
    state: LadderState = Field(default=LadderState.PROPOSED, sa_column=Column(EnumString(LadderState), nullable=False))
    due_on: date | None = None  # the deadline of RECTIFYING / SUSPENDED
    opened_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))


class BadRecord(SQLModel, table=True):
    """不良记录 of an enterprise (004 §六(十五)): barred from declaring through `barred_until` (its last day)."""

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    starts_on: date
    barred_until: date  # the last barred day; the enterprise may declare again the day after
    reason: str = Field(max_length=500)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


def last_barred_day(starts_on: date, years: int) -> date:
    """The last day of a bar of `years` from `starts_on`: the day before its anniversary (29 February → 28th)."""
    try:
        anniversary = starts_on.replace(year=starts_on.year + years)
    except ValueError:
        anniversary = date(starts_on.year + years, 3, 1)
    return anniversary - timedelta(days=1)


class ExitState(StrEnum):
    REQUESTED = "requested"  # the manager's gate is open
    APPROVED = "approved"  # takes effect on `exits_on`
    REJECTED = "rejected"
    DONE = "done"  # the products left the list on `exits_on`


EXIT_LABELS: dict[ExitState, str] = {v: labels.EXIT_STATE_LABELS[v.value] for v in ExitState}

EXIT = Machine[ExitState]("enterprise_exit", {
    (ExitState.REQUESTED, "approve"): ExitState.APPROVED,
    (ExitState.REQUESTED, "reject"): ExitState.REJECTED,
    (ExitState.APPROVED, "take_effect"): ExitState.DONE,
})


class EnterpriseExit(SQLModel, table=True):
    """An enterprise's application to leave the list (001 §五: 协议期满可申请退出), effective on `exits_on`."""

    __table_args__ = (UniqueConstraint("program_id", "enterprise_id", "exits_on"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id")
    exits_on: date
    reason: str = Field(max_length=500)
    state: ExitState = Field(default=ExitState.REQUESTED, sa_column=Column(EnumString(ExitState), nullable=False))
    requested_by: str = Field(max_length=64)
    requested_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
