"""The one catalog of Chinese labels people see for the codes the system keeps.

Every state, action, kind, role and phase shown by the CLI, the web pages, the exports and the notices
takes its words from here. Keyed by the codes' string values (a StrEnum member is its value), so this
module imports nothing and every room, models/ included, may use it; tests/models/test_labels.py
fails on a code without a label.
"""

from __future__ import annotations

# The phases, as the program files and letters name them, and short for tables and timelines.
PHASE_LABELS: dict[str, str] = {
    "alliance": "联盟邀请（牵头省内各市联盟）",
    "drug_list": "征集“三进”集采药品清单",
    "enrollment": "组织医药机构参加",
    "accounts": "平台账户注册",
    "contracts": "购销协议签订",
    "continuous_review": "持续推进",
}
SHORT_PHASES = {"alliance": "联盟邀请", "drug_list": "药品清单征集", "enrollment": "机构申报", "accounts": "账户注册",
                "contracts": "协议签订", "continuous_review": "持续推进"}
WINDOW_LABELS = {"not_yet_open": "未开始", "open": "进行中", "closed": "已结束"}

# The counts per state of `sanjin status` and the overview (batches prefixed, as tasks/status.py counts them).
STATE_LABELS = {
    "invited": "已邀请", "accepted": "已同意", "declined": "已谢绝", "confirmed": "已确认", "excluded": "未确认",
    "submitted": "待审", "district_approved": "区县已审", "approved": "已批准", "rejected": "已驳回",
    "withdrawn": "已撤回", "running": "运行中", "suspended": "已暂停", "disqualified": "已取消", "exited": "已退出",
    "pending": "待办", "registered": "已注册", "exempt": "免于注册(代采)", "signed": "已签订", "terminated": "已终止",
    "batch_open": "批次-收集中", "batch_declared": "批次-审核中", "batch_matured": "批次-已成熟",
    "batch_running": "批次-运行中",
    # the enforcement ladder (models/enforcement.py LADDER_LABELS has the long forms)
    "proposed": "待约谈", "interviewed": "已约谈", "rectifying": "限期整改中", "suspension_due": "待决定暂停",
    "disqualification_due": "待决定取消资格", "cured": "已整改到位", "dropped": "不再处理", "barred": "禁止申报",
}

# One dict per state machine: the same code means different things in different machines.
INVITATION_STATE_LABELS = {"invited": "已邀请", "accepted": "已同意", "declined": "已谢绝", "confirmed": "已确认",
                           "excluded": "未确认"}
ENTERPRISE_STATE_LABELS = {"active": "正常", "barred": "限制参与", "exited": "已退出", "disqualified": "已取消资格"}
DECLARATION_STATE_LABELS = {"submitted": "待审", "accepted": "已通过", "rejected": "未通过", "withdrawn": "已撤回"}
APPLICATION_STATE_LABELS = {
    "submitted": "待审", "district_approved": "区县已审", "approved": "已批准", "rejected": "已驳回",
    "withdrawn": "已撤回", "running": "运行中", "suspended": "已暂停", "disqualified": "已取消", "exited": "已退出",
}
BATCH_STATE_LABELS = {"open": "收集中", "declared": "审核中", "matured": "已成熟", "running": "运行中"}
GATE_STATE_LABELS = {"open": "待决定", "decided": "已决定", "expired": "已过期", "cancelled": "已取消"}
# The enrollment funnel's stages (models/progress.py), in the overview's words.
FUNNEL_STAGE_LABELS = {"applied": "申报", "district_reviewed": "区县审核", "city_reviewed": "市级审核", "running": "运行",
                       "registered": "注册", "signed": "签约"}
# What a gate's due date passing does (models/gate_deadlines.py), and which reminder a letter is.
GATE_EXPIRY_LABELS = {"carry_over": "逾期后未决定事项转入下一批", "escalate": "逾期后每日报项目负责人督办"}
REMINDER_STAGE_LABELS = {"before": "到期前提醒", "due": "到期当日提醒", "overdue": "逾期督办"}
ACCOUNT_STATE_LABELS = {"pending": "待注册", "registered": "已注册", "exempt": "免于注册(代采)"}
CONTRACT_STATE_LABELS = {"pending": "待签订", "signed": "已签订", "terminated": "已终止"}
NOTICE_STATUS_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已发送", "dead": "发送失败",
                        "no_address": "无邮箱"}
LADDER_STATE_LABELS = {"proposed": "待约谈", "interviewed": "已约谈，待下达整改", "rectifying": "限期整改中", "suspension_due": "逾期未整改，待决定暂停医保结算", "suspended": "已暂停医保结算", "disqualification_due": "待决定取消资格", "disqualified": "已取消资格", "cured": "已整改到位", "dropped": "不再处理", "sign_removal_due": "整改不到位，待决定摘除标识牌", "sign_removed": "已摘除标识牌"}
# Where a ladder leads after the rectification deadline (models/enforcement.py Track).
LADDER_TRACK_LABELS = {"settlement": "暂停医保结算、取消资格", "sign": "摘除标识牌", "enterprise": "取消企业资格、产品移出清单"}
EXIT_STATE_LABELS = {"requested": "待审批", "approved": "已批准，待生效", "rejected": "未批准", "done": "已退出"}
ENFORCEMENT_STATE_LABELS = {"proposed": "已提出", "approved": "已批准", "rejected": "已驳回", "executed": "已执行"}

GATE_KIND_LABELS = {
    "alliance_confirmation": "联盟成员确认", "declaration_review": "企业申报审核", "list_approval": "药品清单发布审批",
    "district_review": "区县初审", "city_review": "市级审定", "batch_approval": "批次审批", "enforcement": "处理措施",
    "enterprise_exit": "企业退出审批",
}
DECISION_LABELS = {"approve": "通过", "reject": "未通过"}
REVIEW_LEVEL_LABELS = {"district": "区（县）医保局初审", "city": "市医保局审核"}
ROLE_LABELS = {"program_manager": "项目管理员", "district_reviewer": "区县审核员", "observer": "观察员",
               "system": "系统"}
LIST_KIND_LABELS = {"drugs": "药品清单", "recommended": "推荐药品清单", "institutions": "定点机构名单"}
# The compliance rules (models/compliance/codes.py ViolationRule), their states and subjects.
VIOLATION_LABELS = {
    "supply_above_winning_price": "供货价高于中选价",
    "late_delivery": "超时配送", "delivery_pattern": "企业多次超时或拒绝配送", "late_payment": "货款逾期未结清",
    "overdue_interview": "逾期结算超过期限（约谈对象）", "sale_price": "销售价格不符合价格政策",
    "online_offline_price": "线上线下价格不一致", "too_few_drugs": "配备品种数量不足",
    "recommended_share": "推荐配备品种占比不足", "special_drug": "非特药定点机构配备特药",
    "early_exit": "参加时间未满最短年限", "late_price_report": "未按期申报全国最低价",
    "no_sales": "挂网产品一年无销售（建议关闭）", "price_alert_red": "红色价格预警", "price_alert_yellow": "黄色价格预警",
    "price_alert_blue": "蓝色价格预警", "late_quarterly_report": "季度统计逾期未报",
}
VIOLATION_STATE_LABELS = {"open": "未整改", "closed": "已消除"}
VIOLATION_SUBJECT_LABELS = {"institution": "医药机构", "enterprise": "生产企业", "product": "挂网产品"}
ENFORCEMENT_KIND_LABELS = {"interview": "约谈", "rectification": "限期整改", "suspension": "暂停医保结算",
                           "disqualification": "取消集采药品“三进”资格", "sign_removal": "摘除“三进”标识牌",
                           "products_removed": "产品移出“三进”药品清单"}
# Issued reports (models/reports.py's ReportKind).
REPORT_KIND_LABELS = {"quarterly": "季度统计表", "summary": "年度执行情况总结"}
LAGGARD_LABELS = {"account": "平台账户未注册", "contract": "购销协议未签订", "payment": "货款逾期未付"}

# The audit trail: what was acted on (models/transitions.py's machines and the tasks' own records) and how.
AUDIT_ENTITY_LABELS = {
    "program": "项目", "alliance_invitation": "联盟邀请", "enterprise": "生产企业", "declaration": "企业申报",
    "application": "机构申请", "batch": "批次", "gate": "审批事项", "platform_account": "平台账户",
    "contract": "购销协议", "selection": "药品遴选", "notice": "通知", "enforcement_action": "处理措施", "enforcement_case": "处理程序", "enterprise_exit": "企业退出申请",
    "calendar": "节假日安排", "clock": "模拟时钟", "violation": "违规记录", "payment": "应付货款",
    "user": "用户", "institution": "医药机构", "list_version": "公布清单",
    "report_version": "统计报表",
}
AUDIT_ACTION_LABELS = {
    "accept": "同意", "approve": "批准", "cure": "整改到位", "deadline_passed": "整改期限届满", "take_effect": "生效", "bar": "限制参与", "cancel": "取消", "city_approve": "市级审定通过",
    "city_reject": "市级审定驳回", "claim": "领取发送", "confirm": "确认", "dead": "发送失败", "decide": "决定",
    "declare": "截止申报", "decline": "谢绝", "disqualify": "取消资格", "district_approve": "区县初审通过",
    "district_reject": "区县初审驳回", "exclude": "不予确认", "execute": "执行", "exit": "退出", "expire": "过期",
    "lift_bar": "解除限制", "mature": "批次成熟", "register": "注册", "reinstate": "恢复", "reject": "驳回",
    "resend": "重新发送", "retry": "稍后重试", "run": "开始运行", "sent": "已发送", "sign": "签订",
    "start_running": "开始运行", "suspend": "暂停", "terminate": "终止", "withdraw": "撤回",
    "submit": "提交", "create": "创建", "ignore": "忽略", "open": "开启", "select": "遴选", "update": "更新",
    "update_volumes": "更新采购量", "enter_schedule": "录入节假日安排", "set": "设定", "clear": "清除", "deadline_recomputed": "重新计算期限",
    "violation_opened": "发现违规", "violation_closed": "违规已消除", "print": "打印", "publish": "公布",
    "price_index_set": "量价比较指数达标情况变更",
    "issue": "生成并报送",
    "set_password": "修改密码", "disable": "停用", "lock": "登录失败过多已锁定", "unlock": "解除登录锁定",
}

# The outbox: one kind per letter (notifications/templates/<kind>.subject.txt).
NOTICE_KIND_LABELS = {
    "alliance_invitation": "联盟邀请函", "declaration_receipt": "企业申报回执", "declaration_decision": "企业申报审核结果",
    "calendar_unpublished": "节假日安排录入提醒", "audit_chain_broken": "审计记录校验失败警报",
    "application_receipt": "机构申请回执", "application_decision": "机构申请审核结果", "batch_published": "批次公布",
    "account_reminder": "账户注册提醒", "contract_reminder": "协议签订提醒", "payment_due": "货款支付提醒",
    "payment_overdue": "货款逾期通知", "quarterly_report_reminder": "季度报表提醒", "escalation": "逾期督办",
    "gate_waiting": "待审批提醒", "gate_overdue": "逾期审批督办", "enforcement_notice": "处理措施通知",
    "quarterly_report": "季度统计表报送", "summary_report": "年度执行情况报送",
}

# The states of each audited entity (the audit page shows from → to in the entity's own words).
ENTITY_STATE_LABELS: dict[str, dict[str, str]] = {
    "alliance_invitation": INVITATION_STATE_LABELS, "enterprise": ENTERPRISE_STATE_LABELS,
    "declaration": DECLARATION_STATE_LABELS, "application": APPLICATION_STATE_LABELS, "batch": BATCH_STATE_LABELS,
    "gate": GATE_STATE_LABELS, "platform_account": ACCOUNT_STATE_LABELS, "contract": CONTRACT_STATE_LABELS,
    "notice": NOTICE_STATUS_LABELS, "enforcement_action": ENFORCEMENT_STATE_LABELS, "violation": VIOLATION_STATE_LABELS,
    "user": ROLE_LABELS, "list_version": LIST_KIND_LABELS,  # a user's role; the kind of list published
}


def entity_state_label(entity: str, state: str) -> str:
    """A state in its entity's words; the mixed STATE_LABELS, then the code itself, for anything else."""
    return ENTITY_STATE_LABELS.get(entity, {}).get(state) or STATE_LABELS.get(state, state)
