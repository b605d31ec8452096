"""The reason of an audit row or a list version as people read it: Chinese only (issue #19).

New rows are written in Chinese; rows written before that keep their English words, so the few the
system itself wrote are translated here, and a bilingual message ("中文 / English") shows its Chinese half.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

LEGACY_REASONS = {
    "overdue after the window closed": "申报窗口关闭后逾期未决定，未决定的申请转入下一批",
    "scheduled republication": "定期重新发布",
    "set-up": "初始化",
}
_GATE = re.compile(r"^gate (\d+)$")
_INSTANT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local(match: re.Match[str]) -> str:
    try:
        at = datetime.fromisoformat(match.group(0).replace("Z", "+00:00"))
    except ValueError:
        return match.group(0)
    return (at.astimezone(_SHANGHAI) if at.tzinfo else at).strftime("%Y-%m-%d %H:%M")


def readable_instants(text: str) -> str:
    """'2025-09-24T09:00:00+08:00' → '2025-09-24 09:00' (Shanghai): evidence keeps instants as ISO text for
    machines; people read them the way every page writes a time."""
    return _INSTANT.sub(_local, text)


def evidence_text(evidence: Mapping[str, Any] | None) -> str:
    """A violation's evidence as one line people read: '超时订单数：10；统计起点：2025-09-24 09:00；阈值：3'."""
    return "；".join(f"{k}：{readable_instants(str(v))}" for k, v in (evidence or {}).items())


def reason_text(reason: str | None) -> str:
    """'' for none; a legacy system reason in Chinese; 'gate 51' as 审批事项 51; the Chinese half of '中 / en'."""
    if not reason:
        return ""
    text = reason.strip()
    if text in LEGACY_REASONS:
        return LEGACY_REASONS[text]
    if m := _GATE.match(text):
        return f"经审批事项（第{m.group(1)}号）"
    if " / " in text and re.search(r"[\u4e00-\u9fff]", text.split(" / ")[0]):
        return readable_instants(text.split(" / ")[0])
    return readable_instants(text)
