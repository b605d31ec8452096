"""Importing the two upload files of the program: an enterprise's product table and institution applications.

Both are all-or-nothing per file. District staff fix a file and send it again, so one upload
must report every bad cell at once (row, column, value, bilingual message) and write nothing
while any is left; a file that was half imported could not simply be sent again. The same
bytes sent twice are recognised by their sha256 (ImportRecord) and create nothing the second time.

Writes are bulk Core inserts with RETURNING in one transaction: the target is 100,000
applications in a few seconds (LIMITS.md), which an ORM flush per row cannot reach. These are
plain functions on an Engine; the flows wrap them as Prefect tasks.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Engine, Table, bindparam, select, update
from sqlmodel import Session, SQLModel

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
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, Product
from models.clock import Clock
from models.enrollment import Application, Institution
from models.program import ImportRecord, Program
from models.program_definition import PhaseName, ProgramDefinition
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
    drug_code_is_full,
    uscc_warnings,
    validate_approval_number,
    validate_district,
    validate_drug_code,
    validate_email,
    validate_insurance_institution_code,
    validate_phone,
    validate_price,
)
from models.windows import require_open
from sanjin.db import transaction
from tasks.outbox import NoticeDraft, enqueue_notices
from tasks.spreadsheets import Sheet, SpreadsheetError, normalize_header, read_table_bytes
from tasks.store import insert_ignoring_conflicts, write_audit

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
_CHUNK = 5000  # IN-list size: below SQLite's (32,766 since 3.32) and PostgreSQL's (65,535) parameter limits
_MAX_LISTED_ERRORS = 30


# --------------------------------------------------------------------------- results and errors


@dataclass(frozen=True)
class RowError:
    """One bad cell: ``row`` is the spreadsheet row number (0 for the file as a whole)."""

    row: int
    column: str
    value: str
    message: str
    rule: str = ""

    def __str__(self) -> str:
        where = f"第{self.row}行" if self.row else "文件"
        col = f" {self.column}" if self.column else ""
        val = f" “{self.value}”" if self.value else ""
        return f"{where}{col}{val}: {self.message}"


@dataclass(frozen=True)
class RowWarning(RowError):
    """Something a reviewer should look at that does not stop the import (stored in ``findings``)."""

    def finding(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "value": self.value, "rule": self.rule,
                "message": self.message}


class ImportRejected(Exception):
    """The file was refused and nothing was written; ``errors`` lists every bad cell found."""

    def __init__(self, filename: str, errors: Sequence[RowError]) -> None:
        self.filename = filename
        self.errors: list[RowError] = sorted(errors, key=lambda e: (e.row, e.column))
        count = len(self.errors)
        lines = [str(e) for e in self.errors[:_MAX_LISTED_ERRORS]]
        if count > _MAX_LISTED_ERRORS:
            lines.append(f"…另有{count - _MAX_LISTED_ERRORS}处 / … and {count - _MAX_LISTED_ERRORS} more")
        super().__init__(
            f"{filename}: 发现{count}处错误，未导入任何数据 / {count} error(s), nothing was imported\n"
            + "\n".join(lines)
        )

    def __reduce__(self) -> tuple[type[ImportRejected], tuple[str, list[RowError]]]:
        # Prefect pickles task exceptions; the default would replay only the formatted text.
        return (type(self), (self.filename, self.errors))


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


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fail(field_name: str, raw: str, rule: str, zh: str, en: str) -> FieldError:
    return FieldError(field_name, raw, rule, f"{zh} / {en}")


def _required_text(value: str, column: str, max_len: int) -> str:
    """Free-text form fields: required, and bounded by the column (PostgreSQL refuses overlong text)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise _fail(column, value, "text.empty", f"{column}不能为空", f"{column} is required")
    if len(text) > max_len:
        raise _fail(column, value, "text.too_long", f"{column}不能超过{max_len}个字",
                    f"at most {max_len} characters, got {len(text)}")
    return text


_Memo = dict[tuple[str, str], Any]  # (column, raw text) → parsed value or its FieldError
_MISSING = object()


class _Row:
    """Collects a row's errors so every bad cell is reported, not only the first.

    ``memo`` is shared by the rows of one file: districts, kinds and 是/否 repeat on every row, and
    parsing each distinct text once is a large part of reaching 100,000 rows in seconds.
    """

    def __init__(self, number: int, cells: Sequence[str], columns: dict[str, int], memo: _Memo | None = None) -> None:
        self.number = number
        self._cells = cells
        self._columns = columns
        self._memo: _Memo = memo if memo is not None else {}
        self.errors: list[RowError] = []
        self.warnings: list[RowWarning] = []

    def raw(self, column: str) -> str:
        index = self._columns.get(column, -1)
        cells = self._cells
        return cells[index] if 0 <= index < len(cells) else ""

    def take(self, column: str, parse: Callable[[str], T], *, memo: bool = False) -> T | None:
        """The parsed cell, or None after recording its FieldError against this row and column.

        ``memo=True`` only for parsers whose result depends on the text alone.
        """
        raw = self.raw(column)
        if memo:
            key = (column, raw)
            hit = self._memo.get(key, _MISSING)
            if hit is _MISSING:
                try:
                    hit = parse(raw)
                except FieldError as exc:
                    hit = exc
                self._memo[key] = hit
            if isinstance(hit, FieldError):
                self.error(column, raw, hit)
                return None
            return cast(T, hit)
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

    def check(self, column: str, value: str, check: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            check(*args, **kwargs)
        except FieldError as exc:
            self.error(column, value, exc)


def _file_error(filename: str, message: str, *, row: int = 0, column: str = "", value: str = "",
                rule: str = "file") -> ImportRejected:
    return ImportRejected(filename, [RowError(row, column, value, message, rule)])


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _file_error(path.name, f"无法打开文件 / cannot open the file: {exc}", rule="file.unreadable") from exc


def _parse_sheet(data: bytes, filename: str) -> Sheet:
    try:
        return read_table_bytes(data, filename)
    except SpreadsheetError as exc:
        raise _file_error(filename, str(exc), rule="file.unreadable") from exc


@dataclass(frozen=True)
class _ProgramRow:
    id: int
    name: str
    definition: ProgramDefinition


def _load_program(session: Session, slug: str) -> _ProgramRow:
    t = _table(Program)
    row = session.execute(select(t.c.id, t.c.name, t.c.definition).where(t.c.slug == slug)).first()
    if row is None:
        raise ProgramNotFound(slug)
    return _ProgramRow(int(row.id), row.name, ProgramDefinition.model_validate(row.definition))


def _previous_import(session: Session, kind: str, program_id: int, digest: str) -> ImportResult | None:
    """The result to return when these exact bytes were imported into this program before."""
    t = _table(ImportRecord)
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
    t = _table(ImportRecord)
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
    t = _table(ImportRecord)
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
    return [
        RowError(
            number, names[col] if col < len(names) else f"第{col + 1}列", "",
            "Excel把该单元格存成了数字，超过15位的数字已丢失精度；请将该列设为“文本”格式后重新填写 / "
            "Excel stored this cell as a number and lost digits beyond 15; format the column as Text and re-enter it",
            "cell.number_lost_digits",
        )
        for number, col in sorted(sheet.lossy)
    ]


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
        texts[key] = row.take(column, partial(_required_text, column=column, max_len=max_len))
    price = row.take("中选价(元)", partial(validate_price, field="中选价(元)"))
    approval = row.take("批准文号", validate_approval_number)
    category_raw = row.raw("类别")
    category = unicodedata.normalize("NFKC", category_raw).strip() or None
    if category is not None and len(category) > 32:
        row.fail("类别", category_raw, "category.too_long", "类别不能超过32个字", "at most 32 characters")
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
    data = _read_bytes(path)
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

        sheet = _parse_sheet(data, filename)
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

        ent_t = _table(Enterprise)
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

        prod_t = _table(Product)
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

        decl_t = _table(EnterpriseDeclaration)
        declaration_id = int(session.execute(
            decl_t.insert().returning(decl_t.c.id),
            [{"program_id": program.id, "enterprise_id": enterprise_id, "state": DeclarationState.SUBMITTED,
              "commitment_signed": True, "findings": [w.finding() for w in warnings], "import_id": import_id,
              "submitted_at": now}],
        ).scalar_one())
        session.execute(
            _table(DeclarationItem).insert(),
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


@dataclass
class _AppRow:
    number: int
    row: _Row
    name: str | None = None
    address: str | None = None
    uscc: str | None = None
    legal_rep: str | None = None
    code: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    district: str | None = None
    kind: InstitutionKind | None = None
    private_tertiary: bool | None = None
    special: bool | None = None
    parent_code: str | None = None
    count: int | None = None
    price_option: PriceOption | None = None
    years: int | None = None
    # resolved against the database
    institution_id: int | None = None
    existing: bool = False
    attempt: int = 1
    skip_reason: str | None = None


def _optional_email(value: str) -> str | None:
    if not value.strip():
        return None
    email = validate_email(value)
    if len(email) > 200:
        raise _fail("电子邮箱", value, "email.length", "电子邮箱过长", "longer than 200 characters")
    return email


def _optional_code(value: str) -> str | None:
    return validate_insurance_institution_code(value, "代采上级机构医保编码") if value.strip() else None


def _uscc_and_warnings(value: str) -> tuple[str, list[str]]:
    """uscc_warnings validates too (same FieldErrors as validate_uscc), so the code is checked once."""
    warnings = uscc_warnings(value)
    return unicodedata.normalize("NFKC", value).strip().upper(), warnings


def _parse_application(row: _Row, defn: ProgramDefinition, districts: Sequence[str]) -> _AppRow:
    rules = defn.rules
    a = _AppRow(row.number, row)
    a.name = row.take("单位名称", partial(_required_text, column="单位名称", max_len=200))
    a.address = row.take("单位地址", partial(_required_text, column="单位地址", max_len=300))
    checked = row.take("统一社会信用代码", _uscc_and_warnings)
    if checked is not None:
        a.uscc = checked[0]
        for message in checked[1]:
            row.warn("统一社会信用代码", a.uscc, "uscc.warning", message)
    a.legal_rep = row.take("法人代表", partial(_required_text, column="法人代表", max_len=64))
    a.code = row.take("机构医保编码", validate_insurance_institution_code)
    a.contact_name = row.take("联系人", partial(_required_text, column="联系人", max_len=64))
    a.phone = row.take("联系电话", validate_phone)
    a.email = row.take("电子邮箱", _optional_email)
    a.district = row.take("所属区县", partial(validate_district, districts=districts), memo=True)
    a.kind = row.take("机构类别", parse_kind, memo=True)
    a.private_tertiary = row.take("民营三级", partial(parse_yes_no, field="民营三级", default=False), memo=True)
    a.special = row.take("特药定点", partial(parse_yes_no, field="特药定点"), memo=True)
    a.parent_code = row.take("代采上级机构医保编码", _optional_code, memo=True)
    a.count = row.take("承诺配备药品数量", partial(parse_positive_int, field="承诺配备药品数量"), memo=True)
    a.price_option = row.take("销售价格承诺", parse_price_option, memo=True)
    a.years = row.take("承诺参加年限", partial(parse_positive_int, field="承诺参加年限"), memo=True)

    kind, tertiary = a.kind, a.private_tertiary
    if kind is not None:
        if tertiary is not None:
            row.check("民营三级", row.raw("民营三级"), check_private_tertiary, kind, tertiary)
        if a.code is not None:
            row.check("机构医保编码", a.code, check_code_matches_kind, a.code, kind)
        if a.count is not None and tertiary is not None:
            row.check("承诺配备药品数量", row.raw("承诺配备药品数量"), check_drug_count, a.count, kind, tertiary, rules)
        if a.price_option is not None:
            row.check("销售价格承诺", row.raw("销售价格承诺"), check_price_option, a.price_option, kind, rules.markup)
    if a.years is not None:
        row.check("承诺参加年限", row.raw("承诺参加年限"), check_participation_years, a.years, rules)
    return a


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
    t = _table(Institution)
    cols = (t.c.id, t.c.uscc, t.c.insurance_code, t.c.name, t.c.kind, t.c.district, t.c.proxy_parent_id)
    found: dict[int, _Known] = {}
    for column, values in ((t.c.uscc, usccs), (t.c.insurance_code, codes)):
        for chunk in _chunks(sorted(set(values))):
            for r in session.execute(select(*cols).where(column.in_(chunk))):
                found[int(r.id)] = _Known(int(r.id), r.uscc, r.insurance_code, r.name, InstitutionKind(r.kind),
                                          r.district, r.proxy_parent_id)
    return list(found.values())


def _latest_applications(
    session: Session, program_id: int, institution_ids: Sequence[int]
) -> dict[int, tuple[int, ApplicationState]]:
    """institution id → (highest attempt, its state) in this program."""
    t = _table(Application)
    latest: dict[int, tuple[int, ApplicationState]] = {}
    for chunk in _chunks(sorted(set(institution_ids))):
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
    t = _table(Institution)
    parents: set[int] = set()
    for chunk in _chunks(sorted(set(parent_ids))):
        parents.update(
            int(r[0]) for r in session.execute(select(t.c.proxy_parent_id).where(t.c.proxy_parent_id.in_(chunk)))
        )
    return parents


def _cross_checks(session: Session, program_id: int, apps: list[_AppRow]) -> dict[str, int]:
    """Checks between rows and against the database: duplicates, code ownership, proxy parents, re-applications.

    Returns the ids of the institutions already in the database by insurance code, for the writer
    to link proxy parents without a query per row.
    """
    first_uscc: dict[str, int] = {}
    first_code: dict[str, int] = {}
    for a in apps:
        if a.uscc is not None:
            first = first_uscc.setdefault(a.uscc, a.number)
            if first != a.number:
                a.row.fail("统一社会信用代码", a.uscc, "uscc.duplicate", f"统一社会信用代码与第{first}行重复",
                           f"duplicates row {first}")
        if a.code is not None:
            first = first_code.setdefault(a.code, a.number)
            if first != a.number:
                a.row.fail("机构医保编码", a.code, "institution_code.duplicate", f"机构医保编码与第{first}行重复",
                           f"duplicates row {first}")

    known = _known_institutions(
        session,
        [a.uscc for a in apps if a.uscc],
        [c for a in apps for c in (a.code, a.parent_code) if c],
    )
    by_uscc = {k.uscc: k for k in known}
    by_code = {k.code: k for k in known}
    latest = _latest_applications(session, program_id, [k.id for k in by_uscc.values()])

    for a in apps:
        if a.uscc is None:
            continue
        mine = by_uscc.get(a.uscc)
        if a.code is not None:
            holder = by_code.get(a.code)
            if holder is not None and holder.uscc != a.uscc:
                a.row.fail("机构医保编码", a.code, "institution_code.taken",
                           f"机构医保编码已属于“{holder.name}”（{holder.uscc}）",
                           f"this insurance code belongs to another institution ({holder.uscc})")
        if mine is None:
            continue
        a.institution_id = mine.id
        a.existing = True
        previous = latest.get(mine.id)
        decision = reapplication(previous[1] if previous else None)
        if previous is not None:
            a.attempt = previous[0] + 1
        if decision is Reapplication.SKIP and previous is not None:
            a.skip_reason = (f"已有申请（第{previous[0]}次，状态 {previous[1].value}），本行未导入 / "
                             f"already applied (attempt {previous[0]}, {previous[1].value}): row not imported")
        elif decision is Reapplication.REFUSE and previous is not None:
            a.skip_reason = ("该机构已被取消资格，不能通过导入重新申请 / the institution was disqualified and "
                             "cannot re-apply through an upload")

    file_by_code = {a.code: a for a in apps if a.code is not None and a.skip_reason is None}
    will_be_proxied = [a.institution_id for a in apps
                       if a.parent_code and a.institution_id is not None and a.skip_reason is None]
    already_parents = _proxy_children(session, will_be_proxied)
    for a in apps:
        if a.parent_code is None or a.kind is None:
            continue
        column = "代采上级机构医保编码"
        parent_row = file_by_code.get(a.parent_code)
        parent_kind: InstitutionKind | None
        if parent_row is not None:
            parent_kind, parent_proxied, parent_district = (
                parent_row.kind, parent_row.parent_code is not None, parent_row.district
            )
        elif (parent := by_code.get(a.parent_code)) is not None:
            parent_kind, parent_proxied, parent_district = (
                parent.kind, parent.proxy_parent_id is not None, parent.district
            )
        else:
            a.row.fail(column, a.parent_code, "proxy.parent_unknown",
                       f"未找到医保编码为 {a.parent_code} 的代采上级机构（本文件和系统中均没有）",
                       "no institution with this insurance code in this file or in the system")
            continue
        if parent_kind is None:
            continue  # the parent's own row already reports its bad kind
        code = a.parent_code
        a.row.check(column, code, check_proxy_parent, a.kind, parent_kind, parent_proxied,
                    same_institution=code == a.code, parent_code=code)
        if a.institution_id is not None and a.institution_id in already_parents:
            a.row.fail(column, code, "proxy.is_parent",
                       "本机构已是其他机构的代采上级机构，不能再由别的机构代采",
                       "this institution buys for others already, so it cannot be proxy-procured itself")
        if parent_district and a.district and parent_district != a.district:
            a.row.warn(column, code, "proxy.other_district",
                       f"代采上级机构在{parent_district}，本机构在{a.district} / "
                       f"the proxy parent is in {parent_district}, this institution in {a.district}")
    return {k.code: k.id for k in known}


def _institution_values(a: _AppRow) -> dict[str, Any]:
    return {
        "name": a.name, "address": a.address, "uscc": a.uscc, "legal_rep": a.legal_rep, "insurance_code": a.code,
        "contact_name": a.contact_name, "phone": a.phone, "email": a.email, "district": a.district,
        "kind": a.kind, "private_tertiary": bool(a.private_tertiary), "special_designated": bool(a.special),
    }


def _write_institutions(session: Session, apps: list[_AppRow], known_ids: dict[str, int]) -> None:
    """Parents before children: a proxy parent is never proxied itself, so two passes resolve every id.

    ``known_ids``: institutions already in the database by insurance code (parents outside the file).
    """
    t = _table(Institution)
    ids_by_code = dict(known_ids)
    for a in apps:
        if a.institution_id is not None and a.code is not None:
            ids_by_code[a.code] = a.institution_id

    def parent_id(a: _AppRow) -> int | None:
        return None if a.parent_code is None else ids_by_code[a.parent_code]

    for proxied in (False, True):
        batch = [a for a in apps if a.institution_id is None and (a.parent_code is not None) == proxied]
        if not batch:
            continue
        rows = [{**_institution_values(a), "proxy_parent_id": parent_id(a)} for a in batch]
        # Plain executemany, then the ids back by USCC: INSERT ... RETURNING costs more here, and with
        # sort_by_parameter_order SQLite would even insert one row per statement.
        session.execute(t.insert(), rows)
        new_ids: dict[str, int] = {}
        for chunk in _chunks([a.uscc for a in batch if a.uscc is not None]):
            new_ids.update((r.uscc, int(r.id)) for r in session.execute(select(t.c.id, t.c.uscc).where(t.c.uscc.in_(chunk))))
        for a in batch:
            assert a.uscc is not None
            a.institution_id = new_ids[a.uscc]
            if a.code is not None:
                ids_by_code[a.code] = a.institution_id

    existing = [a for a in apps if a.existing]
    if existing:
        params = [{**_institution_values(a), "proxy_parent_id": parent_id(a), "_id": a.institution_id}
                  for a in existing]
        session.execute(
            update(t).where(t.c.id == bindparam("_id")).values(
                {k: bindparam(k) for k in params[0] if k != "_id"}
            ),
            params,
        )


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
    filename = path.name
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    now = clock.now()
    with transaction(engine) as session:
        program = _load_program(session, program_slug)
        defn = program.definition
        previous = _previous_import(session, "applications", program.id, digest)
        if previous is not None:
            return previous
        require_open(defn, (PhaseName.ENROLLMENT, PhaseName.CONTINUOUS_REVIEW), now)

        sheet = _parse_sheet(data, filename)
        columns = _application_columns(sheet, filename)
        districts = [d.name for d in defn.districts]
        memo: _Memo = {}
        apps = [_parse_application(_Row(r.number, r.cells, columns, memo), defn, districts) for r in sheet.rows]
        known_ids = _cross_checks(session, program.id, apps)
        errors = _unnamed_cells(sheet, len(sheet.header)) + _lossy_errors(sheet, sheet.header)
        for a in apps:
            errors.extend(a.row.errors)
        if not sheet.rows and not errors:
            errors.append(RowError(sheet.header_row, _HEADER, "", "文件中没有申请数据 / the file has no application rows",
                                   "file.no_rows"))
        if errors:
            raise ImportRejected(filename, _without_shadowed(errors))

        warnings = [w for a in apps for w in a.row.warnings]
        skipped = [(a.number, a.skip_reason) for a in apps if a.skip_reason is not None]
        todo = [a for a in apps if a.skip_reason is None]

        import_id = _record_import(session, "applications", program.id, digest, filename, len(apps), actor, now)
        if import_id is None:
            previous = _previous_import(session, "applications", program.id, digest)
            assert previous is not None
            return previous
        _write_institutions(session, todo, known_ids)

        app_t = _table(Application)
        app_rows = [
            {
                "program_id": program.id, "institution_id": a.institution_id, "attempt": a.attempt,
                "district": a.district, "state": ApplicationState.SUBMITTED, "committed_drug_count": a.count,
                "price_option": a.price_option.value if a.price_option else PriceOption.AT_WINNING_PRICE.value,
                "participation_years": a.years, "findings": [w.finding() for w in a.row.warnings],
                "import_id": import_id, "submitted_at": now,
            }
            for a in todo
        ]
        app_ids: list[int] = []
        if app_rows:
            # Plain executemany, then the ids back by import_id: cheaper than INSERT ... RETURNING, and
            # one application per institution per file makes institution_id the key back to the row.
            session.execute(app_t.insert(), app_rows)
            by_institution = {
                int(r.institution_id): int(r.id)
                for r in session.execute(select(app_t.c.id, app_t.c.institution_id).where(app_t.c.import_id == import_id))
            }
            app_ids = [by_institution[int(a.institution_id or 0)] for a in todo]
        write_audit(session, (
            AuditRecord(entity="application", entity_id=app_id, action="submit", from_state=None,
                        to_state=ApplicationState.SUBMITTED.value, actor=actor, role=Role.SYSTEM, at=now,
                        program_id=program.id, data={"import_id": import_id, "row": a.number, "attempt": a.attempt})
            for a, app_id in zip(todo, app_ids, strict=True)
        ))
        today = clock.today().isoformat()
        enqueue_notices(session, [
            NoticeDraft(
                key=f"application_receipt:{app_id}", kind="application_receipt", recipient_type="institution",
                recipient_name=a.name or "", email=a.email, recipient_id=a.institution_id, program_id=program.id,
                context={"program_name": program.name, "institution_name": a.name, "application_id": app_id,
                         "district": a.district, "submitted_on": today},
            )
            for a, app_id in zip(todo, app_ids, strict=True)
        ], now)
        _set_created(session, import_id, len(app_ids))
        return ImportResult(rows=len(apps), created=len(app_ids), skipped=skipped, warnings=warnings,
                            import_id=import_id)

