"""The inbox and an application gate's items as rows of a download: the words the pages show, in the pages' order."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from models.labels import APPLICATION_STATE_LABELS, GATE_KIND_LABELS
from models.states import KIND_LABELS
from web.queries import GateItemCache, GateSummary, ItemFilter, application_items

INBOX_COLUMNS = ("审批事项", "类型", "项目", "区县", "待决定", "全部", "截止日期", "剩余工作日")
ITEM_COLUMNS = ("机构", "区县", "机构医保编码", "统一社会信用代码", "类型", "联系人", "联系电话", "承诺配备品种数",
                "销售价格承诺", "承诺年限", "校验发现", "当前状态", "本级决定", "决定人", "理由")
CHUNK = 1_000  # items read per query: a city gate holds 100,000


def inbox_cells(g: GateSummary) -> tuple[object, ...]:
    due = f"{g.due_on:%Y-%m-%d}" + ("（暂定）" if g.due_on_provisional else "")
    return (g.title, GATE_KIND_LABELS.get(g.kind.value, "审批事项"), g.program_name, g.district or "市级",
            g.undecided, g.items, due, g.due_in)


def application_rows(session: Session, gate: GateSummary, show: ItemFilter, cache: GateItemCache,
                     who: Callable[[str], str] = str) -> list[tuple[object, ...]]:
    """Every item of the gate matching `show`, a chunk of items at a time; `who` names a reviewer."""
    rows: list[tuple[object, ...]] = []
    offset = 0
    while True:
        items, _, more = application_items(session, gate, show=show, offset=offset, limit=CHUNK, cache=cache)
        for it in items:
            a, i, o = it.application, it.institution, it.outcome
            findings = "；".join(str(f.get("message") or f) for f in a.findings)
            rows.append((i.name, i.district, i.insurance_code, i.uscc, KIND_LABELS.get(i.kind, "其他"),
                         i.contact_name, i.phone, a.committed_drug_count,
                         "按中选价" if a.price_option == "at_winning_price" else "加价不超过15%",
                         a.participation_years, findings, APPLICATION_STATE_LABELS.get(a.state.value, "其他"),
                         ("已批准" if o.decision == "approve" else "已驳回") if o else "待决定",
                         who(o.by) if o else "", (o.reason or "") if o else ""))
        if not more:
            return rows
        offset += CHUNK
