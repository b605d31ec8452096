"""Every state and kind the program's entities can be in, as enums (never bare strings)."""

from __future__ import annotations

from enum import StrEnum


class InstitutionKind(StrEnum):
    TOWNSHIP_HEALTH_CENTER = "township_health_center"  # 乡镇卫生院
    COMMUNITY_HEALTH_CENTER = "community_health_center"  # 社区卫生服务中心
    COMMUNITY_HEALTH_STATION = "community_health_station"  # 社区卫生服务站
    VILLAGE_CLINIC = "village_clinic"  # 村卫生室
    PRIVATE_HOSPITAL = "private_hospital"  # 民营医院
    PRIVATE_CLINIC = "private_clinic"  # 民营诊所/门诊部
    CHAIN_PHARMACY = "chain_pharmacy"  # 连锁药店
    SINGLE_PHARMACY = "single_pharmacy"  # 单体药店


class InstitutionCategory(StrEnum):
    PUBLIC_GRASSROOTS = "public_grassroots"  # 公立基层医疗机构
    PRIVATE_MEDICAL = "private_medical"  # 定点民营医疗机构
    RETAIL_PHARMACY = "retail_pharmacy"  # 定点零售药店


KIND_LABELS: dict[InstitutionKind, str] = {
    InstitutionKind.TOWNSHIP_HEALTH_CENTER: "乡镇卫生院",
    InstitutionKind.COMMUNITY_HEALTH_CENTER: "社区卫生服务中心",
    InstitutionKind.COMMUNITY_HEALTH_STATION: "社区卫生服务站",
    InstitutionKind.VILLAGE_CLINIC: "村卫生室",
    InstitutionKind.PRIVATE_HOSPITAL: "民营医院",
    InstitutionKind.PRIVATE_CLINIC: "民营诊所",
    InstitutionKind.CHAIN_PHARMACY: "连锁药店",
    InstitutionKind.SINGLE_PHARMACY: "单体药店",
}

CATEGORY_LABELS: dict[InstitutionCategory, str] = {
    InstitutionCategory.PUBLIC_GRASSROOTS: "公立基层医疗机构",
    InstitutionCategory.PRIVATE_MEDICAL: "定点民营医疗机构",
    InstitutionCategory.RETAIL_PHARMACY: "定点零售药店",
}


def category_of(kind: InstitutionKind) -> InstitutionCategory:
    """The policy category decides pricing and whether participation is voluntary (seed 000 §二)."""
    if kind in (InstitutionKind.CHAIN_PHARMACY, InstitutionKind.SINGLE_PHARMACY):
        return InstitutionCategory.RETAIL_PHARMACY
    if kind in (InstitutionKind.PRIVATE_HOSPITAL, InstitutionKind.PRIVATE_CLINIC):
        return InstitutionCategory.PRIVATE_MEDICAL
    return InstitutionCategory.PUBLIC_GRASSROOTS


class Role(StrEnum):
    PROGRAM_MANAGER = "program_manager"  # 市医保局价采处
    DISTRICT_REVIEWER = "district_reviewer"  # 区/县医保局
    OBSERVER = "observer"
    SYSTEM = "system"  # the flows themselves


class InvitationState(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CONFIRMED = "confirmed"  # the manager confirmed the city as an alliance member
    EXCLUDED = "excluded"  # accepted, but the manager did not confirm it


class EnterpriseState(StrEnum):
    ACTIVE = "active"
    BARRED = "barred"  # bad record: barred for N years (seed 004)
    EXITED = "exited"  # left after its agreement ended (seed 001)
    DISQUALIFIED = "disqualified"  # refused/delayed delivery (seed 000)


class DeclarationState(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApplicationState(StrEnum):
    SUBMITTED = "submitted"
    DISTRICT_APPROVED = "district_approved"
    APPROVED = "approved"  # approved at every level, waiting for its batch to run
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    RUNNING = "running"  # its batch was published; the institution takes part
    SUSPENDED = "suspended"
    DISQUALIFIED = "disqualified"
    EXITED = "exited"


class BatchState(StrEnum):
    OPEN = "open"  # accepting applications until its cut-off
    DECLARED = "declared"  # cut off; reviews under way
    MATURED = "matured"  # every application decided at every level
    RUNNING = "running"  # published; its approved institutions run


class GateKind(StrEnum):
    ALLIANCE_CONFIRMATION = "alliance_confirmation"
    DECLARATION_REVIEW = "declaration_review"
    LIST_APPROVAL = "list_approval"
    DISTRICT_REVIEW = "district_review"
    CITY_REVIEW = "city_review"
    BATCH_APPROVAL = "batch_approval"
    ENFORCEMENT = "enforcement"
    ENTERPRISE_EXIT = "enterprise_exit"  # 001 §五: the manager approves an enterprise leaving the list


class GateState(StrEnum):
    OPEN = "open"
    DECIDED = "decided"
    EXPIRED = "expired"  # due date passed; undecided items were carried over to a later gate
    CANCELLED = "cancelled"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewLevel(StrEnum):
    DISTRICT = "district"
    CITY = "city"


class AccountState(StrEnum):
    PENDING = "pending"
    REGISTERED = "registered"
    EXEMPT = "exempt"  # proxy-procured: the upper institution buys for it (seed 000 §四(一))


class ContractState(StrEnum):
    PENDING = "pending"
    SIGNED = "signed"
    TERMINATED = "terminated"


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"  # permanent failure, with its reason
    NO_ADDRESS = "no_address"  # kept for print or phone follow-up


class ListKind(StrEnum):
    DRUGS = "drugs"
    RECOMMENDED = "recommended"
    INSTITUTIONS = "institutions"


class EnforcementKind(StrEnum):
    INTERVIEW = "interview"  # 约谈
    RECTIFICATION = "rectification"  # 限期整改
    SUSPENSION = "suspension"  # 暂停医保结算
    DISQUALIFICATION = "disqualification"  # 取消资格
    SIGN_REMOVAL = "sign_removal"  # 摘牌


class EnforcementState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"


class PhaseRunState(StrEnum):
    NOT_YET_OPEN = "not_yet_open"
    OPEN = "open"
    CLOSED = "closed"
