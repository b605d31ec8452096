"""Importing the two upload files of the program: an enterprise's product table and institution applications.

Both are all-or-nothing per file. District staff fix a file and send it again, so one upload
must report every bad cell at once (row, column, value, bilingual message) and write nothing
while any is left; a file that was half imported could not simply be sent again. The same
bytes sent twice are recognised by their sha256 (ImportRecord) and create nothing the second time.

The target is 100,000 applications in a few seconds (LIMITS.md), so an application file is
checked column by column and written in bulk in one transaction: rows by COPY on PostgreSQL and
the driver's executemany on SQLite, new ids read back by range, receipts written by the database
(INSERT … SELECT). Declarations (a few thousand products) keep the plainer row-by-row checks and
Core inserts. These are plain functions on an Engine; the flows wrap them as Prefect tasks.
"""

from __future__ import annotations

import gc
import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, Integer, String, Table, bindparam, func, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlmodel import Session

from models.application_rules import (
    PriceOption,
    Reapplication,
    check_code_matches_kind,
    check_drug_count,
    check_participation_years,
    check_price_option,
    check_private_tertiary,
    check_proxy_parent,
    parse_kind,
    parse_positive_int,
    parse_price_option,
    parse_yes_no,
    reapplication,
)
from models.audit import AuditEvent
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
from models.clock import Clock
from models.enrollment import Application, Institution
from models.program import ImportRecord, Program
from models.program_definition import PhaseName, ProgramDefinition, Rules
from models.states import (
    ApplicationState,
    DeclarationState,
    EnterpriseState,
    InstitutionKind,
    Role,
)
from models.transitions import AuditRecord
from models.validators import (
    FieldError,
    check_uscc,
    drug_code_is_full,
    field_error,
    uscc_warnings,
    validate_approval_number,
    validate_district,
    validate_drug_code,
    validate_email,
    validate_insurance_institution_code,
    validate_phone,
    validate_price,
    validate_required_text,
)
from models.windows import require_open
from sanjin.db import transaction
from tasks.outbox import NoticeDraft, enqueue_notices, enqueue_notices_from
from tasks.spreadsheets import (
    ImportRejected,
    RowError,
    RowWarning,
    Sheet,
    lost_digits_error,
    normalize_header,
    parse_upload,
    read_upload,
)
from tasks.store import (
    chunked,
    insert_columns,
    insert_ignoring_conflicts,
    json_object,
    json_text,
    refresh_statistics,
    table_of,
    write_audit,
)

__all__ = [
    "APPLICATION_COLUMNS",
    "APPLICATION_OPTIONAL_COLUMNS",
    "DECLARATION_COLUMNS",
    "DECLARATION_OPTIONAL_COLUMNS",
    "ImportRejected",
    "ImportResult",
    "ProgramNotFound",
    "RowError",
    "RowWarning",
    "import_applications",
    "import_declaration",
]

# The product table of seed 002 att.2 (附表 品种明细表), in its order; enterprises fill that template.
DECLARATION_COLUMNS: tuple[str, ...] = (
    "药品统一编码", "产品名称", "剂型", "规格", "转换比", "最小制剂单位",
    "最小包装单位", "包装材质", "生产企业", "投标企业", "中选价(元)", "批准文号",
)
# Added by the bureau after the 12 columns: focus category and the special-drug flag (000 §三(三)).
DECLARATION_OPTIONAL_COLUMNS: tuple[str, ...] = ("类别", "特药")

# Seed 001 att.1 (申请表) + att.2 (承诺书) + what the product needs to route and decide them.
APPLICATION_COLUMNS: tuple[str, ...] = (
    "单位名称", "单位地址", "统一社会信用代码", "法人代表", "机构医保编码", "联系人", "联系电话",
    "电子邮箱", "所属区县", "机构类别", "特药定点", "承诺配备药品数量", "销售价格承诺", "承诺参加年限",
)
APPLICATION_OPTIONAL_COLUMNS: tuple[str, ...] = ("民营三级", "代采上级机构医保编码")

_HEADER = "表头"


# --------------------------------------------------------------------------- results and errors


class ProgramNotFound(LookupError):
    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f"项目“{slug}”不存在 / no program with slug {slug!r}")

    def __reduce__(self) -> tuple[type[ProgramNotFound], tuple[str]]:
        return (type(self), (self.slug,))


@dataclass
class ImportResult:
    """What one import did; ``already_imported`` means these exact bytes were imported before."""

    rows: int
    created: int
    skipped: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    import_id: int | None = None
    already_imported: bool = False
    declaration_id: int | None = None


# --------------------------------------------------------------------------- shared helpers

T = TypeVar("T")
P = ParamSpec("P")


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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while an upload is parsed and written.

    A 100,000-row file makes millions of short-lived containers, freed by reference counting
    anyway; the collector, triggered by their allocation, walks them all again and again and found
    nothing here but cost about a third of the parsing time. Restored afterwards, errors included.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _file_error(filename: str, message: str, *, row: int = 0, column: str = "", value: str = "",
                rule: str = "file") -> ImportRejected:
    return ImportRejected(filename, [RowError(row, column, value, message, rule)])


@dataclass(frozen=True)
class _ProgramRow:
    id: int
    name: str
    definition: ProgramDefinition


def _load_program(session: Session, slug: str) -> _ProgramRow:
    t = table_of(Program)
    row = session.execute(select(t.c.id, t.c.name, t.c.definition).where(t.c.slug == slug)).first()
    if row is None:
        raise ProgramNotFound(slug)
    return _ProgramRow(int(row.id), row.name, ProgramDefinition.model_validate(row.definition))


def _previous_import(session: Session, kind: str, program_id: int, digest: str) -> ImportResult | None:
    """The result to return when these exact bytes were imported into this program before."""
    t = table_of(ImportRecord)
    row = session.execute(
        select(t.c.id, t.c.rows).where(t.c.kind == kind, t.c.program_id == program_id, t.c.sha256 == digest)
    ).first()
    if row is None:
        return None
    return ImportResult(rows=int(row.rows), created=0, import_id=int(row.id), already_imported=True)


def _record_import(
    session: Session, kind: str, program_id: int, digest: str, filename: str, rows: int, actor: str, now: datetime
) -> int | None:
    """The ImportRecord row, or None when a concurrent import of the same bytes committed first."""
    t = table_of(ImportRecord)
    inserted = insert_ignoring_conflicts(
        session, ImportRecord,
        [{"kind": kind, "program_id": program_id, "sha256": digest, "filename": filename[:300],
          "rows": rows, "created": 0, "imported_by": actor[:64], "imported_at": now}],
        ["kind", "program_id", "sha256"],
    )
    if not inserted:
        return None
    found = session.execute(
        select(t.c.id).where(t.c.kind == kind, t.c.program_id == program_id, t.c.sha256 == digest)
    ).scalar_one()
    return int(found)


def _set_created(session: Session, import_id: int, created: int) -> None:
    t = table_of(ImportRecord)
    session.execute(update(t).where(t.c.id == import_id).values(created=created))


def _header_problem(expected: Iterable[str], found: Sequence[str], detail: str) -> str:
    shown = "、".join(f or "（空）" for f in found) or "（无）"
    return (
        f"表头不正确：{detail}。应为：{'、'.join(expected)}；实际为：{shown} / "
        f"wrong header row: {detail}. expected: {', '.join(expected)}; found: {', '.join(found)}"
    )


def _unnamed_cells(sheet: Sheet, width: int) -> list[RowError]:
    """Data typed right of the last header would be silently lost; it is an error instead."""
    errors: list[RowError] = []
    for r in sheet.rows:
        for col in range(width, len(r.cells)):
            if r.cells[col]:
                errors.append(RowError(
                    r.number, f"第{col + 1}列", r.cells[col],
                    "该列没有表头，数据无法识别 / this column has no header: the value cannot be imported",
                    "cell.no_header",
                ))
    return errors


def _lossy_errors(sheet: Sheet, names: Sequence[str]) -> list[RowError]:
    """Cells whose digits Excel already rounded away; see :func:`_without_shadowed`."""
    return [lost_digits_error(number, names[col] if col < len(names) else f"第{col + 1}列")
            for number, col in sorted(sheet.lossy)]


def _without_shadowed(errors: list[RowError]) -> list[RowError]:
    """Drop validator errors on cells that lost digits: "check character wrong" would send people
    hunting for a typo, while the cure is to format the column as text."""
    lossy = {(e.row, e.column) for e in errors if e.rule == "cell.number_lost_digits"}
    return [e for e in errors if e.rule == "cell.number_lost_digits" or (e.row, e.column) not in lossy]


# --------------------------------------------------------------------------- enterprise declarations


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
        raise _file_error(
            filename,
            _header_problem([*expected, "[类别]", "[特药]"], list(sheet.header), "；".join(problems)),
            row=sheet.header_row, column=_HEADER, value="、".join(sheet.header), rule="header.mismatch",
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
                  is_special=is_special)
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
        raise _file_error(filename, "企业名称不能为空且不超过200字 / the enterprise name is required (≤ 200 characters)",
                          column="企业名称", value=enterprise_name, rule="enterprise.name")
    data = read_upload(path)
    digest = hashlib.sha256(data).hexdigest()
    now = clock.now()
    with transaction(engine) as session:
        program = _load_program(session, program_slug)
        defn = program.definition
        previous = _previous_import(session, "declaration", program.id, digest)
        if previous is not None:
            return previous
        if defn.rules.enterprise_admission != "rolling":
            require_open(defn, PhaseName.DRUG_LIST, now)

        sheet = parse_upload(data, filename)
        columns = _declaration_columns(sheet, filename)
        errors = _unnamed_cells(sheet, len(sheet.header)) + _lossy_errors(sheet, sheet.header)
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
            errors.append(RowError(sheet.header_row, _HEADER, "", "文件中没有药品数据 / the file has no product rows",
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
                until = f"（至{enterprise.barred_until}）" if enterprise.barred_until else ""
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
            raise ImportRejected(filename, _without_shadowed(errors))

        # ---- everything valid: write
        import_id = _record_import(session, "declaration", program.id, digest, filename, len(sheet.rows), actor, now)
        if import_id is None:
            previous = _previous_import(session, "declaration", program.id, digest)
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
        write_audit(session, [AuditRecord(
            entity="declaration", entity_id=declaration_id, action="submit", from_state=None,
            to_state=DeclarationState.SUBMITTED.value, actor=actor, role=Role.SYSTEM, at=now,
            program_id=program.id, data={"import_id": import_id, "file": filename, "products": len(products)},
        )])
        enqueue_notices(session, [NoticeDraft(
            key=f"declaration_receipt:{declaration_id}", kind="declaration_receipt", recipient_type="enterprise",
            recipient_name=name, email=enterprise.email or None, recipient_id=enterprise_id, program_id=program.id,
            context={"program_name": program.name, "enterprise_name": name, "declaration_id": declaration_id,
                     "product_count": len(products), "submitted_on": clock.today().isoformat()},
        )], now)
        _set_created(session, import_id, len(products))
        return ImportResult(rows=len(sheet.rows), created=len(products), warnings=warnings, import_id=import_id,
                            declaration_id=declaration_id)


# --------------------------------------------------------------------------- institution applications


def _application_columns(sheet: Sheet, filename: str) -> dict[str, int]:
    """Every required column, the optional ones if present, any order; unknown names are refused.

    An unknown header is usually a misspelt optional one (代采上级机构编码): ignoring it would drop
    the proxy relation of every row without a word.
    """
    found = [normalize_header(h) for h in sheet.header]
    known = set(APPLICATION_COLUMNS) | set(APPLICATION_OPTIONAL_COLUMNS)
    missing = [c for c in APPLICATION_COLUMNS if c not in found]
    unknown = [c or f"第{i + 1}列（空）" for i, c in enumerate(found) if c not in known]
    twice = sorted({c for c in found if c and found.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"缺少列 missing: {'、'.join(missing)}")
    if unknown:
        problems.append(f"无法识别的列 unknown: {'、'.join(unknown)}")
    if twice:
        problems.append(f"重复的列 duplicated: {'、'.join(twice)}")
    if problems:
        expected = [*APPLICATION_COLUMNS, *(f"[{c}]" for c in APPLICATION_OPTIONAL_COLUMNS)]
        raise _file_error(
            filename, _header_problem(expected, list(sheet.header), "；".join(problems)),
            row=sheet.header_row, column=_HEADER, value="、".join(sheet.header), rule="header.mismatch",
        )
    return {name: i for i, name in enumerate(found)}


_ALL_APPLICATION_COLUMNS = (*APPLICATION_COLUMNS, *APPLICATION_OPTIONAL_COLUMNS)


@dataclass
class _Applications:
    """The rows of one application file, column by column.

    Column-wise because that is how 100,000 rows are checked in about a second: each validator
    runs over a whole column (the texts that repeat, districts, kinds, 是/否, counts, once per
    distinct text), and no object is built per row. ``None`` marks a cell that failed its check;
    the reason is in ``errors``.
    """

    numbers: list[int]
    raw: dict[str, Sequence[str]]
    errors: list[RowError]
    name: list[str | None]
    address: list[str | None]
    uscc: list[str | None]
    legal_rep: list[str | None]
    code: list[str | None]
    contact_name: list[str | None]
    phone: list[str | None]
    email: list[str | None]
    district: list[str | None]
    kind: list[InstitutionKind | None]
    private_tertiary: list[bool | None]
    special: list[bool | None]
    parent_code: list[str | None]
    count: list[int | None]
    price_option: list[PriceOption | None]
    years: list[int | None]
    warnings: dict[int, list[RowWarning]] = field(default_factory=dict)  # row index → in the order found
    # resolved against the database, by row index
    institution_id: dict[int, int] = field(default_factory=dict)
    existing: set[int] = field(default_factory=set)
    attempt: dict[int, int] = field(default_factory=dict)  # only where it is not 1
    skip_reason: dict[int, str] = field(default_factory=dict)

    def fail(self, i: int, column: str, value: str, rule: str, zh: str, en: str) -> None:
        self.errors.append(RowError(self.numbers[i], column, value, f"{zh} / {en}", rule))

    def warn(self, i: int, column: str, value: str, rule: str, message: str) -> None:
        self.warnings.setdefault(i, []).append(RowWarning(self.numbers[i], column, value, message, rule))


def _raw_columns(sheet: Sheet, columns: dict[str, int], names: Iterable[str]) -> dict[str, Sequence[str]]:
    """Each named column's cells ("" where a row is short or the optional column is absent)."""
    width = len(sheet.header)
    rows = [r.cells for r in sheet.rows]
    if rows and min(map(len, rows)) < width:  # a CSV line may end early
        rows = [cells if len(cells) >= width else (*cells, *[""] * (width - len(cells))) for cells in rows]
    by_index = list(zip(*rows, strict=False)) if rows else []
    blank = [""] * len(rows)
    return {name: by_index[columns[name]] if name in columns and rows else blank for name in names}


def _parse_column(values: Sequence[str], parse: Callable[[str], T], column: str, numbers: Sequence[int],
                  errors: list[RowError]) -> list[T | None]:
    """Every cell of a column through ``parse``: in one pass while all are valid, else cell by cell."""
    try:
        return list(map(parse, values))
    except FieldError:
        pass
    out: list[T | None] = []
    for number, raw in zip(numbers, values, strict=True):
        try:
            out.append(parse(raw))
        except FieldError as exc:
            out.append(None)
            errors.append(RowError(number, column, raw, exc.message, exc.rule))
    return out


def _parse_distinct(values: Sequence[str], parse: Callable[[str], T], column: str, numbers: Sequence[int],
                    errors: list[RowError]) -> list[T | None]:
    """Like :func:`_parse_column`, for columns of few distinct texts: each text is parsed once."""
    good: dict[str, T] = {}
    bad: dict[str, FieldError] = {}
    for raw in set(values):
        try:
            good[raw] = parse(raw)
        except FieldError as exc:
            bad[raw] = exc
    if bad:
        for number, raw in zip(numbers, values, strict=True):
            if (problem := bad.get(raw)) is not None:
                errors.append(RowError(number, column, raw, problem.message, problem.rule))
    return list(map(good.get, values))


def _optional_email(value: str) -> str | None:
    if not value.strip():
        return None
    email = validate_email(value)
    if len(email) > 200:
        raise field_error("电子邮箱", value, "email.length", "电子邮箱过长", "longer than 200 characters")
    return email


def _optional_code(value: str) -> str | None:
    return validate_insurance_institution_code(value, "代采上级机构医保编码") if value.strip() else None


_RuleKey = tuple[InstitutionKind | None, bool | None, str | None, int | None, PriceOption | None, int | None]


def _rule_errors(key: _RuleKey, rules: Rules) -> list[tuple[str, FieldError]]:
    """(column, error) of the rules between a row's cells; they depend on ``key`` alone (the insurance
    code only through its letter), so a file pays for each distinct combination once."""
    kind, tertiary, code_letter, count, option, years = key
    found: list[tuple[str, FieldError]] = []

    def run(column: str, check: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            check(*args, **kwargs)
        except FieldError as exc:
            found.append((column, exc))

    if kind is not None:
        if tertiary is not None:
            run("民营三级", check_private_tertiary, kind, tertiary)
        if code_letter is not None:
            run("机构医保编码", check_code_matches_kind, code_letter, kind)
        if count is not None and tertiary is not None:
            run("承诺配备药品数量", check_drug_count, count, kind, tertiary, rules)
        if option is not None:
            run("销售价格承诺", check_price_option, option, kind, rules.markup)
    if years is not None:
        run("承诺参加年限", check_participation_years, years, rules)
    return found


def _parse_applications(sheet: Sheet, columns: dict[str, int], defn: ProgramDefinition,
                        districts: Sequence[str]) -> _Applications:
    numbers = [r.number for r in sheet.rows]
    raw = _raw_columns(sheet, columns, _ALL_APPLICATION_COLUMNS)
    errors: list[RowError] = []

    def each(column: str, parse: Callable[[str], T]) -> list[T | None]:
        return _parse_column(raw[column], parse, column, numbers, errors)

    def distinct(column: str, parse: Callable[[str], T]) -> list[T | None]:
        return _parse_distinct(raw[column], parse, column, numbers, errors)

    def text(column: str, max_len: int) -> list[str | None]:
        return each(column, partial(validate_required_text, field=column, max_len=max_len))

    name = text("单位名称", 200)
    address = text("单位地址", 300)
    checked = each("统一社会信用代码", check_uscc)
    legal_rep = text("法人代表", 64)
    code = each("机构医保编码", validate_insurance_institution_code)
    contact_name = text("联系人", 64)
    phone = each("联系电话", validate_phone)
    email = each("电子邮箱", _optional_email)
    parent_code = distinct("代采上级机构医保编码", _optional_code)
    apps = _Applications(
        numbers=numbers, raw=raw, errors=errors, name=name, address=address,
        uscc=[c[0] if c is not None else None for c in checked], legal_rep=legal_rep, code=code,
        contact_name=contact_name, phone=phone, email=email,
        district=distinct("所属区县", partial(validate_district, districts=districts)),
        kind=distinct("机构类别", parse_kind),
        private_tertiary=distinct("民营三级", partial(parse_yes_no, field="民营三级", default=False)),
        special=distinct("特药定点", partial(parse_yes_no, field="特药定点")),
        parent_code=parent_code,
        count=distinct("承诺配备药品数量", partial(parse_positive_int, field="承诺配备药品数量")),
        price_option=distinct("销售价格承诺", parse_price_option),
        years=distinct("承诺参加年限", partial(parse_positive_int, field="承诺参加年限")),
    )
    for i, c in enumerate(checked):
        if c is not None and c[1]:
            for message in c[1]:
                apps.warn(i, "统一社会信用代码", c[0], "uscc.warning", message)

    rules = defn.rules
    found: dict[_RuleKey, list[tuple[str, FieldError]]] = {}
    letters = [c[:1] if c is not None else None for c in code]
    keys = zip(apps.kind, apps.private_tertiary, letters, apps.count, apps.price_option, apps.years, strict=True)
    for i, key in enumerate(keys):
        broken = found.get(key)
        if broken is None:
            broken = found[key] = _rule_errors(key, rules)
        for column, exc in broken:
            value = code[i] if column == "机构医保编码" else raw[column][i]
            errors.append(RowError(numbers[i], column, value or "", exc.message, exc.rule))
    return apps


@dataclass(frozen=True)
class _Known:
    """An institution already in the database, as far as the importer needs it."""

    id: int
    uscc: str
    code: str
    name: str
    kind: InstitutionKind
    district: str
    proxy_parent_id: int | None


def _known_institutions(session: Session, usccs: Sequence[str], codes: Sequence[str]) -> list[_Known]:
    """The institutions in the database with one of these USCCs or insurance codes.

    By IN-lists of 5,000 when the file is small beside the table (a district's weekly upload);
    when it is not (a first upload of a whole province: 40 lists of 5,000), reading the whole
    table once is cheaper, and an empty table needs no query at all.
    """
    t = table_of(Institution)
    cols = (t.c.id, t.c.uscc, t.c.insurance_code, t.c.name, t.c.kind, t.c.district, t.c.proxy_parent_id)
    wanted_usccs, wanted_codes = set(usccs), set(codes)
    in_table = int(session.execute(select(func.count()).select_from(t)).scalar_one())
    if not in_table or not (wanted_usccs or wanted_codes):
        return []
    found: dict[int, _Known] = {}

    def keep(rows: Iterable[Any]) -> None:
        for r in rows:
            found[int(r.id)] = _Known(int(r.id), r.uscc, r.insurance_code, r.name, InstitutionKind(r.kind),
                                      r.district, r.proxy_parent_id)

    if in_table <= 4 * (len(wanted_usccs) + len(wanted_codes)):
        keep(r for r in session.execute(select(*cols))
             if r.uscc in wanted_usccs or r.insurance_code in wanted_codes)
        return list(found.values())
    for column, values in ((t.c.uscc, wanted_usccs), (t.c.insurance_code, wanted_codes)):
        for chunk in chunked(sorted(values)):
            keep(session.execute(select(*cols).where(column.in_(chunk))))
    return list(found.values())


def _latest_applications(
    session: Session, program_id: int, institution_ids: Sequence[int]
) -> dict[int, tuple[int, ApplicationState]]:
    """institution id → (highest attempt, its state) in this program."""
    t = table_of(Application)
    latest: dict[int, tuple[int, ApplicationState]] = {}
    for chunk in chunked(sorted(set(institution_ids))):
        rows = session.execute(
            select(t.c.institution_id, t.c.attempt, t.c.state)
            .where(t.c.program_id == program_id, t.c.institution_id.in_(chunk))
        )
        for r in rows:
            current = latest.get(int(r.institution_id))
            if current is None or r.attempt > current[0]:
                latest[int(r.institution_id)] = (int(r.attempt), ApplicationState(r.state))
    return latest


def _proxy_children(session: Session, parent_ids: Sequence[int]) -> set[int]:
    """Which of these institutions already buy for others (and so cannot become proxy-procured)."""
    t = table_of(Institution)
    parents: set[int] = set()
    for chunk in chunked(sorted(set(parent_ids))):
        parents.update(
            int(r[0]) for r in session.execute(select(t.c.proxy_parent_id).where(t.c.proxy_parent_id.in_(chunk)))
        )
    return parents


def _first_rows(values: Sequence[str | None], apps: _Applications, column: str, rule: str, zh_what: str) -> None:
    """Report every repeat of a value, naming the row it first appeared on."""
    present = [v for v in values if v is not None]
    if len(set(present)) == len(present):
        return  # the usual case, settled in one pass
    first_row: dict[str, int] = {}
    for i, value in enumerate(values):
        if value is not None:
            first = first_row.setdefault(value, apps.numbers[i])
            if first != apps.numbers[i]:
                apps.fail(i, column, value, rule, f"{zh_what}与第{first}行重复", f"duplicates row {first}")


def _cross_checks(session: Session, program_id: int, apps: _Applications) -> dict[str, int]:
    """Checks between rows and against the database: duplicates, code ownership, proxy parents, re-applications.

    Returns the ids of the institutions already in the database by insurance code, for the writer
    to link proxy parents without a query per row.
    """
    _first_rows(apps.uscc, apps, "统一社会信用代码", "uscc.duplicate", "统一社会信用代码")
    _first_rows(apps.code, apps, "机构医保编码", "institution_code.duplicate", "机构医保编码")

    known = _known_institutions(
        session,
        [u for u in apps.uscc if u],
        [c for c in (*apps.code, *apps.parent_code) if c],
    )
    by_uscc = {k.uscc: k for k in known}
    by_code = {k.code: k for k in known}
    latest = _latest_applications(session, program_id, [k.id for k in by_uscc.values()])

    for i, (uscc, code) in enumerate(zip(apps.uscc, apps.code, strict=True) if known else ()):
        if uscc is None:
            continue
        mine = by_uscc.get(uscc)
        if code is not None:
            holder = by_code.get(code)
            if holder is not None and holder.uscc != uscc:
                apps.fail(i, "机构医保编码", code, "institution_code.taken",
                          f"机构医保编码已属于“{holder.name}”（{holder.uscc}）",
                          f"this insurance code belongs to another institution ({holder.uscc})")
        if mine is None:
            continue
        apps.institution_id[i] = mine.id
        apps.existing.add(i)
        previous = latest.get(mine.id)
        decision = reapplication(previous[1] if previous else None)
        if previous is not None:
            apps.attempt[i] = previous[0] + 1
        if decision is Reapplication.SKIP and previous is not None:
            apps.skip_reason[i] = (f"已有申请（第{previous[0]}次，状态 {previous[1].value}），本行未导入 / "
                                   f"already applied (attempt {previous[0]}, {previous[1].value}): row not imported")
        elif decision is Reapplication.REFUSE and previous is not None:
            apps.skip_reason[i] = ("该机构已被取消资格，不能通过导入重新申请 / the institution was disqualified and "
                                   "cannot re-apply through an upload")

    proxied = [i for i, parent in enumerate(apps.parent_code) if parent is not None]
    if not proxied:
        return {k.code: k.id for k in known}
    skip = apps.skip_reason
    file_by_code = {c: i for i, c in enumerate(apps.code) if c is not None and i not in skip}
    will_be_proxied = [apps.institution_id[i] for i in proxied if i in apps.institution_id and i not in skip]
    already_parents = _proxy_children(session, will_be_proxied)
    column = "代采上级机构医保编码"
    for i in proxied:
        code, kind = apps.parent_code[i], apps.kind[i]
        if code is None or kind is None:
            continue
        parent_kind: InstitutionKind | None
        parent_row = file_by_code.get(code)
        if parent_row is not None:
            parent_kind, parent_proxied, parent_district = (
                apps.kind[parent_row], apps.parent_code[parent_row] is not None, apps.district[parent_row]
            )
        elif (parent := by_code.get(code)) is not None:
            parent_kind, parent_proxied, parent_district = (
                parent.kind, parent.proxy_parent_id is not None, parent.district
            )
        else:
            apps.fail(i, column, code, "proxy.parent_unknown",
                      f"未找到医保编码为 {code} 的代采上级机构（本文件和系统中均没有）",
                      "no institution with this insurance code in this file or in the system")
            continue
        if parent_kind is None:
            continue  # the parent's own row already reports its bad kind
        try:
            check_proxy_parent(kind, parent_kind, parent_proxied, same_institution=code == apps.code[i],
                               parent_code=code)
        except FieldError as exc:
            apps.errors.append(RowError(apps.numbers[i], column, code, exc.message, exc.rule))
        if apps.institution_id.get(i) in already_parents:
            apps.fail(i, column, code, "proxy.is_parent",
                      "本机构已是其他机构的代采上级机构，不能再由别的机构代采",
                      "this institution buys for others already, so it cannot be proxy-procured itself")
        district = apps.district[i]
        if parent_district and district and parent_district != district:
            apps.warn(i, column, code, "proxy.other_district",
                      f"代采上级机构在{parent_district}，本机构在{district} / "
                      f"the proxy parent is in {parent_district}, this institution in {district}")
    return {k.code: k.id for k in known}


def _max_id(session: Session, t: Table) -> int:
    return int(session.execute(select(func.max(t.c.id))).scalar() or 0)


def _write_institutions(session: Session, apps: _Applications, todo: Sequence[int], known_ids: dict[str, int]) -> None:
    """Parents before children: a proxy parent is never proxied itself, so two passes resolve every id.

    ``known_ids``: institutions already in the database by insurance code (parents outside the file).
    The new ids are read back as the rows above the previous highest id that carry this file's
    USCCs: one query, where the USCCs in IN-lists took twenty, and RETURNING through psycopg's
    executemany costs seconds per 100,000 rows.
    """
    t = table_of(Institution)
    ids_by_code = dict(known_ids)
    for i, institution_id in apps.institution_id.items():
        if (code := apps.code[i]) is not None:
            ids_by_code[code] = institution_id
    uscc, code_of, parent_code = apps.uscc, apps.code, apps.parent_code

    def values(rows: Sequence[int]) -> dict[str, list[Any]]:
        def column(values: Sequence[Any]) -> list[Any]:
            return [values[i] for i in rows]

        return {
            "name": column(apps.name), "address": column(apps.address), "uscc": column(uscc),
            "legal_rep": column(apps.legal_rep), "insurance_code": column(code_of),
            "contact_name": column(apps.contact_name), "phone": column(apps.phone), "email": column(apps.email),
            "district": column(apps.district),
            "private_tertiary": [bool(apps.private_tertiary[i]) for i in rows],
            "special_designated": [bool(apps.special[i]) for i in rows],
            "proxy_parent_id": [None if (parent := parent_code[i]) is None else ids_by_code[parent] for i in rows],
        }

    for proxied in (False, True):
        batch = [i for i in todo if i not in apps.existing and (parent_code[i] is not None) == proxied]
        if not batch:
            continue
        above = _max_id(session, t)
        insert_columns(session, t, values(batch), stored={"kind": [kind.value if (kind := apps.kind[i]) else None
                                                                 for i in batch]})
        new_ids: dict[str | None, int] = dict(session.execute(select(t.c.uscc, t.c.id).where(t.c.id > above)).all())
        for i in batch:
            institution_id = apps.institution_id[i] = new_ids[uscc[i]]
            if (code := code_of[i]) is not None:
                ids_by_code[code] = institution_id

    existing = [i for i in todo if i in apps.existing]
    if existing:
        columns = {**values(existing), "kind": [apps.kind[i] for i in existing]}
        params = [{**{k: v[n] for k, v in columns.items()}, "_id": apps.institution_id[i]}
                  for n, i in enumerate(existing)]
        session.execute(
            update(t).where(t.c.id == bindparam("_id")).values({k: bindparam(k) for k in columns}),
            params,
        )


def _by_district(apps: _Applications, todo: Sequence[int]) -> list[int]:
    """The rows grouped by district (districts in order of first appearance, file order within each).

    Inserted so, each district's institutions and applications sit on contiguous pages, and on SQLite
    each district gate's decision rewrites its own pages instead of most of the table (the province's
    forms arrive interleaved; measured at 100k: 13 district decisions 2.6-2.9 s -> 1.2 s; no change seen
    on PostgreSQL). Nothing keys on id order: the audit row keeps the file row number.
    """
    first: dict[str | None, int] = {}
    for i in todo:
        first.setdefault(apps.district[i], len(first))
    return sorted(todo, key=lambda i: first[apps.district[i]])


def _write_applications(session: Session, apps: _Applications, todo: Sequence[int], program_id: int,
                        import_id: int, now: datetime) -> list[int]:
    """The new applications' ids, in the order of ``todo``."""
    t = table_of(Application)
    if not todo:
        return []
    options = apps.price_option
    above = _max_id(session, t)
    insert_columns(session, t, {
        "institution_id": [apps.institution_id[i] for i in todo],
        "attempt": [apps.attempt.get(i, 1) for i in todo],
        "district": [apps.district[i] for i in todo],
        "committed_drug_count": [apps.count[i] for i in todo],
        "price_option": [(options[i] or PriceOption.AT_WINNING_PRICE).value for i in todo],
        "participation_years": [apps.years[i] for i in todo],
    }, {"program_id": program_id, "state": ApplicationState.SUBMITTED, "import_id": import_id, "submitted_at": now},
        stored={"findings": [json.dumps([w.finding() for w in apps.warnings[i]]) if i in apps.warnings else "[]"
                              for i in todo]})
    # One application per institution per file makes institution_id the key back to the row.
    by_institution: dict[int, int] = dict(session.execute(
        select(t.c.institution_id, t.c.id).where(t.c.id > above, t.c.import_id == import_id)).all())
    return [by_institution[apps.institution_id[i]] for i in todo]


def _audit_submissions(session: Session, apps: _Applications, todo: Sequence[int], app_ids: Sequence[int],
                       program_id: int, import_id: int, actor: str, now: datetime) -> None:
    """One audit row per new application (what ``APPLICATION`` records for "submit"), in one bulk insert.

    Column-wise with the shared values bound once: 100,000 AuditRecord objects turned back into
    dicts for an executemany cost seconds. The row number stays in ``data``, as the trace from an
    application back to the line of the file it came from.
    """
    if not app_ids:
        return
    numbers, attempt = apps.numbers, apps.attempt
    insert_columns(session, table_of(AuditEvent), {"entity_id": [str(app_id) for app_id in app_ids]}, {
        "program_id": program_id, "entity": "application", "action": "submit", "from_state": None,
        "to_state": ApplicationState.SUBMITTED.value, "actor": actor, "role": Role.SYSTEM, "reason": None, "at": now,
    }, stored={"data": [  # json.dumps of {"import_id": …, "row": …, "attempt": …}: three integers
        f'{{"import_id": {import_id}, "row": {numbers[i]}, "attempt": {attempt.get(i, 1)}}}' for i in todo
    ]})


def _enqueue_receipts(session: Session, program: _ProgramRow, import_id: int, first_id: int, today: str,
                      now: datetime) -> None:
    """A receipt per new application, written by the database from the rows just inserted."""
    app_t, inst_t = table_of(Application), table_of(Institution)
    enqueue_notices_from(session, select(
        (literal("application_receipt:", String) + sql_cast(app_t.c.id, String)).label("idempotency_key"),
        literal(program.id, Integer).label("program_id"), literal("application_receipt", String).label("kind"),
        literal("institution", String).label("recipient_type"), inst_t.c.id.label("recipient_id"),
        inst_t.c.name.label("recipient_name"), inst_t.c.email.label("email"),
        json_object(session, {
            "program_name": json_text(session, program.name), "institution_name": inst_t.c.name,
            "application_id": app_t.c.id, "district": app_t.c.district, "submitted_on": json_text(session, today),
        }).label("context"),
    ).join(inst_t, inst_t.c.id == app_t.c.institution_id)
     .where(app_t.c.id >= first_id, app_t.c.import_id == import_id).order_by(app_t.c.id), now)


def import_applications(
    engine: Engine,
    program_slug: str,
    path: Path,
    *,
    clock: Clock,
    actor: str = "system",
) -> ImportResult:
    """Import institution applications (001 att.1 + att.2 fields) as submitted applications, one per row.

    Districts collect the forms and upload them as one sheet (000 §五(一)3), and they resend the
    sheet as it grows: rows of institutions already in the program are skipped, not errors, and a
    rejected or withdrawn institution gets a new attempt into a later batch. Accepted during the
    enrollment window and afterwards during continuous review (持续推进).
    """
    with _collector_paused():  # resumed once the file's rows are freed, when _import_applications returns
        return _import_applications(engine, program_slug, path, clock=clock, actor=actor)


def _import_applications(engine: Engine, program_slug: str, path: Path, *, clock: Clock, actor: str) -> ImportResult:
    filename = path.name
    data = read_upload(path)
    digest = hashlib.sha256(data).hexdigest()
    now = clock.now()
    with transaction(engine) as session:
        program = _load_program(session, program_slug)
        defn = program.definition
        previous = _previous_import(session, "applications", program.id, digest)
        if previous is not None:
            return previous
        require_open(defn, (PhaseName.ENROLLMENT, PhaseName.CONTINUOUS_REVIEW), now)

        sheet = parse_upload(data, filename)
        columns = _application_columns(sheet, filename)
        apps = _parse_applications(sheet, columns, defn, [d.name for d in defn.districts])
        known_ids = _cross_checks(session, program.id, apps)
        errors = _unnamed_cells(sheet, len(sheet.header)) + _lossy_errors(sheet, sheet.header) + apps.errors
        if not sheet.rows and not errors:
            errors.append(RowError(sheet.header_row, _HEADER, "", "文件中没有申请数据 / the file has no application rows",
                                   "file.no_rows"))
        if errors:
            raise ImportRejected(filename, _without_shadowed(errors))

        warnings = [w for i in sorted(apps.warnings) for w in apps.warnings[i]]
        skipped = [(apps.numbers[i], apps.skip_reason[i]) for i in sorted(apps.skip_reason)]
        todo = _by_district(apps, [i for i in range(len(apps.numbers)) if i not in apps.skip_reason])

        import_id = _record_import(session, "applications", program.id, digest, filename, len(apps.numbers), actor, now)
        if import_id is None:
            previous = _previous_import(session, "applications", program.id, digest)
            assert previous is not None
            return previous
        _write_institutions(session, apps, todo, known_ids)
        app_ids = _write_applications(session, apps, todo, program.id, import_id, now)
        _audit_submissions(session, apps, todo, app_ids, program.id, import_id, actor, now)
        if app_ids:
            _enqueue_receipts(session, program, import_id, min(app_ids), clock.today().isoformat(), now)
        _set_created(session, import_id, len(app_ids))
        refresh_statistics(session, len(app_ids), Institution, Application)
        return ImportResult(rows=len(apps.numbers), created=len(app_ids), skipped=skipped, warnings=warnings,
                            import_id=import_id)
