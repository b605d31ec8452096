"""The reason of an audit row or a list version as people read it: Chinese only (issue #19).

New rows are written in Chinese; rows written before that keep their English words, so the few the
system itself wrote are translated here, and a bilingual message ("中文 / English") shows its Chinese half.
"""

from __future__ import annotations

import re

LEGACY_REASONS = {
    "overdue after the window closed": "申报窗口关闭后逾期未决定，未决定的申请转入下一批",
    "scheduled republication": "定期重新发布",
    "set-up": "初始化",
}
_GATE = re.compile(r"^gate (\d+)$")


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
        return text.split(" / ")[0]
    return text
