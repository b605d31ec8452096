"""Realistic contexts for every notice kind (Shenyang 2025 program), shared by the tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

PROGRAM = "沈阳市集采药品“三进”工作（2025）"

COMMON: dict[str, Any] = {"program_name": PROGRAM, "today": "2025-10-09"}

SAMPLES: dict[str, dict[str, Any]] = {
    "alliance_invitation": {
        "recipient_name": "大连市医疗保障局",
        "city": "大连市",
        "bureau": "大连市医疗保障局",
        "lead_city": "沈阳市",
        "response_due": "2025-08-15",
        "response_due_provisional": False,
        "today": "2025-08-07",
    },
    "declaration_receipt": {
        "recipient_name": "王丽（申报联系人）",
        "enterprise_name": "石药集团欧意药业有限公司",
        "declaration_id": "SY2025-DEC-0042",
        "product_count": 7,
        "submitted_on": "2025-08-21",
    },
    "declaration_decision": {
        "recipient_name": "王丽（申报联系人）",
        "enterprise_name": "石药集团欧意药业有限公司",
        "declaration_id": "SY2025-DEC-0042",
        "decision": "reject",
        "reason": "部分品种中选价高于承诺价格，请核对后重新申报",
        "items": [
            {"drug_code": "XC08CAA040A001010101453", "name": "苯磺酸氨氯地平片", "decision": "approve",
             "reason": None},
            {"drug_code": "XA10BAD083A001010104007", "name": "盐酸二甲双胍缓释片", "decision": "reject",
             "reason": "中选价与国家集采结果不一致"},
        ],
    },
    "application_receipt": {
        "recipient_name": "张伟",
        "institution_name": "沈阳市和平区南湖社区卫生服务中心",
        "application_id": "SY2025-APP-01234",
        "district": "和平区",
        "submitted_on": "2025-09-12",
    },
    "application_decision": {
        "recipient_name": "李娜",
        "institution_name": "沈阳老百姓大药房连锁有限公司铁西店",
        "application_id": "SY2025-APP-02001",
        "decision": "reject",
        "level": "district",
        "district": "铁西区",
        "reason": "承诺函缺少法定代表人签字",
        "can_reapply": True,
    },
    "batch_published": {
        "recipient_name": "张伟",
        "batch_number": 1,
        "institution_name": "沈阳市和平区南湖社区卫生服务中心",
        "published_on": "2025-09-30",
        "list_url": "https://ybj.shenyang.example.gov.cn/sanjin/lists/institutions/v1.html",
    },
    "account_reminder": {
        "recipient_name": "赵敏",
        "institution_name": "沈阳康宁医院",
        "due_on": "2025-11-28",
        "due_provisional": False,
        "working_days_left": 3,
    },
    "contract_reminder": {
        "recipient_name": "赵敏",
        "institution_name": "沈阳康宁医院",
        "enterprise_names": ["扬子江药业集团有限公司", "齐鲁制药有限公司"],
        "due_provisional": True,
        "due_on": "2025-11-28",
        "working_days_left": 0,
    },
    "payment_due": {
        "recipient_name": "周杰",
        "institution_name": "沈阳市于洪区益康诊所",
        "amount": Decimal("1234.50"),
        "due_provisional": False,
        "due_on": "2025-11-30",
        "order_count": 3,
    },
    "payment_overdue": {
        "recipient_name": "周杰",
        "institution_name": "沈阳市于洪区益康诊所",
        "amount": "56789.1",
        "due_on": "2025-08-31",
        "due_provisional": False,
        "months_overdue": 3,
    },
    "quarterly_report_reminder": {
        "recipient_name": "沈阳市皇姑区医疗保障局",
        "year": 2025,
        "quarter": 4,
        "due_on": "2026-01-31",
        "today": "2026-01-05",
    },
    "summary_report": {
        "recipient_name": "宁夏回族自治区医疗保障局价采处",
        "year": 2026,
        "version": 1,
        "generated_on": "2026-12-28",
        "attachments": [{"report_version_id": 9, "format": "xlsx", "filename": "ningxia-2025-2026-summary-v1.xlsx",
                         "content_type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}],
        "today": "2026-12-28",
    },
    "quarterly_report": {
        "recipient_name": "宁夏回族自治区医疗保障局价采处",
        "year": 2026,
        "quarter": 1,
        "quarter_label": "2026年第1季度（2026-01-01至2026-03-31）",
        "version": 2,
        "generated_on": "2026-04-20",
        "attachments": [{"report_version_id": 7, "format": "xlsx", "filename": "ningxia-2025-2026Q1-quarterly-v2.xlsx",
                         "content_type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}],
        "today": "2026-04-20",
    },
    "enforcement_notice": {
        "recipient_name": "周杰",
        "subject_name": "沈阳市于洪区益康诊所",
        "action": "interview",
        "reason": "集采药品货款逾期超过2个月未结算",
        "effective_on": "2025-12-05",
    },
    "escalation": {
        "recipient_name": "刘洋",
        "reviewer_name": "刘洋",
        "district": "铁西区",
        "items": [
            {"name": "沈阳康宁医院", "what": "招采子系统账号注册", "due_on": "2025-11-28", "due_provisional": False,
             "days_late": 4},
            {"name": "沈阳市铁西区兴华社区卫生服务站", "what": "购销协议签订", "due_on": "2025-11-28",
             "due_provisional": False, "days_late": 4},
        ],
    },
    "audit_chain_broken": {
        "recipient_name": "王经理",
        "manager_name": "王经理",
        "problem": "项目链第 21 条（审计记录 #4512）内容被改动",
        "checked_on": "2025-12-01",
    },
    "calendar_unpublished": {
        "recipient_name": "王经理",
        "manager_name": "王经理",
        "year": 2027,
    },
    "gate_waiting": {
        "recipient_name": "刘洋",
        "reviewer_name": "刘洋",
        "gate_title": "铁西区第1批“三进”医药机构申请初审",
        "item_count": 37,
        "due_on": "2025-09-26",
        "due_provisional": False,
        "stage": "before",
    },
    "gate_overdue": {
        "recipient_name": "王经理",
        "manager_name": "王经理",
        "items": [
            {"title": "第3批 康平县 医药机构申请初审", "item_count": 16, "deciders": "康平县医疗保障局 李审核",
             "due_on": "2025-10-09", "due_provisional": False, "days_overdue": 5},
        ],
    },
}


def sample(kind: str) -> dict[str, Any]:
    """A fresh copy, so a test may change it."""
    return {**COMMON, **SAMPLES[kind]}
