"""The Chinese labels people see for the codes the system keeps (states, phases, windows).

Keyed by the codes' string values, so this module imports nothing and every room may use it.
"""

from __future__ import annotations

WINDOW_LABELS = {"not_yet_open": "未开始", "open": "进行中", "closed": "已结束"}
SHORT_PHASES = {"alliance": "联盟邀请", "drug_list": "药品清单征集", "enrollment": "机构申报", "accounts": "账户注册",
                "contracts": "协议签订", "continuous_review": "持续推进"}
STATE_LABELS = {
    "invited": "已邀请", "accepted": "已同意", "declined": "已谢绝", "confirmed": "已确认", "excluded": "未确认",
    "submitted": "待审", "district_approved": "区县已审", "approved": "已批准", "rejected": "已驳回",
    "withdrawn": "已撤回", "running": "运行中", "suspended": "已暂停", "disqualified": "已取消", "exited": "已退出",
    "pending": "待办", "registered": "已注册", "exempt": "免于注册(代采)", "signed": "已签订", "terminated": "已终止",
    "batch_open": "批次-收集中", "batch_declared": "批次-审核中", "batch_matured": "批次-已成熟",
    "batch_running": "批次-运行中",
}

# Continuous review (issue #14): the compliance rules, a violation's states, and the audit actions of the pass.
# `models.compliance.codes` builds its enum-keyed maps from these; a test checks every code has its label.
VIOLATION_RULE_LABELS = {
    "supply_above_winning_price": "供货价高于中选价",
    "late_delivery": "超时配送",
    "delivery_pattern": "企业多次超时或拒绝配送",
    "late_payment": "货款逾期未结清",
    "overdue_interview": "逾期结算超过期限（约谈对象）",
    "sale_price": "销售价格不符合价格政策",
    "online_offline_price": "线上线下价格不一致",
    "too_few_drugs": "配备品种数量不足",
    "recommended_share": "推荐配备品种占比不足",
    "special_drug": "非特药定点机构配备特药",
    "early_exit": "参加时间未满最短年限",
    "late_price_report": "未按期申报全国最低价",
    "no_sales": "挂网产品一年无销售（建议关闭）",
    "price_alert_red": "红色价格预警",
    "price_alert_yellow": "黄色价格预警",
    "price_alert_blue": "蓝色价格预警",
    "late_quarterly_report": "季度统计逾期未报",
}
VIOLATION_STATE_LABELS = {"open": "未整改", "closed": "已消除"}
AUDIT_ACTION_LABELS = {"violation_opened": "发现违规", "violation_closed": "违规已消除"}
