"""The inbox and a gate's items as rows of a download: the words the pages show, in the pages' order.

Every kind of gate exports what its page shows (issue #19): an application review its applications; a declaration
review each declared product; a list approval every change of the list (a decided one: the diff it approved); an
alliance confirmation every invitation; an enforcement gate each ladder with its evidence; an exit its enterprise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session

from models.catalog import Product
from models.clock import SHANGHAI
from models.labels import (
    APPLICATION_STATE_LABELS,
    DECLARATION_STATE_LABELS,
    GATE_KIND_LABELS,
    INVITATION_STATE_LABELS,
)
from models.reasons import evidence_text
from models.states import KIND_LABELS
from web.gate_details import DeclarationDetail, InvitationRow, ListApprovalDetail
from web.queries import ApplicationItem, GateItemCache, GateSummary, ItemFilter, ItemSeek, item_page

if TYPE_CHECKING:
    from tasks.enforcement.views import LadderRow

INBOX_COLUMNS = ("审批事项", "类型", "项目", "区县", "待决定", "全部", "截止日期", "剩余工作日")
ITEM_COLUMNS = ("机构", "区县", "机构医保编码", "统一社会信用代码", "类型", "联系人", "联系电话", "承诺配备品种数",
                "销售价格承诺", "承诺年限", "校验发现", "当前状态", "本级决定", "决定人", "理由")
CHUNK = 1_000  # items read per query: a city gate holds 100,000


def inbox_cells(g: GateSummary) -> tuple[object, ...]:
    due = f"{g.due_on:%Y-%m-%d}" + ("（暂定）" if g.due_on_provisional else "")
    return (g.title, GATE_KIND_LABELS.get(g.kind.value, "审批事项"), g.program_name, g.district or "市级",
            g.undecided, g.items, due, g.due_in)


def application_chunks(engine: Engine, gate: GateSummary, show: ItemFilter, cache: GateItemCache,
                       who: Callable[[str], str] = str) -> Iterator[list[tuple[object, ...]]]:
    """Every item of the gate matching `show`, CHUNK items at a time, each chunk read by key after the last
    (web.queries.item_page), for web.exports.stream: a city gate's 100,000 items leave while they are read."""
    with Session(engine) as session:
        where = ItemSeek()
        while True:
            found = item_page(session, gate, show=show, where=where, limit=CHUNK, cache=cache)
            if found.items:
                yield [application_cells(it, who) for it in found.items]
            if found.fetched <= CHUNK or not found.keys:
                return
            where = ItemSeek(after=found.keys[-1])


def application_cells(it: ApplicationItem, who: Callable[[str], str] = str) -> tuple[object, ...]:
    """One application item as the download's row: what its row on the gate page shows."""
    a, i, o = it.application, it.institution, it.outcome
    findings = "；".join(str(f.get("message") or f) for f in a.findings)
    return (i.name, i.district, i.insurance_code, i.uscc, KIND_LABELS.get(i.kind, "其他"),
            i.contact_name, i.phone, a.committed_drug_count,
            "按中选价" if a.price_option == "at_winning_price" else "加价不超过15%",
            a.participation_years, findings, APPLICATION_STATE_LABELS.get(a.state.value, "其他"),
            ("已批准" if o.decision == "approve" else "已驳回") if o else "待决定",
            who(o.by) if o else "", (o.reason or "") if o else "")


# The other gate kinds: the rows their sections of gate.html show, with the decision on each item.

def _outcome(outcome: dict[str, Any] | None, who: Callable[[str], str]) -> tuple[str, str, str]:
    """决定, 决定人, 理由 of one item (an item the gate page shows as 待决定 has none)."""
    if not outcome:
        return ("待决定", "", "")
    return ("已批准" if outcome.get("decision") == "approve" else "已驳回", who(str(outcome.get("by") or "")),
            str(outcome.get("reason") or ""))


def _findings(findings: list[dict[str, Any]]) -> str:
    return "；".join(f"{f.get('column') or ''}{'“' + str(f['value']) + '”' if f.get('value') else ''}："
                    f"{f.get('message') or ''}" for f in findings)


def _at(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


DECLARATION_COLUMNS = ("企业", "统一社会信用代码", "申报状态", "提交时间", "药品统一编码", "产品名称", "剂型", "规格",
                       "中选价(元)", "批准文号", "生产企业", "类别", "特药", "推荐", "校验发现", "决定", "决定人", "理由")


def declaration_rows(declarations: list[DeclarationDetail], who: Callable[[str], str]) -> list[tuple[object, ...]]:
    """One row per declared product (an enterprise without products: one row saying so), its declaration's decision."""
    rows: list[tuple[object, ...]] = []
    for d in declarations:
        head = (d.enterprise.name, d.enterprise.uscc or "", DECLARATION_STATE_LABELS.get(d.declaration.state.value, ""),
                _at(d.declaration.submitted_at))
        tail = (_findings(d.findings), *_outcome(d.outcome, who))
        products: list[tuple[Product | None, bool]] = [*d.products] or [(None, False)]
        for p, recommended in products:
            cells = (("", "（没有申报品种）", "", "", "", "", "", "", "", "") if p is None else
                     (p.drug_code, p.name, p.dosage_form, p.spec, f"{p.winning_price:.2f}", p.approval_number,
                      p.manufacturer, p.category or "", "是" if p.is_special else "", "是" if recommended else ""))
            rows.append((*head, *cells, *tail))
    return rows


LIST_CHANGE_COLUMNS = ("变化", "药品统一编码", "产品名称", "规格", "中选价(元)", "生产企业", "变更内容", "决定", "决定人", "理由")
CHANGE_LABELS = {"added": "新增", "removed": "移除", "changed": "变更"}


def list_approval_rows(detail: ListApprovalDetail, outcome: dict[str, Any] | None,
                       who: Callable[[str], str]) -> list[tuple[object, ...]]:
    """Every change of the list the gate approves (a decided gate: the diff it approved), the gate's one decision."""
    decided = _outcome(outcome, who)
    rows: list[tuple[object, ...]] = []
    for c in detail.changes:
        e = c.new or c.old or {}
        changed = "；".join(f"{f}：{(c.old or {}).get(f, '')} → {(c.new or {}).get(f, '')}" for f in c.changed_fields)
        rows.append((CHANGE_LABELS[c.change], c.key, e.get("产品名称", ""), e.get("规格", ""), e.get("中选价(元)", ""),
                     e.get("生产企业", ""), changed, *decided))
    return rows


ALLIANCE_COLUMNS = ("城市", "医保局", "邮箱", "答复", "邀请时间", "答复时间", "校验发现", "决定", "决定人", "理由")


def alliance_rows(invitations: list[InvitationRow], who: Callable[[str], str]) -> list[tuple[object, ...]]:
    return [(r.invitation.city, r.invitation.bureau, r.invitation.email or "",
             INVITATION_STATE_LABELS.get(r.invitation.state.value, ""), _at(r.invitation.invited_at),
             _at(r.invitation.responded_at), _findings(r.findings),
             *(_outcome(r.outcome, who) if r.is_item else ("不在本次确认范围", "", "")))
            for r in invitations]


LADDER_COLUMNS = ("对象", "区县", "违规或立案理由", "发现日期", "证据", "进度", "整改期限", "决定", "决定人", "理由")


def ladder_export_rows(ladders: list[LadderRow], outcomes: dict[str, Any],
                       who: Callable[[str], str]) -> list[tuple[object, ...]]:
    return [(r.subject, r.district or "", r.rule, f"{r.detected_on:%Y-%m-%d}",
             evidence_text(r.evidence), r.state,
             f"{r.due_on:%Y-%m-%d}" + ("（暂定）" if r.due_provisional else "") if r.due_on else "",
             *_outcome(outcomes.get(str(r.id)), who)) for r in ladders]


OTHER_COLUMNS = ("事项", "决定", "决定人", "理由")


def other_rows(names: list[str], ids: list[int], outcomes: dict[str, Any],
               who: Callable[[str], str]) -> list[tuple[object, ...]]:
    """An exit or a batch gate: each item by its name (web/bulk_confirm.item_names) and its decision."""
    return [(name, *_outcome(outcomes.get(str(i)), who)) for name, i in zip(names, ids, strict=True)]
