"""The enforcement ladder (000, 001, 002, 004) as a pure state machine: 约谈 → 限期整改 → 暂停医保结算 → 取消资格,
or 约谈 → 限期整改 → 摘除标识牌 where the seed prescribes sign removal (001 §三(四)).

A ladder (an `EnforcementCase`) follows one violation of a rule that calls for enforcement. Each rung waiting
for a person is a gate; approving it climbs, rejecting it drops the ladder. After the rectification (and the
suspension) a deadline in working days runs; when it passes with the violation still open, the next rung's gate
opens by itself. A violation that is cured ends the ladder wherever it stands (a suspension is lifted).
An enterprise has no suspension: interview → rectification → disqualification (its products leave the list).
Which rule opens which ladder, and at which first rung, is `LADDER_PLANS`; the rules that open none say why in
`NO_LADDER`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

import models.operations  # noqa: F401  EnforcementCase.violation_id references its table: it must be in the metadata
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
    SIGN_REMOVAL_DUE = "sign_removal_due"  # the deadline passed: the sign-removal gate is open
    SIGN_REMOVED = "sign_removed"  # 摘除标识牌: off the published list until the violation is cured
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
    LadderState.SIGN_REMOVAL_DUE: EnforcementKind.SIGN_REMOVAL,
}

STEP_LABELS: dict[EnforcementKind, str] = {
    EnforcementKind.INTERVIEW: "约谈",
    EnforcementKind.RECTIFICATION: "限期整改",
    EnforcementKind.SUSPENSION: "暂停医保结算",
    EnforcementKind.DISQUALIFICATION: "取消“三进”资格",
    EnforcementKind.SIGN_REMOVAL: "摘除标识牌",
}

class Track(StrEnum):
    """Where a ladder leads after the rectification deadline passes with the violation still open."""

    SETTLEMENT = "settlement"  # 暂停医保结算 → 取消资格 (an institution, 000 §四(三), 002 十二)
    SIGN = "sign"  # 摘除标识牌 (an institution, 001 §三(四))
    ENTERPRISE = "enterprise"  # 取消资格, its products leave the list (000, 001 §三(一), 004 §六(十五))


@dataclass(frozen=True)
class LadderPlan:
    """What a rule's violation opens under one seed: whose ladder, its first rung (the state its gate waits in),
    where it leads, and the sentence that says so (its first three characters name the seed)."""

    subject: SubjectType
    first: LadderState
    track: Track
    cites: str

    @property
    def seed(self) -> str:
        return self.cites[:3]


_INTERVIEW = LadderState.PROPOSED
_I, _E = SubjectType.INSTITUTION, SubjectType.ENTERPRISE
# Every rule whose seed prescribes enforcement opens a ladder, at the first rung that seed names. A program follows
# the plan of the first seed among its `sources` (Shenyang 000, Ningxia 001, Jiangxi 002, all with 003/004): the
# same rule may lead to sign removal in Ningxia and to suspension in Jiangxi, and open nothing in Shenyang.
LADDER_PLANS: dict[ViolationRule, tuple[LadderPlan, ...]] = {
    ViolationRule.OVERDUE_INTERVIEW: (LadderPlan(
        _I, _INTERVIEW, Track.SETTLEMENT,
        "000 §四(三)：不按时履约结算款超过2个月的……进行约谈，视情节轻重将采取限期整改、暂停医保结算等措施……取消其集采药品“三进”资格"),),
    ViolationRule.ONLINE_OFFLINE_PRICE: (LadderPlan(
        _I, _INTERVIEW, Track.SETTLEMENT,
        "002 十二：对“三进”单位……不执行集采价格政策……视情节采取约谈、通报、暂停或取消参与集采药品“三进”工作"),),
    ViolationRule.SALE_PRICE: (
        LadderPlan(_I, _INTERVIEW, Track.SIGN,
                   "001 §三(四)：……未规范执行价格政策的“集采便民药店”，经约谈整改不到位的摘除标识牌"),
        LadderPlan(_I, _INTERVIEW, Track.SETTLEMENT,
                   "002 十二：对“三进”单位……不执行集采价格政策……视情节采取约谈、通报、暂停或取消参与集采药品“三进”工作")),
    ViolationRule.TOO_FEW_DRUGS: (
        LadderPlan(_I, _INTERVIEW, Track.SIGN,
                   "001 §三(四)：对中选药品配备数量未达到条件……的“集采便民药店”，经约谈整改不到位的摘除标识牌"),
        LadderPlan(_I, _INTERVIEW, Track.SETTLEMENT,
                   "002 十二：要对“三进”单位承诺药品配备数量未达标……视情节采取约谈、通报、暂停或取消参与集采药品“三进”工作")),
    ViolationRule.DELIVERY_PATTERN: (
        LadderPlan(_E, _INTERVIEW, Track.ENTERPRISE,
                   "000 §四(二)：……如无特殊原因，拒绝或拖延配送将取消生产企业“三进”集采药品资格"),
        LadderPlan(_E, _INTERVIEW, Track.ENTERPRISE,
                   "001 §三(一)：不得……拒绝配送、拖延配送；……经约谈后拒不整改的……取消其集采药品“三进”供货资格"),
        LadderPlan(_E, _INTERVIEW, Track.ENTERPRISE,
                   "002 八：对无正当理由不能保障稳定供应……约谈中选企业……经约谈后仍拒不整改的，可采取取消其集采药品“三进”资格")),
    ViolationRule.SUPPLY_ABOVE_WINNING_PRICE: (
        LadderPlan(_E, _INTERVIEW, Track.ENTERPRISE,
                   "001 §三(一)：对无正当理由……超中选价格供应的……及时约谈中选企业，经……约谈后拒不整改的……取消其集采药品“三进”供货资格"),
        LadderPlan(_E, _INTERVIEW, Track.ENTERPRISE,
                   "002 八：对……超中选价格供应的，属地医保部门要及时约谈中选企业……经约谈后仍拒不整改的，可采取取消其集采药品“三进”资格")),
    # 004 names no interview: the manager weighs 视情节轻重 at the disqualification gate (rejecting drops it).
    ViolationRule.LATE_PRICE_REPORT: (LadderPlan(
        _E, LadderState.DISQUALIFICATION_DUE, Track.ENTERPRISE,
        "004 §六(十五)：对生产经营企业……不如实申报价格……视情节轻重给予取消产品挂网资格、列入不良记录等处理"),),
}


def seeds_of(sources: Iterable[str]) -> tuple[str, ...]:
    """The seed numbers of a program file's `sources` (000_c11bba317d9f68b5.txt → 000), in the file's order."""
    return tuple(source[:3] for source in sources)


def plan_for(rule: ViolationRule | str, seeds: Iterable[str]) -> LadderPlan | None:
    """The plan the program's seeds give a rule (the first of its sources that names one), or None."""
    plans = LADDER_PLANS.get(ViolationRule(rule), ())
    for seed in seeds:
        for plan in plans:
            if plan.seed == seed:
                return plan
    return None


# The rules that open no ladder of their own, and why (a manager may still start one by hand).
NO_LADDER: dict[ViolationRule, str] = {
    ViolationRule.LATE_DELIVERY: "feeds the delivery pattern (000 §四(二), 001 §三(一) act on a pattern of refusals/delays)",
    ViolationRule.LATE_PAYMENT: "feeds the overdue interview: 000 §四(三) acts after 2 months",
    ViolationRule.RECOMMENDED_SHARE: "002 十二 counts it in performance management (绩效管理), names no sanction",
    ViolationRule.SPECIAL_DRUG: "000 names no measure beyond 依据相关规定予以处理: a manual ladder",
    ViolationRule.EARLY_EXIT: "the institution already left; 002 十二 weighs it in performance management",
    ViolationRule.NO_SALES: "004 §三(一) closes the listing (关闭采购状态): no person is sanctioned",
    ViolationRule.PRICE_ALERT_RED: "004 §三(二)2: the provincial authority's measure on public hospitals' 议价",
    ViolationRule.PRICE_ALERT_YELLOW: "004 §三(二)2: an alert only",
    ViolationRule.PRICE_ALERT_BLUE: "004 §三(二)2: an alert only",
    ViolationRule.LATE_QUARTERLY_REPORT: "001 §三(四): the city bureau's own duty; nobody to sanction",
}

# What a ladder started by hand on a reason alone (no violation) is called where a rule's name would stand.
MANUAL_LABEL = "人工立案"

# Whose ladder each rule opens, whatever the seed.
LADDER_RULES: dict[ViolationRule, SubjectType] = {rule: plans[0].subject for rule, plans in LADDER_PLANS.items()}

_S = LadderState
_COMMON: dict[tuple[LadderState, str], LadderState] = {
    (_S.PROPOSED, "approve"): _S.INTERVIEWED,
    (_S.PROPOSED, "reject"): _S.DROPPED,
    (_S.INTERVIEWED, "approve"): _S.RECTIFYING,
    (_S.INTERVIEWED, "reject"): _S.DROPPED,
    **{(s, "cure"): _S.CURED for s in _S if s not in FINAL},
}
_DISQUALIFY: dict[tuple[LadderState, str], LadderState] = {
    (_S.DISQUALIFICATION_DUE, "approve"): _S.DISQUALIFIED,
    (_S.DISQUALIFICATION_DUE, "reject"): _S.DROPPED,
}
INSTITUTION_LADDER = Machine[LadderState]("enforcement_case", {
    **_COMMON, **_DISQUALIFY,
    (_S.RECTIFYING, "deadline_passed"): _S.SUSPENSION_DUE,
    (_S.SUSPENSION_DUE, "approve"): _S.SUSPENDED,
    (_S.SUSPENSION_DUE, "reject"): _S.DROPPED,
    (_S.SUSPENDED, "deadline_passed"): _S.DISQUALIFICATION_DUE,
})
SIGN_LADDER = Machine[LadderState]("enforcement_case", {
    **_COMMON,
    (_S.RECTIFYING, "deadline_passed"): _S.SIGN_REMOVAL_DUE,
    (_S.SIGN_REMOVAL_DUE, "approve"): _S.SIGN_REMOVED,
    (_S.SIGN_REMOVAL_DUE, "reject"): _S.DROPPED,
})
ENTERPRISE_LADDER = Machine[LadderState]("enforcement_case", {
    **_COMMON, **_DISQUALIFY,
    (_S.RECTIFYING, "deadline_passed"): _S.DISQUALIFICATION_DUE,
})
_MACHINES = {Track.SETTLEMENT: INSTITUTION_LADDER, Track.SIGN: SIGN_LADDER, Track.ENTERPRISE: ENTERPRISE_LADDER}


def track_of(rule: ViolationRule | str | None, subject: SubjectType | str, seeds: Iterable[str] = ()) -> Track:
    """The rule's planned track under the program's seeds; a ladder started by hand on another rule (or on a
    reason alone) follows its subject's usual one."""
    plan = plan_for(rule, seeds) if rule is not None else None
    if plan is not None:
        return plan.track
    return Track.ENTERPRISE if SubjectType(subject) == SubjectType.ENTERPRISE else Track.SETTLEMENT


def ladder_for(subject: SubjectType | str, rule: ViolationRule | str | None = None,
               seeds: Iterable[str] = ()) -> Machine[LadderState]:
    return _MACHINES[track_of(rule, subject, seeds)]


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
    """One ladder: the violation it follows, where it stands, and the running deadline (整改期限) if any.

    A ladder a person starts by hand (`started_by`) cites a violation or only a reason (`violation_id` empty):
    one without a violation is never cured by the compliance pass; its deciders end it by rejecting a rung.
    """

    __table_args__ = (UniqueConstraint("violation_id"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    violation_id: int | None = Field(default=None, foreign_key="violation.id")
    reason: str | None = Field(default=None, max_length=500)  # why a person started it
    started_by: str | None = Field(default=None, max_length=64)  # None: opened by the compliance pass
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
