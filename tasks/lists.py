"""Computing the public lists and keeping their versions: a new version only when content changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import func, insert
from sqlmodel import Session, select

from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, ListEntry, ListVersion, Product
from models.clock import Clock
from models.enrollment import Application, Batch, Institution
from models.program import Program
from models.program_definition import ProgramDefinition
from models.states import (
    CATEGORY_LABELS,
    KIND_LABELS,
    ApplicationState,
    DeclarationState,
    EnterpriseState,
    ListKind,
    category_of,
)

ListName = Literal["drugs", "recommended", "institutions"]

DRUG_COLUMNS = ("药品统一编码", "产品名称", "剂型", "规格", "转换比", "最小制剂单位", "最小包装单位", "包装材质",
                "生产企业", "投标企业", "中选价(元)", "批准文号", "类别", "特药")
INSTITUTION_COLUMNS = ("机构医保编码", "单位名称", "所属区县", "机构类别", "机构性质", "单位地址", "联系电话",
                       "批次", "三进标识")


def drug_entries(session: Session, program_id: int, recommended_only: bool = False) -> dict[str, dict[str, Any]]:
    """Products of accepted declarations of active enterprises, keyed by drug code."""
    query = (
        select(Product, DeclarationItem.recommended)
        .join(DeclarationItem, DeclarationItem.product_id == Product.id)  # type: ignore[arg-type]
        .join(EnterpriseDeclaration, EnterpriseDeclaration.id == DeclarationItem.declaration_id)  # type: ignore[arg-type]
        .join(Enterprise, Enterprise.id == Product.enterprise_id)  # type: ignore[arg-type]
        .where(EnterpriseDeclaration.program_id == program_id,
               EnterpriseDeclaration.state == DeclarationState.ACCEPTED,
               Enterprise.state == EnterpriseState.ACTIVE)
    )
    if recommended_only:
        query = query.where(DeclarationItem.recommended == True)  # noqa: E712 - SQL comparison
    out: dict[str, dict[str, Any]] = {}
    for product, _recommended in session.exec(query).all():
        out[product.drug_code] = dict(zip(DRUG_COLUMNS, (
            product.drug_code, product.name, product.dosage_form, product.spec, product.conversion_ratio,
            product.min_unit, product.package_unit, product.package_material, product.manufacturer,
            product.bidder, f"{product.winning_price:.2f}", product.approval_number, product.category or "",
            "是" if product.is_special else "否"), strict=True))
    return out


def institution_entries(session: Session, program_id: int) -> dict[str, dict[str, Any]]:
    """Running institutions of the program, keyed by their insurance code (published by batch)."""
    rows = session.execute(
        select(Institution, Batch.number)
        .join(Application, Application.institution_id == Institution.id)  # type: ignore[arg-type]
        .join(Batch, Batch.id == Application.batch_id)  # type: ignore[arg-type]
        .where(Application.program_id == program_id, Application.state == ApplicationState.RUNNING)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for inst, batch_no in rows:
        out[inst.insurance_code] = dict(zip(INSTITUTION_COLUMNS, (
            inst.insurance_code, inst.name, inst.district, KIND_LABELS[inst.kind],
            CATEGORY_LABELS[category_of(inst.kind)], inst.address, inst.phone, f"第{batch_no}批", "三进"),
            strict=True))
    return out


def content_hash(entries: Mapping[str, Mapping[str, Any]]) -> str:
    blob = json.dumps(sorted(entries.items()), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def diff_entries(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Keys added, removed and changed from `old` to `new`, each sorted."""
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(k for k in new.keys() & old.keys() if new[k] != old[k]),
    }


def latest_version(session: Session, program_id: int, kind: ListKind) -> ListVersion | None:
    return session.exec(
        select(ListVersion).where(ListVersion.program_id == program_id, ListVersion.kind == kind)
        .order_by(ListVersion.number.desc())  # type: ignore[attr-defined]
    ).first()


def version_entries(session: Session, version_id: int) -> dict[str, dict[str, Any]]:
    rows = session.execute(select(ListEntry.key, ListEntry.data).where(ListEntry.version_id == version_id)).all()
    return {key: data for key, data in rows}


def compute_entries(session: Session, program_id: int, kind: ListKind) -> dict[str, dict[str, Any]]:
    if kind == ListKind.INSTITUTIONS:
        return institution_entries(session, program_id)
    return drug_entries(session, program_id, recommended_only=kind == ListKind.RECOMMENDED)


def publish_list(
    session: Session,
    program: Program,
    defn: ProgramDefinition,
    kind: ListName | ListKind,
    *,
    clock: Clock,
    actor: str = "system",
    reason: str | None = None,
) -> ListVersion | None:
    """Write a new version if the list changed since the latest one; None when unchanged.

    Publishing the drug list also publishes the recommended list where the program has one.
    """
    kind = ListKind(kind)
    assert program.id is not None
    if kind == ListKind.DRUGS and defn.rules.has_recommended_list:
        publish_list(session, program, defn, ListKind.RECOMMENDED, clock=clock, actor=actor, reason=reason)
    entries = compute_entries(session, program.id, kind)
    digest = content_hash(entries)
    latest = latest_version(session, program.id, kind)
    if (latest is not None and latest.content_hash == digest) or (latest is None and not entries):
        return None  # unchanged, or nothing to publish yet
    old = version_entries(session, latest.id) if latest is not None and latest.id is not None else {}
    diff = diff_entries(old, entries)
    number = (session.exec(select(func.max(ListVersion.number)).where(
        ListVersion.program_id == program.id, ListVersion.kind == kind)).one() or 0) + 1
    version = ListVersion(program_id=program.id, kind=kind, number=number, content_hash=digest,
                          entry_count=len(entries), added=len(diff["added"]), removed=len(diff["removed"]),
                          changed=len(diff["changed"]), diff=diff, reason=reason, published_at=clock.now(),
                          published_by=actor)
    session.add(version)
    session.flush()
    if entries:
        session.execute(insert(ListEntry), [{"version_id": version.id, "key": k, "data": v} for k, v in entries.items()])
    return version
