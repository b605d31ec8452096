"""The server's own confirmation before a bulk decision: a page that names the count and the items, with 确认/返回.

Issue #19 asks for "a confirmation naming the count before any bulk decision". The script (web/static/app.js)
asks with the browser's dialog and, once the person agrees, marks the form `confirm=given`; a browser without
JavaScript posts `confirm=ask` (the forms' default), and the decision handlers answer with this page instead of
deciding. Its form repeats the choice (the same bulk button, reason, page items and gates) with `confirm=given`,
so 确认 decides exactly what was asked and 返回 decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from models.catalog import Enterprise, EnterpriseDeclaration
from models.enforcement import EnterpriseExit
from models.enrollment import Application, Gate, Institution
from models.gate_decisions import decided_ids
from models.labels import GATE_KIND_LABELS
from models.program import AllianceInvitation
from models.states import GateKind

NAMED = 200  # items named on the page; the count covers all of them
BULK_CHOICES = ("approve", "reject", "approve_page", "reject_page")
KEPT_FIELDS = ("bulk", "reason", "page_item", "gate", "bad_record", "back")  # what 确认 posts again


def wants_confirmation(form: FormData) -> bool:
    """A bulk choice from a page whose script did not ask (`confirm=ask`, the forms' default): this page asks.

    A post without the field (the CLI's tests, a client of its own) is not a page's button and is decided as posted.
    """
    return form.get("bulk") in BULK_CHOICES and form.get("confirm") == "ask"


def verb(form: FormData) -> str:
    return "驳回" if str(form.get("bulk") or "").startswith("reject") else "批准"


@dataclass(frozen=True)
class GateChoice:
    """One gate of a bulk choice: its title and kind, how many items the choice decides and the first ones' names."""

    title: str
    kind: str
    district: str
    count: int
    names: list[str]


def item_names(session: Session, gate: Gate, ids: list[int], limit: int | None = NAMED) -> list[str]:
    """What a person calls the gate's first `limit` items: institutions, enterprises, cities, ladders — not numbers."""
    ids = ids[:limit]
    if not ids:
        return []
    if gate.kind in (GateKind.DISTRICT_REVIEW, GateKind.CITY_REVIEW):
        rows = session.exec(select(Application.id, Institution.name, Institution.district)
                            .join(Institution, col(Institution.id) == col(Application.institution_id))
                            .where(col(Application.id).in_(ids))).all()
        found = {i: f"{name}（{district}）" for i, name, district in rows}
    elif gate.kind == GateKind.DECLARATION_REVIEW:
        found = {i: f"{name}的品种申报" for i, name in session.exec(
            select(EnterpriseDeclaration.id, Enterprise.name)
            .join(Enterprise, col(Enterprise.id) == col(EnterpriseDeclaration.enterprise_id))
            .where(col(EnterpriseDeclaration.id).in_(ids))).all()}
    elif gate.kind == GateKind.ALLIANCE_CONFIRMATION:
        found = {i: f"{city}（{bureau}）" for i, city, bureau in session.exec(
            select(AllianceInvitation.id, AllianceInvitation.city, AllianceInvitation.bureau)
            .where(col(AllianceInvitation.id).in_(ids))).all()}
    elif gate.kind == GateKind.ENFORCEMENT:
        from tasks.enforcement.views import ladder_rows

        found = {r.id: f"{r.subject}：{r.rule}（{r.state}）"
                 for r in ladder_rows(session, gate.program_id, "", case_ids=ids)}
    elif gate.kind == GateKind.ENTERPRISE_EXIT:
        found = {i: f"{name} 自 {exits_on} 起退出" for i, name, exits_on in session.exec(
            select(col(EnterpriseExit.id), col(Enterprise.name), col(EnterpriseExit.exits_on))
            .join(Enterprise, col(Enterprise.id) == col(EnterpriseExit.enterprise_id))
            .where(col(EnterpriseExit.id).in_(ids))).all()}
    else:  # a list approval or a batch: the gate is its one item
        found = {}
    return [found.get(i, gate.title) for i in ids]


def undecided(gate: Gate, form: FormData) -> list[int]:
    """The items the bulk choice would decide (pages_gates._choices's rule): every undecided one, or this page's."""
    decided = decided_ids(gate.decision)
    if str(form.get("bulk") or "").endswith("_page"):
        listed = [int(str(v)) for v in form.getlist("page_item") if str(v).isdigit()]
        return [i for i in listed if i not in decided]
    return [i for i in gate.items if i not in decided]


def choice(session: Session, gate: Gate, form: FormData) -> GateChoice:
    ids = undecided(gate, form)
    return GateChoice(gate.title, GATE_KIND_LABELS.get(gate.kind.value, "审批事项"), gate.district or "市级",
                      len(ids), item_names(session, gate, ids))


def kept(form: FormData) -> list[tuple[str, str]]:
    """The posted choice, field by field, for the confirmation form to post again."""
    return [(k, str(v)) for k, v in form.multi_items() if k in KEPT_FIELDS and isinstance(v, str)]


def context(form: FormData, gates: list[GateChoice], action: str, back: str) -> dict[str, Any]:
    total = sum(g.count for g in gates)
    return {"verb": verb(form), "gates": gates, "total": total, "action": action, "back": back,
            "fields": kept(form), "reason": str(form.get("reason") or "").strip(), "named": NAMED}
