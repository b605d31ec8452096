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
    # the enforcement ladder (models/enforcement.py LADDER_LABELS has the long forms)
    "proposed": "待约谈", "interviewed": "已约谈", "rectifying": "限期整改中", "suspension_due": "待决定暂停",
    "disqualification_due": "待决定取消资格", "cured": "已整改到位", "dropped": "不再处理", "barred": "禁止申报",
}
