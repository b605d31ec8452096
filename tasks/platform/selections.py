"""Institutions' drug selections (选用药品): what each institution buys, and so what its contracts agree.

Kept apart from the platform exports because selections are values, not forward-only states: a
file may correct an earlier one, and tasks.platform.contracts.reconcile_contracts turns them into agreed
volumes. Only drugs on the latest published list may be selected, special drugs (特药) only by
designated institutions where the program requires it (seed 000 §三(三)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, select

from core.db import transaction
from models.clock import Clock
from models.states import ListKind
from models.transitions import AuditRecord
from models.validators import validate_drug_code, validate_price
from tasks.intake.spreadsheets import ImportRejected, RowError
from tasks.lists.versions import latest_version, version_entries
from tasks.platform.context import (
    PROD,
    SEL,
    SYSTEM,
    Ctx,
    chunks,
    flush_audit,
    insert_audited,
    program_context,
    role_of,
    running_status,
)
from tasks.platform.files import (
    Cells,
    Inst,
    column_positions,
    institutions_by_code,
    parse_code,
    parse_volume,
    read_sheet,
    record_import,
    row_error,
    running_institution,
)

__all__ = [
    "SELECTION_COLUMNS",
    "SelectionRow",
    "SelectionsResult",
    "import_selections",
    "record_selections",
]

# Documented columns of the file; other columns are ignored.
SELECTION_COLUMNS: tuple[str, ...] = ("机构医保编码", "药品统一编码", "销售价格(元)", "年采购量")


@dataclass(frozen=True)
class SelectionRow:
    """One drug an institution selects; ``row`` is the spreadsheet row (0 when not from a file)."""

    insurance_code: str
    drug_code: str
    sale_price: Decimal | None
    annual_volume: int
    row: int = 0


@dataclass
class SelectionsResult:
    rows: int
    created: int
    updated: int
    unchanged: int
    import_id: int | None = None


@dataclass(frozen=True)
class _Offer:
    """A drug of the published list as an institution may select it."""

    product_id: int
    name: str
    special: bool


def _published_offers(ctx: Ctx, codes: Sequence[str]) -> dict[str, _Offer] | None:
    """The latest published drug list's entries for `codes`, with their product; None if unpublished.

    The list is keyed by drug code; when two enterprises declared one code the product is the one
    whose bidder, manufacturer and winning price match the published entry.
    """
    version = latest_version(ctx.session, ctx.program_id, ListKind.DRUGS)
    if version is None or version.id is None:
        return None
    entries = version_entries(ctx.session, version.id)
    wanted = sorted({c for c in codes if c in entries})
    products: dict[str, list[Any]] = {}
    for chunk in chunks(wanted):
        for r in ctx.session.execute(select(PROD.c.id, PROD.c.drug_code, PROD.c.bidder, PROD.c.manufacturer,
                                            PROD.c.winning_price).where(PROD.c.drug_code.in_(chunk))
                                     .order_by(PROD.c.id)):
            products.setdefault(r.drug_code, []).append(r)
    offers: dict[str, _Offer] = {}
    for code, candidates in products.items():
        entry = entries[code]

        def matches(r: Any, entry: dict[str, Any] = entry) -> bool:
            return (r.bidder == entry.get("投标企业") and r.manufacturer == entry.get("生产企业")
                    and f"{r.winning_price:.2f}" == entry.get("中选价(元)"))

        chosen = next((r for r in candidates if matches(r)), candidates[0])
        offers[code] = _Offer(int(chosen.id), str(entry.get("产品名称", code)), entry.get("特药") == "是")
    return offers


def _record(ctx: Ctx, rows: Sequence[SelectionRow], actor: str) -> tuple[SelectionsResult, list[RowError]]:
    """Validate every row against the list and the institution, then upsert; nothing written on error."""
    errors: list[RowError] = []
    offers = _published_offers(ctx, [r.drug_code for r in rows])
    if offers is None:
        return SelectionsResult(len(rows), 0, 0, 0), [row_error(
            0, "药品统一编码", "", "drug_list.unpublished", "本项目尚未公布“三进”药品清单，暂不能选用药品",
            "the program's drug list is not published yet: nothing can be selected")]
    insts = institutions_by_code(ctx, [r.insurance_code for r in rows])
    running = running_status(ctx, [i.id for i in insts.values()])
    need_designation = ctx.defn.rules.special_drugs_need_designation
    seen: dict[tuple[str, str], int] = {}
    good: list[tuple[SelectionRow, Inst, _Offer]] = []
    for r in rows:
        inst = running_institution(ctx, r.row, r.insurance_code, insts, running, errors)
        offer = offers.get(r.drug_code)
        if offer is None:
            errors.append(row_error(r.row, "药品统一编码", r.drug_code, "selection.not_on_list",
                                    "该药品不在本项目最新公布的“三进”药品清单中",
                                    "this drug is not on the program's published drug list"))
        if r.annual_volume < 0:
            errors.append(row_error(r.row, "年采购量", str(r.annual_volume), "int.negative", "年采购量不能为负数",
                                    "the annual volume cannot be negative"))
        if r.sale_price is not None and r.sale_price <= 0:
            errors.append(row_error(r.row, "销售价格(元)", str(r.sale_price), "price.not_positive", "销售价格应大于0",
                                    "the sale price must be above zero"))
        if inst is None or offer is None:
            continue
        if offer.special and need_designation and not inst.special_designated:
            errors.append(row_error(r.row, "药品统一编码", r.drug_code, "selection.special_needs_designation",
                                    f"“{offer.name}”是特药，只有特药定点机构可以选用，“{inst.name}”不是特药定点机构",
                                    f"{r.drug_code} is a special drug: only special-drug-designated institutions may "
                                    f"select it, and {r.insurance_code} is not one"))
            continue
        if (first := seen.get((r.insurance_code, r.drug_code))) is not None:
            errors.append(row_error(r.row, "药品统一编码", r.drug_code, "selection.duplicate",
                                    f"与第{first}行是同一机构的同一药品", f"the same institution and drug as row {first}"))
            continue
        seen[(r.insurance_code, r.drug_code)] = r.row
        good.append((r, inst, offer))
    if errors:
        return SelectionsResult(len(rows), 0, 0, 0), errors

    existing: dict[tuple[int, int], Any] = {}
    for chunk in chunks(sorted({inst.id for _, inst, _ in good})):
        for s in ctx.session.execute(select(SEL.c.id, SEL.c.institution_id, SEL.c.product_id, SEL.c.sale_price,
                                            SEL.c.annual_volume)
                                     .where(SEL.c.program_id == ctx.program_id, SEL.c.institution_id.in_(chunk))):
            existing[(int(s.institution_id), int(s.product_id))] = s
    new_rows: list[dict[str, Any]] = []
    updates: list[tuple[Any, SelectionRow, str]] = []
    unchanged = 0
    for r, inst, offer in good:
        current = existing.get((inst.id, offer.product_id))
        if current is None:
            new_rows.append({"program_id": ctx.program_id, "institution_id": inst.id, "product_id": offer.product_id,
                             "sale_price": r.sale_price, "annual_volume": r.annual_volume})
        elif (current.sale_price, int(current.annual_volume)) != (r.sale_price, r.annual_volume):
            updates.append((current, r, r.drug_code))
        else:
            unchanged += 1
    created = insert_audited(ctx, SEL, new_rows, ["program_id", "institution_id", "product_id"],
                             entity="selection", action="select", actor=actor,
                             data=["institution_id", "product_id", "sale_price", "annual_volume"])
    if updates:
        ctx.session.execute(
            SEL.update().where(SEL.c.id == bindparam("b_id"))
            .values(sale_price=bindparam("b_price"), annual_volume=bindparam("b_volume")),
            [{"b_id": int(cur.id), "b_price": r.sale_price, "b_volume": r.annual_volume} for cur, r, _ in updates])
        for cur, r, code in updates:
            ctx.audit.append(AuditRecord(
                entity="selection", entity_id=int(cur.id), action="update", from_state=None, to_state=None,
                actor=actor, role=role_of(actor), at=ctx.now, program_id=ctx.program_id,
                data={"drug_code": code, "row": r.row,
                      "before": {"sale_price": None if cur.sale_price is None else str(cur.sale_price),
                                 "annual_volume": int(cur.annual_volume)},
                      "after": {"sale_price": None if r.sale_price is None else str(r.sale_price),
                                "annual_volume": r.annual_volume}}))
    return SelectionsResult(len(rows), created, len(updates), unchanged), []


def record_selections(engine: Engine, slug: str, rows: list[SelectionRow], *, clock: Clock,
                      actor: str = SYSTEM, source: str = "selections") -> SelectionsResult:
    """Record institutions' drug selections, all or nothing; ImportRejected lists every bad row.

    Only drugs on the latest published drug list may be selected, and special drugs (特药 = 是)
    only by special-designated institutions where the program requires it (000 §三(三)). A row
    for an already selected drug updates its price and volume. Pending contracts pick the change
    up on the next reconcile_contracts.
    """
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        result, errors = _record(ctx, rows, actor)
        if errors:
            raise ImportRejected(source, errors)
        flush_audit(ctx)
        return result


def _price(raw: str, column: str) -> Decimal:
    return validate_price(raw, column)


def import_selections(engine: Engine, slug: str, path: Path, *, clock: Clock,
                      actor: str = SYSTEM) -> SelectionsResult:
    """Import a selections file (机构医保编码, 药品统一编码, 销售价格(元), 年采购量), all or nothing.

    Unlike the platform exports, the same bytes are applied again rather than skipped: selections
    are values, not forward-only states, and re-sending an older file is a deliberate correction.
    """
    data, sheet = read_sheet(path)
    columns = column_positions(sheet, path.name, SELECTION_COLUMNS)
    errors: list[RowError] = []
    rows: list[SelectionRow] = []
    for r in sheet.rows:
        cells = Cells(sheet, r.number, r.cells, columns)
        code = cells.take("机构医保编码", parse_code)
        drug = cells.take("药品统一编码", validate_drug_code)
        price = cells.take("销售价格(元)", _price)
        volume = cells.take("年采购量", parse_volume)
        errors.extend(cells.errors)
        if not cells.errors and code is not None and drug is not None and price is not None and volume is not None:
            rows.append(SelectionRow(code, drug, price, volume, r.number))
    if not sheet.rows:
        errors.append(row_error(sheet.header_row, "表头", "", "file.no_rows", "文件中没有数据行", "the file has no rows"))
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        result, more = _record(ctx, rows, actor)
        errors.extend(more)
        if errors:
            raise ImportRejected(path.name, errors)
        flush_audit(ctx)
        result.rows = len(sheet.rows)
        result.import_id = record_import(ctx, "selections", hashlib.sha256(data).hexdigest(), path.name,
                                         len(sheet.rows), result.created, actor)
        return result
