"""What a person decides on at the gates that are not application reviews, with validation findings.

- declaration review: the enterprise, its declared products, the import's findings and what the
  enterprise's record says (barred, not active, no commitment letter);
- list approval: the difference between the last published drug list and the one this gate would
  publish, entry by entry, and whether the list changed since the gate opened (then it cannot be
  approved: tasks.gates.effects refuses it);
- alliance confirmation: every invitation and its answer; the items are the cities that accepted.

Findings are dicts shaped like the importer's (`column`, `value`, `message`), so one template shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
from models.program import AllianceInvitation, Program
from models.states import EnterpriseState, InvitationState, ListKind

Finding = dict[str, Any]


@dataclass
class DeclarationDetail:
    declaration: EnterpriseDeclaration
    enterprise: Enterprise
    products: list[tuple[Product, bool]]  # (product, recommended)
    findings: list[Finding]
    outcome: dict[str, Any] | None


def declaration_detail(session: Session, declaration_id: int, today: date,
                       outcomes: dict[str, Any]) -> DeclarationDetail | None:
    decl = session.get(EnterpriseDeclaration, declaration_id)
    if decl is None:
        return None
    enterprise = session.get(Enterprise, decl.enterprise_id)
    assert enterprise is not None
    products = [(p, bool(rec)) for p, rec in session.exec(
        select(Product, DeclarationItem.recommended)
        .join(DeclarationItem, col(DeclarationItem.product_id) == col(Product.id))
        .where(DeclarationItem.declaration_id == declaration_id).order_by(col(Product.drug_code))).all()]
    findings: list[Finding] = [dict(f) for f in decl.findings]
    if enterprise.state != EnterpriseState.ACTIVE:
        findings.append({"column": "企业状态", "value": enterprise.state.value,
                         "message": "企业当前不是正常状态（禁入、退出或取消资格），请核实是否可以纳入"})
    if enterprise.barred_until is not None and enterprise.barred_until >= today:
        findings.append({"column": "禁入期", "value": str(enterprise.barred_until),
                         "message": f"企业因不良记录禁入至 {enterprise.barred_until}"})
    if not decl.commitment_signed:
        findings.append({"column": "承诺函", "value": "未签署", "message": "企业未签署供应承诺函"})
    if not products:
        findings.append({"column": "申报品种", "value": "0", "message": "申报中没有品种"})
    if not enterprise.email:
        findings.append({"column": "电子邮箱", "value": "", "message": "企业没有邮箱，审核结果需电话或书面通知"})
    return DeclarationDetail(decl, enterprise, products, findings, outcomes.get(str(declaration_id)))


@dataclass(frozen=True)
class ListChange:
    change: str  # added / removed / changed
    key: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @property
    def changed_fields(self) -> list[str]:
        if self.old is None or self.new is None:
            return []
        return sorted(k for k in self.new.keys() | self.old.keys() if self.new.get(k) != self.old.get(k))


@dataclass
class ListApprovalDetail:
    previous_number: int | None
    entries: int
    counts: dict[str, int]
    changes: list[ListChange]  # every change, sorted (added, changed, removed; by key)
    stale: bool  # the list changed after the gate opened: approving it would be refused
    findings: list[Finding] = field(default_factory=list)
    published_number: int | None = None  # a decided gate: the version its approval published (None: not found)


def _sorted_changes(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[ListChange]:
    from tasks.lists.versions import diff_entries

    order = {"added": 0, "changed": 1, "removed": 2}
    return sorted((ListChange(kind, key, old.get(key), new.get(key)) for kind, keys in diff_entries(old, new).items()
                   for key in keys), key=lambda c: (order[c.change], c.key))


def decided_list_approval_detail(session: Session, program: Program, natural_key: str) -> ListApprovalDetail | None:
    """What a decided list approval approved: the version its content became against the one before it.

    Computing today's list against the latest version (what an open gate shows) would read "no change" once the
    approved list is published; the gate's key names the content's hash, so the version is found by it. None
    when no version has that content (a rejected list was never published).
    """
    from models.catalog import ListVersion, list_gate_key
    from tasks.lists.versions import version_entries

    assert program.id is not None
    versions = session.exec(select(ListVersion).where(ListVersion.program_id == program.id,
                                                      ListVersion.kind == ListKind.DRUGS)
                            .order_by(col(ListVersion.number))).all()
    for i, version in enumerate(versions):
        if version.id is not None and list_gate_key(program.slug, version.content_hash) == natural_key:
            before = versions[i - 1] if i > 0 else None
            new = version_entries(session, version.id)
            old = version_entries(session, before.id) if before is not None and before.id is not None else {}
            changes = _sorted_changes(old, new)
            counts = {k: sum(c.change == k for c in changes) for k in ("added", "changed", "removed")}
            return ListApprovalDetail(before.number if before else None, len(new), counts, changes, False, [],
                                      published_number=version.number)
    return None


def list_approval_detail(session: Session, program: Program, natural_key: str) -> ListApprovalDetail:
    from models.catalog import list_gate_key
    from tasks.lists.versions import content_hash, diff_entries, drug_entries, latest_version, version_entries

    assert program.id is not None
    entries = drug_entries(session, program.id)
    latest = latest_version(session, program.id, ListKind.DRUGS)
    old = version_entries(session, latest.id) if latest is not None and latest.id is not None else {}
    diff = diff_entries(old, entries)
    order = {"added": 0, "changed": 1, "removed": 2}
    changes = sorted((ListChange(kind, key, old.get(key), entries.get(key)) for kind, keys in diff.items()
                      for key in keys), key=lambda c: (order[c.change], c.key))
    stale = list_gate_key(program.slug, content_hash(entries)) != natural_key
    findings: list[Finding] = []
    if stale:
        findings.append({"column": "清单内容", "value": "", "message": "送审后清单内容已变化：本审批事项不能再批准，"
                                                                      "系统会为新内容另开审批事项"})
    price = "中选价(元)"
    for c in changes:
        if c.change == "changed" and c.old and c.new and c.old.get(price) != c.new.get(price):
            findings.append({"column": price, "value": c.key,
                             "message": f"{c.new.get('产品名称', '')} 中选价由 {c.old.get(price)} 变为 {c.new.get(price)}"})
        if c.change == "removed":
            findings.append({"column": "移除", "value": c.key,
                             "message": f"{(c.old or {}).get('产品名称', '')} 将从清单中移除（企业退出或被取消资格）"})
    return ListApprovalDetail(latest.number if latest else None, len(entries),
                              {k: len(v) for k, v in diff.items()}, changes, stale, findings)


@dataclass
class InvitationRow:
    invitation: AllianceInvitation
    is_item: bool  # the manager decides on it (it accepted)
    outcome: dict[str, Any] | None
    findings: list[Finding]


def alliance_detail(session: Session, program_id: int, items: list[int],
                    outcomes: dict[str, Any]) -> list[InvitationRow]:
    rows = []
    wanted = set(items)
    for inv in session.exec(select(AllianceInvitation).where(AllianceInvitation.program_id == program_id)
                            .order_by(col(AllianceInvitation.id))):
        findings: list[Finding] = []
        if inv.state == InvitationState.INVITED:
            findings.append({"column": "答复", "value": "", "message": "尚未答复"})
        if inv.state == InvitationState.DECLINED:
            findings.append({"column": "答复", "value": "谢绝", "message": "该市谢绝加入联盟"})
        if not inv.email:
            findings.append({"column": "电子邮箱", "value": "", "message": "没有邮箱：邀请函需另行送达"})
        assert inv.id is not None
        rows.append(InvitationRow(inv, inv.id in wanted, outcomes.get(str(inv.id)), findings))
    return rows
