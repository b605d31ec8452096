"""Importing an enterprise's product table (seed 002 att.2) as a submitted declaration awaiting review.

Declarations are a few thousand products, so they keep plain row-by-row checks (every bad cell of
a row reported, not only the first) and Core inserts, unlike the column-wise bulk path of
tasks.intake.application_import.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, bindparam, select, update

from core.bulk import insert_ignoring_conflicts, table_of, write_audit
from core.db import serialize, transaction
from models.application_rules import parse_yes_no
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
from models.clock import Clock
from models.program_definition import PhaseName
from models.states import DeclarationState, EnterpriseState, Role
from models.transitions import ENTERPRISE, AuditRecord
from models.validators import (
    FieldError,
    drug_code_is_full,
    uscc_warnings,
    validate_approval_number,
    validate_drug_code,
    validate_price,
    validate_required_text,
)
from models.windows import require_open
from tasks.intake.import_files import (
    HEADER_COLUMN,
    ImportResult,
    file_error,
    header_problem,
    load_program,
    lossy_errors,
    previous_import,
    record_import,
    set_created,
    unnamed_cells,
    without_shadowed,
)
from tasks.intake.spreadsheets import (
    ImportRejected,
    RowError,
    RowWarning,
    Sheet,
    normalize_header,
    parse_upload,
    read_upload,
)
from tasks.outbox.enqueue import NoticeDraft, enqueue_notices

__all__ = [
    "DECLARATION_COLUMNS",
    "DECLARATION_OPTIONAL_COLUMNS",
    "import_declaration",
]

# The product table of seed 002 att.2 (附表 品种明细表), in its order; enterprises fill that template.
DECLARATION_COLUMNS: tuple[str, ...] = (
    "药品统一编码", "产品名称", "剂型", "规格", "转换比", "最小制剂单位",
    "最小包装单位", "包装材质", "生产企业", "投标企业", "中选价(元)", "批准文号",
)
# Added by the bureau after the 12 columns: focus category, the special-drug flag (000 §三(三)) and the
# number of winning enterprises of the drug (003 §四(一)1: it sets the agreed-volume share).
DECLARATION_OPTIONAL_COLUMNS: tuple[str, ...] = ("类别", "特药", "中选企业数")

T = TypeVar("T")


class _Row:
    """Collects a row's errors so every bad cell is reported, not only the first."""

    def __init__(self, number: int, cells: Sequence[str], columns: dict[str, int]) -> None:
        self.number = number
        self._cells = cells
        self._columns = columns
        self.errors: list[RowError] = []
        self.warnings: list[RowWarning] = []

    def raw(self, column: str) -> str:
        index = self._columns.get(column, -1)
        cells = self._cells
        return cells[index] if 0 <= index < len(cells) else ""

    def take(self, column: str, parse: Callable[[str], T]) -> T | None:
        """The parsed cell, or None after recording its FieldError against this row and column."""
        raw = self.raw(column)
        try:
            return parse(raw)
        except FieldError as exc:
            self.error(column, raw, exc)
            return None

    def error(self, column: str, value: str, exc: FieldError) -> None:
        self.errors.append(RowError(self.number, column, value, exc.message, exc.rule))

    def fail(self, column: str, value: str, rule: str, zh: str, en: str) -> None:
        self.errors.append(RowError(self.number, column, value, f"{zh} / {en}", rule))

    def warn(self, column: str, value: str, rule: str, message: str) -> None:
        self.warnings.append(RowWarning(self.number, column, value, message, rule))


def _declaration_columns(sheet: Sheet, filename: str) -> dict[str, int]:
    """Exactly the 12 columns of 002 att.2 in order, then optionally 类别 / 特药 in any order."""
    found = [normalize_header(h) for h in sheet.header]
    expected = list(DECLARATION_COLUMNS)
    head, tail = found[: len(expected)], found[len(expected) :]
    problems: list[str] = []
    if head != expected:
        missing = [c for c in expected if c not in found]
        unknown = [c for c in found if c not in expected and c not in DECLARATION_OPTIONAL_COLUMNS]
        if missing:
            problems.append(f"缺少列 missing: {'、'.join(missing)}")
        if unknown:
            problems.append(f"无法识别的列 unknown: {'、'.join(u or '（空）' for u in unknown)}")
        if not missing and not unknown:
            problems.append("列的顺序不对 / columns are out of order")
    bad_tail = [c for c in tail if c not in DECLARATION_OPTIONAL_COLUMNS]
    if head == expected and bad_tail:
        problems.append(f"无法识别的列 unknown: {'、'.join(c or '（空）' for c in bad_tail)}")
    if len(set(tail)) != len(tail):
        problems.append("列重复 / a column appears twice")
    if problems:
        raise file_error(
            filename,
            header_problem([*expected, *(f"[{c}]" for c in DECLARATION_OPTIONAL_COLUMNS)], list(sheet.header), "；".join(problems)),
            row=sheet.header_row, column=HEADER_COLUMN, value="、".join(sheet.header), rule="header.mismatch",
        )
    return {name: i for i, name in enumerate(found)}


@dataclass
class _ProductRow:
    number: int
    drug_code: str
    values: dict[str, Any]
    price: Decimal


def _approval_matches_code(drug_code: str, approval: str) -> bool:
    """Chinese patent medicines (Z codes) carry 国药准字Z numbers; western ones H, S or J."""
    letter = approval[4:5]
    return (letter == "Z") == drug_code.startswith("Z")


def _parse_product(row: _Row, focus: Sequence[str]) -> tuple[str | None, _ProductRow | None]:
    """(drug code if valid, the product if the whole row is valid); the code alone serves the duplicate check."""
    code = row.take("药品统一编码", validate_drug_code)
    texts: dict[str, str | None] = {}
    for column, key, max_len in (
        ("产品名称", "name", 200), ("剂型", "dosage_form", 64), ("规格", "spec", 100),
        ("转换比", "conversion_ratio", 32), ("最小制剂单位", "min_unit", 16),
        ("最小包装单位", "package_unit", 16), ("包装材质", "package_material", 64),
        ("生产企业", "manufacturer", 200), ("投标企业", "bidder", 200),
    ):
        texts[key] = row.take(column, partial(validate_required_text, field=column, max_len=max_len))
    price = row.take("中选价(元)", partial(validate_price, field="中选价(元)"))
    approval = row.take("批准文号", validate_approval_number)
    category_raw = row.raw("类别")
    category = unicodedata.normalize("NFKC", category_raw).strip() or None
    if category is not None and len(category) > 32:
        row.fail("类别", category_raw, "category.too_long", "类别不能超过32个字符", "at most 32 characters")
    is_special = row.take("特药", partial(parse_yes_no, field="特药", default=False))
    winners_raw = unicodedata.normalize("NFKC", row.raw("中选企业数")).strip()
    winner_count: int | None = None
    if winners_raw:
        if winners_raw.isdigit() and 1 <= int(winners_raw) <= 99:
            winner_count = int(winners_raw)
        else:
            row.fail("中选企业数", winners_raw, "winner_count.invalid", "中选企业数应为1至99的整数",
                     "the number of winning enterprises is a whole number from 1 to 99")
    if code is not None:
        if not drug_code_is_full(code):
            row.warn("药品统一编码", code, "drug_code.truncated",
                     "药品统一编码不是完整的产品级编码（西药23位/中成药20位） / "
                     "not a full product-level code (23 characters X, 20 characters Z)")
        if approval is not None and not _approval_matches_code(code, approval):
            row.warn("批准文号", approval, "approval.kind_mismatch",
                     "批准文号类别与药品统一编码不一致（中成药应为国药准字Z） / "
                     "approval number type does not match the drug code (Z codes need 国药准字Z)")
    if category is not None and category not in focus:
        row.warn("类别", category, "category.outside_focus",
                 f"类别“{category}”不在本项目重点品类（{'、'.join(focus)}）中 / "
                 f"category is not one of the program's focus categories: {', '.join(focus)}")
    if row.errors or code is None or price is None or approval is None or is_special is None:
        return code, None
    values: dict[str, Any] = {k: v for k, v in texts.items()}
    values.update(drug_code=code, winning_price=price, approval_number=approval, category=category,
                  is_special=is_special, winner_count=winner_count)
    return code, _ProductRow(row.number, code, values, price)


def import_declaration(
    engine: Engine,
    program_slug: str,
    path: Path,
    enterprise_name: str,
    *,
    clock: Clock,
    actor: str = "system",
) -> ImportResult:
    """Import one enterprise's product table (002 att.2) as a submitted declaration awaiting review.

    The enterprise is created on its first declaration because enterprises are not registered
    beforehand; products are upserted per (enterprise, drug code) so a corrected re-declaration
    updates the catalogue instead of duplicating it. Only the drug_list window accepts it, unless
    the program admits enterprises at any time (002 "即申即纳": rules.enterprise_admission rolling).
    """
    filename = path.name
    name = unicodedata.normalize("NFKC", enterprise_name).strip()
    if not name or len(name) > 200:
        raise file_error(filename, "企业名称不能为空且不超过200字 / the enterprise name is required (≤ 200 characters)",
                         column="企业名称", value=enterprise_name, rule="enterprise.name")
    data = read_upload(path)
    digest = hashlib.sha256(data).hexdigest()
    now = clock.now()
    # The same bytes are "imported before" only for the same enterprise: a second enterprise sending an identical
    # table was dropped with rc 0 and no declaration (issue #18); now it is checked and declared as its own.
    kind = f"declaration:{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    with transaction(engine) as session:
        program = load_program(session, program_slug)
        serialize(session, f"import:declaration:{program.id}")  # as applications: an overlapping file waits
        defn = program.definition
        previous = previous_import(session, kind, program.id, digest)
        if previous is not None:
            return previous
        if defn.rules.enterprise_admission != "rolling":
            require_open(defn, PhaseName.DRUG_LIST, now)

        sheet = parse_upload(data, filename)
        columns = _declaration_columns(sheet, filename)
        errors = unnamed_cells(sheet, len(sheet.header)) + lossy_errors(sheet, sheet.header)
        warnings: list[RowWarning] = []
        products: list[_ProductRow] = []
        first_row_of_code: dict[str, int] = {}
        for data_row in sheet.rows:
            row = _Row(data_row.number, data_row.cells, columns)
            code, parsed = _parse_product(row, defn.rules.focus_categories)
            if code is not None:
                first = first_row_of_code.setdefault(code, row.number)
                if first != row.number:
                    row.fail("药品统一编码", code, "drug_code.duplicate",
                             f"药品统一编码与第{first}行重复", f"duplicates row {first}")
            errors.extend(row.errors)
            warnings.extend(row.warnings)
            if parsed is not None and not row.errors:
                products.append(parsed)
        if not sheet.rows and not errors:
            errors.append(RowError(sheet.header_row, HEADER_COLUMN, "", "文件中没有药品数据 / the file has no product rows",
                                   "file.no_rows"))

        ent_t = table_of(Enterprise)
        enterprise = session.execute(
            select(ent_t.c.id, ent_t.c.uscc, ent_t.c.email, ent_t.c.state, ent_t.c.barred_until)
            .where(ent_t.c.name == name)
        ).first()
        if enterprise is not None:
            state = EnterpriseState(enterprise.state)
            barred = state is EnterpriseState.BARRED and (
                enterprise.barred_until is None or enterprise.barred_until >= clock.today()
            )
            if barred or state is EnterpriseState.DISQUALIFIED:
                until = (f"（至{enterprise.barred_until}，{enterprise.barred_until + timedelta(days=1)}起可再申报）"
                         if enterprise.barred_until else "")
                errors.append(RowError(0, "企业名称", name,
                                       f"该企业已被{'禁止参加' if barred else '取消资格'}{until}，不能申报 / "
                                       f"the enterprise is {state.value}{' until ' + str(enterprise.barred_until) if until else ''}"
                                       " and cannot declare products", "enterprise.not_active"))
            elif enterprise.uscc:
                try:
                    for message in uscc_warnings(enterprise.uscc):
                        warnings.append(RowWarning(0, "统一社会信用代码", enterprise.uscc, message, "uscc.warning"))
                except FieldError as exc:
                    warnings.append(RowWarning(0, "统一社会信用代码", enterprise.uscc, exc.message, exc.rule))
        if errors:
            raise ImportRejected(filename, without_shadowed(errors))

        # ---- everything valid: write
        import_id = record_import(session, kind, program.id, digest, filename, len(sheet.rows), actor, now)
        if import_id is None:
            previous = previous_import(session, kind, program.id, digest)
            assert previous is not None
            return previous
        if enterprise is None:
            insert_ignoring_conflicts(session, Enterprise, [{"name": name, "state": EnterpriseState.ACTIVE}], ["name"])
            enterprise = session.execute(
                select(ent_t.c.id, ent_t.c.uscc, ent_t.c.email, ent_t.c.state, ent_t.c.barred_until)
                .where(ent_t.c.name == name)
            ).one()
        enterprise_id = int(enterprise.id)

        prod_t = table_of(Product)
        existing = {
            r.drug_code: (int(r.id), r.winning_price)
            for r in session.execute(
                select(prod_t.c.id, prod_t.c.drug_code, prod_t.c.winning_price)
                .where(prod_t.c.enterprise_id == enterprise_id)
            )
        }
        new_rows = [{**p.values, "enterprise_id": enterprise_id} for p in products if p.drug_code not in existing]
        changed = []
        for p in products:
            if p.drug_code in existing:
                product_id, old_price = existing[p.drug_code]
                changed.append({**p.values, "_id": product_id})
                if old_price is not None and Decimal(old_price) != p.price:
                    warnings.append(RowWarning(
                        p.number, "中选价(元)", str(p.price),
                        f"中选价与该企业此前申报的{old_price}元不同 / winning price differs from the {old_price} "
                        "yuan declared before", "price.changed"))
        product_ids: dict[str, int] = {}
        if new_rows:
            result = session.execute(
                prod_t.insert().returning(prod_t.c.id, prod_t.c.drug_code), new_rows
            )
            product_ids.update({r.drug_code: int(r.id) for r in result})
        if changed:
            session.execute(
                update(prod_t).where(prod_t.c.id == bindparam("_id")).values(
                    {k: bindparam(k) for k in changed[0] if k != "_id"}
                ),
                changed,
            )
            product_ids.update({row["drug_code"]: int(row["_id"]) for row in changed})

        decl_t = table_of(EnterpriseDeclaration)
        declaration_id = int(session.execute(
            decl_t.insert().returning(decl_t.c.id),
            [{"program_id": program.id, "enterprise_id": enterprise_id, "state": DeclarationState.SUBMITTED,
              "commitment_signed": True, "findings": [w.finding() for w in warnings], "import_id": import_id,
              "submitted_at": now}],
        ).scalar_one())
        session.execute(
            table_of(DeclarationItem).insert(),
            [{"declaration_id": declaration_id, "product_id": product_ids[p.drug_code], "recommended": False}
             for p in products],
        )
        trail = [AuditRecord(
            entity="declaration", entity_id=declaration_id, action="submit", from_state=None,
            to_state=DeclarationState.SUBMITTED.value, actor=actor, role=Role.SYSTEM, at=now,
            program_id=program.id, data={"import_id": import_id, "file": filename, "products": len(products)},
        )]
        if EnterpriseState(enterprise.state) is EnterpriseState.BARRED:  # the bar is over (checked above): lift it
            new, lifted = ENTERPRISE.apply(enterprise_id, EnterpriseState.BARRED, "lift_bar", actor="system",
                                           role=Role.SYSTEM, at=now, program_id=program.id,
                                           data={"barred_until": str(enterprise.barred_until)})
            session.execute(ent_t.update().where(ent_t.c.id == enterprise_id).values(state=new.value))
            trail.insert(0, lifted)
        write_audit(session, trail)
        enqueue_notices(session, [NoticeDraft(
            key=f"declaration_receipt:{declaration_id}", kind="declaration_receipt", recipient_type="enterprise",
            recipient_name=name, email=enterprise.email or None, recipient_id=enterprise_id, program_id=program.id,
            context={"program_name": program.name, "enterprise_name": name, "declaration_id": declaration_id,
                     "product_count": len(products), "submitted_on": clock.today().isoformat()},
        )], now)
        set_created(session, import_id, len(products))
        return ImportResult(rows=len(sheet.rows), created=len(products), warnings=warnings, import_id=import_id,
                            declaration_id=declaration_id)
