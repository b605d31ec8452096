"""The provincial platform's operational exports (orders, deliveries, payments, prices, lowest prices, price reports).

All-or-nothing per file: every bad row is reported with row, column, value and reason (Chinese and English) and
nothing is written; the same bytes imported again are recognised and create nothing; a row already stored from
an overlapping export (same natural key) is skipped. References (institutions, products, orders) are resolved
in bulk, rows are written with one bulk insert per file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import SQLModel

from core.bulk import insert_ignoring_conflicts, table_of
from core.db import serialize, transaction
from models.application_rules import parse_yes_no
from models.catalog import Product
from models.clock import SHANGHAI, Clock
from models.enrollment import Institution
from models.operations import Delivery, LowestPrice, PriceReport, PurchaseOrder, SalePrice, Settlement
from models.program import ImportRecord
from models.transitions import AuditRecord
from models.validators import (
    FieldError,
    field_error,
    validate_drug_code,
    validate_drug_codes,
    validate_insurance_institution_codes,
    validate_price,
    validate_prices,
    validate_required_text,
    validate_required_texts,
)
from tasks.intake.spreadsheets import (
    DataRow,
    ImportRejected,
    RowError,
    SheetStream,
    SpreadsheetError,
    read_upload,
    stream_table_bytes,
)
from tasks.platform.context import Ctx, chunks, flush_audit, program_context, role_of
from tasks.platform.files import (
    Cells,
    column_positions,
    parse_code,
    parse_date,
    parse_dates,
    parse_volume,
    record_import,
    row_error,
)


class OperationsKind(StrEnum):
    """The kinds of export `sanjin operations import` takes (the CLI's KIND argument)."""

    ORDERS = "orders"
    DELIVERIES = "deliveries"
    PAYMENTS = "payments"
    PRICES = "prices"
    LOWEST_PRICES = "lowest-prices"
    PRICE_REPORTS = "price-reports"
    PRICE_INDEX = "price-index"


OPERATIONS_KIND_LABELS: dict[OperationsKind, str] = {
    OperationsKind.ORDERS: "采购订单", OperationsKind.DELIVERIES: "配送验收", OperationsKind.PAYMENTS: "货款结算",
    OperationsKind.PRICES: "销售价格", OperationsKind.LOWEST_PRICES: "全国最低价", OperationsKind.PRICE_REPORTS: "企业价格申报",
    OperationsKind.PRICE_INDEX: "药店量价比较指数",
}

COLUMNS: dict[OperationsKind, tuple[str, ...]] = {
    OperationsKind.ORDERS: ("订单编号", "机构医保编码", "药品统一编码", "配送企业", "采购数量", "采购单价(元)", "下单时间"),
    OperationsKind.DELIVERIES: ("订单编号", "送达时间", "验收日期", "验收数量"),
    OperationsKind.PAYMENTS: ("订单编号", "付款日期", "付款金额(元)"),
    OperationsKind.PRICES: ("机构医保编码", "药品统一编码", "线下销售价(元)", "线上销售价(元)", "执行日期"),
    OperationsKind.LOWEST_PRICES: ("药品统一编码", "全国最低价(元)", "执行日期"),
    OperationsKind.PRICE_REPORTS: ("药品统一编码", "申报日期"),
    OperationsKind.PRICE_INDEX: ("机构医保编码", "量价比较指数达标"),
}


@dataclass
class OperationsImportResult:
    kind: OperationsKind
    rows: int
    created: int
    already_imported: bool = False


MAX_AMOUNT = Decimal(10) ** 12  # the money column NUMERIC(14,2) holds less than this

_DATETIME = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[T ]?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")


def parse_datetime(raw: str, column: str) -> datetime:
    """Platform times are Shanghai local: YYYY-MM-DD HH:MM[:SS] (2025/10/8 14:30 also)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    m = _DATETIME.fullmatch(text)
    try:
        if m is None:
            raise ValueError
        return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), tzinfo=SHANGHAI)
    except ValueError:
        raise field_error(column, raw, "datetime.invalid", f"{column}应为日期时间，格式 YYYY-MM-DD HH:MM（如 2025-10-15 14:30）",
                          "must be a date and time YYYY-MM-DD HH:MM, e.g. 2025-10-15 14:30") from None


# A time as a clean export writes it (YYYY-MM-DD HH:MM[:SS], ASCII): what datetime.fromisoformat reads the same.
_DATETIME_PLAIN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(?::[0-9]{2})?")


def parse_datetimes(raws: Sequence[str]) -> list[datetime] | None:
    """:func:`parse_datetime` of a whole column when every cell is plain, else None (then cell by cell)."""
    if not all(map(_DATETIME_PLAIN.fullmatch, raws)):
        return None
    try:
        return [datetime.fromisoformat(t).replace(tzinfo=SHANGHAI) for t in raws]
    except ValueError:  # 2025-02-30 or 24:00: an error cell by cell
        return None


def parse_positive(raw: str, column: str) -> int:
    n = parse_volume(raw, column)
    if n <= 0:
        raise field_error(column, raw, "int.not_positive", f"{column}应为大于0的整数", "must be a whole number > 0")
    return n


_POSITIVE_PLAIN = re.compile(r"[1-9][0-9]{0,8}")


def parse_positives(raws: Sequence[str]) -> list[int] | None:
    """:func:`parse_positive` of a whole column when every cell is a plain 1-999,999,999, else None (cell by cell)."""
    if not all(map(_POSITIVE_PLAIN.fullmatch, raws)):
        return None
    return list(map(int, raws))


def parse_money(raw: str, column: str) -> Decimal:
    return validate_price(raw, column)


def parse_optional_money(raw: str, column: str) -> Decimal | None:
    return None if not raw.strip() else validate_price(raw, column)


def _order_no(raw: str, column: str) -> str:
    return validate_required_text(raw, column, 64)


def _distributor(raw: str, column: str) -> str:
    return validate_required_text(raw, column, 200)


def _drug(raw: str, column: str) -> str:
    return validate_drug_code(raw, column)


class _Refs:
    """Codes of the file resolved to ids in bulk (chunked IN lists), with the errors of unknown ones."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def lookup(self, column: Any, values: Sequence[str], *extra: Any, where: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        table = column.table
        for chunk in chunks(sorted(set(values))):
            query = select(column, table.c.id, *extra).where(column.in_(chunk))
            if where is not None:
                query = query.where(where)
            for r in self.ctx.session.execute(query):
                out[r[0]] = r[1:] if extra else r[1]
        return out


def _unknown(row: int, column: str, value: str, what_zh: str, what_en: str) -> RowError:
    return row_error(row, column, value, f"{what_en.replace(' ', '_')}.unknown", f"系统中没有该{what_zh}",
                     f"no {what_en} with this code")


def _future(ctx: Ctx, row: int, column: str, day: date) -> RowError | None:
    if day <= ctx.today:
        return None
    return row_error(row, column, day.isoformat(), "date.future", f"{column}晚于今天（{ctx.today.isoformat()}）",
                     f"is after today ({ctx.today.isoformat()})")


Parsed = list[tuple[int, dict[str, Any]]]

# A cell parser's whole-column form: the same values as the parser applied cell by cell when every cell is in
# the plain form a clean export has, else None (and the column is parsed cell by cell, each bad cell reported).
AT_ONCE: dict[Callable[[str, str], Any], Callable[[Sequence[str]], list[Any] | None]] = {
    _order_no: lambda raws: validate_required_texts(raws, 64),
    _distributor: lambda raws: validate_required_texts(raws, 200),
    parse_code: validate_insurance_institution_codes,
    _drug: validate_drug_codes,
    parse_positive: parse_positives,
    parse_money: validate_prices,
    parse_datetime: parse_datetimes,
    parse_date: parse_dates,
}


def parse_rows(sheet: Any, where: dict[str, int], parsers: dict[str, Callable[[str, str], Any]],
               errors: list[RowError], rows: Iterable[DataRow] | None = None) -> Parsed:
    """The rows (all of the sheet's, or those given) whose documented cells all parse; other rows' errors in `errors`.

    A column whose every cell is in its plain form is parsed at once (AT_ONCE); the other columns cell by cell,
    which reports each bad cell (row, column, value, reason) in the row and column order as before: a column
    parsed at once has no bad cell. A column with a cell that lost digits (sheet.lossy) is always cell by cell.
    """
    rows = list(sheet.rows if rows is None else rows)
    lossy_columns = {c for _, c in sheet.lossy}
    at_once: dict[str, list[Any]] = {}
    for column, parse in parsers.items():
        i, whole = where[column], AT_ONCE.get(parse)
        if whole is None or i in lossy_columns:
            continue
        parsed = whole([r.cells[i] if i < len(r.cells) else "" for r in rows])
        if parsed is not None:
            at_once[column] = parsed
    if parsers and len(at_once) == len(parsers):  # the clean export: no row can have an error
        names = list(at_once)
        return [(r.number, dict(zip(names, values, strict=True)))
                for r, values in zip(rows, zip(*at_once.values(), strict=True), strict=True)]
    out: Parsed = []
    for k, r in enumerate(rows):
        cells = Cells(sheet, r.number, r.cells, where)
        values = {c: at_once[c][k] if c in at_once else cells.take(c, p) for c, p in parsers.items()}
        errors.extend(cells.errors)
        if not cells.errors:
            out.append((r.number, values))
    return out


def _orders(ctx: Ctx, rows: Parsed, errors: list[RowError], memo: dict[str, Any]) -> list[dict[str, Any]]:
    refs = _Refs(ctx)
    insts = refs.lookup(table_of(Institution).c.insurance_code, [v["机构医保编码"] for _, v in rows])
    prods = refs.lookup(table_of(Product).c.drug_code, [v["药品统一编码"] for _, v in rows],
                        table_of(Product).c.enterprise_id)
    seen: dict[str, int] = memo.setdefault("order_rows", {})  # across the file's chunks
    out = []
    for number, v in rows:
        inst, prod = insts.get(v["机构医保编码"]), prods.get(v["药品统一编码"])
        if inst is None:
            errors.append(_unknown(number, "机构医保编码", v["机构医保编码"], "医保编码的机构", "institution"))
        if prod is None:
            errors.append(_unknown(number, "药品统一编码", v["药品统一编码"], "药品统一编码的产品", "product"))
        if (first := seen.setdefault(v["订单编号"], number)) != number:
            errors.append(row_error(number, "订单编号", v["订单编号"], "order.duplicate",
                                    f"订单编号与第{first}行重复", f"the same order number as row {first}"))
        if v["下单时间"].date() > ctx.today:
            errors.append(row_error(number, "下单时间", str(v["下单时间"]), "date.future", "下单时间晚于今天",
                                    "is after today"))
        amount = v["采购单价(元)"] * v["采购数量"]
        if amount >= MAX_AMOUNT:  # NUMERIC(14,2): a larger product would overflow the column with a traceback
            errors.append(row_error(number, "采购数量", str(v["采购数量"]), "amount.too_large",
                                    f"采购金额（数量×单价）超过{MAX_AMOUNT}元", f"quantity × unit price exceeds {MAX_AMOUNT}"))
        if inst is None or prod is None:
            continue
        out.append({"program_id": ctx.program_id, "order_no": v["订单编号"], "institution_id": inst,
                    "product_id": prod[0], "enterprise_id": prod[1], "distributor": v["配送企业"],
                    "quantity": v["采购数量"], "unit_price": v["采购单价(元)"],
                    "amount": amount, "ordered_at": v["下单时间"]})
    return out


def _by_order(ctx: Ctx, rows: Parsed, errors: list[RowError]) -> dict[str, Any]:
    orders = _Refs(ctx).lookup(table_of(PurchaseOrder).c.order_no, [v["订单编号"] for _, v in rows],
                               table_of(PurchaseOrder).c.ordered_at,
                               where=table_of(PurchaseOrder).c.program_id == ctx.program_id)
    for number, v in rows:
        if v["订单编号"] not in orders:
            errors.append(row_error(number, "订单编号", v["订单编号"], "order.unknown", "本项目中没有该订单编号（请先导入采购订单）",
                                    "no order with this number in the program (import the orders first)"))
    return orders


def _deliveries(ctx: Ctx, rows: Parsed, errors: list[RowError], memo: dict[str, Any]) -> list[dict[str, Any]]:
    orders = _by_order(ctx, rows, errors)
    out = []
    for number, v in rows:
        if (order := orders.get(v["订单编号"])) is None:
            continue
        arrived, accepted = v["送达时间"], v["验收日期"]
        if arrived < order[1]:
            errors.append(row_error(number, "送达时间", str(arrived), "delivery.before_order", "送达时间早于下单时间",
                                    "arrives before the order was placed"))
        if accepted < arrived.astimezone(SHANGHAI).date():
            errors.append(row_error(number, "验收日期", accepted.isoformat(), "delivery.accepted_before_arrival",
                                    "验收日期早于送达日期", "accepted before it arrived"))
        if (e := _future(ctx, number, "验收日期", accepted)) is not None:
            errors.append(e)
        out.append({"order_id": order[0], "arrived_at": arrived, "accepted_on": accepted, "quantity": v["验收数量"]})
    return out


def _payments(ctx: Ctx, rows: Parsed, errors: list[RowError], memo: dict[str, Any]) -> list[dict[str, Any]]:
    orders = _by_order(ctx, rows, errors)
    out = []
    for number, v in rows:
        if (e := _future(ctx, number, "付款日期", v["付款日期"])) is not None:
            errors.append(e)
        if (order := orders.get(v["订单编号"])) is not None:
            out.append({"order_id": order[0], "paid_on": v["付款日期"], "amount": v["付款金额(元)"]})
    return out


def _prices(ctx: Ctx, rows: Parsed, errors: list[RowError], memo: dict[str, Any]) -> list[dict[str, Any]]:
    refs = _Refs(ctx)
    insts = refs.lookup(table_of(Institution).c.insurance_code, [v["机构医保编码"] for _, v in rows])
    prods = refs.lookup(table_of(Product).c.drug_code, [v["药品统一编码"] for _, v in rows])
    out = []
    for number, v in rows:
        inst, prod = insts.get(v["机构医保编码"]), prods.get(v["药品统一编码"])
        if inst is None:
            errors.append(_unknown(number, "机构医保编码", v["机构医保编码"], "医保编码的机构", "institution"))
        if prod is None:
            errors.append(_unknown(number, "药品统一编码", v["药品统一编码"], "药品统一编码的产品", "product"))
        if inst is not None and prod is not None:
            out.append({"program_id": ctx.program_id, "institution_id": inst, "product_id": prod,
                        "offline_price": v["线下销售价(元)"], "online_price": v["线上销售价(元)"],
                        "effective_on": v["执行日期"]})
    return out


def _price_index(ctx: Ctx, rows: Parsed, errors: list[RowError], memo: dict[str, Any]) -> list[dict[str, Any]]:
    """Seed 002 §七: a pharmacy whose overall prices are not above the region's 量价比较指数 may add up to 15 %."""
    insts = _Refs(ctx).lookup(table_of(Institution).c.insurance_code, [v["机构医保编码"] for _, v in rows])
    seen: dict[str, int] = memo.setdefault("institution_rows", {})
    out = []
    for number, v in rows:
        code = v["机构医保编码"]
        if (first := seen.setdefault(code, number)) != number:
            errors.append(row_error(number, "机构医保编码", code, "institution.duplicate",
                                    f"机构医保编码与第{first}行重复", f"the same institution as row {first}"))
        if (inst := insts.get(code)) is None:
            errors.append(_unknown(number, "机构医保编码", code, "医保编码的机构", "institution"))
            continue
        out.append({"institution_id": inst, "price_index_ok": v["量价比较指数达标"]})
    return out


def _write_price_index(ctx: Ctx, rows: list[dict[str, Any]], actor: str) -> int:
    """Set each institution's index flag where it changes, with an audit row per change; how many changed."""
    t = table_of(Institution)
    wanted = {r["institution_id"]: r["price_index_ok"] for r in rows}
    current = dict(_Refs(ctx).lookup(t.c.id, list(wanted), t.c.price_index_ok)) if wanted else {}
    changed = [(i, ok) for i, ok in wanted.items() if i in current and bool(current[i][-1]) != ok]  # (id, flag)
    if changed:
        ctx.session.execute(update(t).where(t.c.id == bindparam("iid")).values(price_index_ok=bindparam("ok")),
                            [{"iid": i, "ok": ok} for i, ok in changed])
        ctx.audit.extend(AuditRecord("institution", i, "price_index_set", "是" if not ok else "否",
                                     "是" if ok else "否", actor, role_of(actor),
                                     ctx.now, program_id=ctx.program_id) for i, ok in changed)
        flush_audit(ctx)
    return len(changed)


def _drug_rows(ctx: Ctx, rows: Parsed, errors: list[RowError], fields: dict[str, str]) -> list[dict[str, Any]]:
    return [{"program_id": ctx.program_id, **{k: v[c] for k, c in fields.items()}} for _, v in rows]


@dataclass(frozen=True)
class _Kind:
    model: type[SQLModel]
    parsers: dict[str, Callable[[str, str], Any]]
    key: tuple[str, ...]
    build: Callable[[Ctx, Parsed, list[RowError], dict[str, Any]], list[dict[str, Any]]]
    # Rows are inserted by their natural key unless the kind writes otherwise (the price index sets a flag).
    write: Callable[[Ctx, list[dict[str, Any]], str], int] | None = None


KINDS: dict[OperationsKind, _Kind] = {
    OperationsKind.ORDERS: _Kind(PurchaseOrder, {
        "订单编号": _order_no, "机构医保编码": parse_code, "药品统一编码": _drug, "配送企业": _distributor,
        "采购数量": parse_positive, "采购单价(元)": parse_money, "下单时间": parse_datetime},
        ("program_id", "order_no"), _orders),
    OperationsKind.DELIVERIES: _Kind(Delivery, {
        "订单编号": _order_no, "送达时间": parse_datetime, "验收日期": parse_date, "验收数量": parse_positive},
        ("order_id", "arrived_at"), _deliveries),
    OperationsKind.PAYMENTS: _Kind(Settlement, {
        "订单编号": _order_no, "付款日期": parse_date, "付款金额(元)": parse_money},
        ("order_id", "paid_on", "amount"), _payments),
    OperationsKind.PRICES: _Kind(SalePrice, {
        "机构医保编码": parse_code, "药品统一编码": _drug, "线下销售价(元)": parse_money,
        "线上销售价(元)": parse_optional_money, "执行日期": parse_date},
        ("program_id", "institution_id", "product_id", "effective_on"), _prices),
    OperationsKind.LOWEST_PRICES: _Kind(LowestPrice, {
        "药品统一编码": _drug, "全国最低价(元)": parse_money, "执行日期": parse_date},
        ("program_id", "drug_code", "effective_on"),
        lambda ctx, rows, errors, memo: _drug_rows(ctx, rows, errors, {"drug_code": "药品统一编码", "price": "全国最低价(元)",
                                                                 "effective_on": "执行日期"})),
    OperationsKind.PRICE_REPORTS: _Kind(PriceReport, {"药品统一编码": _drug, "申报日期": parse_date},
                                        ("program_id", "drug_code", "reported_on"),
                                        lambda ctx, rows, errors, memo: _drug_rows(ctx, rows, errors, {
                                            "drug_code": "药品统一编码", "reported_on": "申报日期"})),
    OperationsKind.PRICE_INDEX: _Kind(Institution, {"机构医保编码": parse_code, "量价比较指数达标": parse_yes_no},
                                      ("id",), _price_index, _write_price_index),
}


# Rows parsed, resolved and written at a time. The file is read row by row: a 1,000,000-line export held whole
# (the reader's cells, their text, the parsed values and the rows to insert) peaked at ~1.3 GB.
CHUNK_ROWS = 50_000


def _stream(data: bytes, filename: str) -> SheetStream:
    try:
        return stream_table_bytes(data, filename)
    except SpreadsheetError as exc:
        raise ImportRejected(filename, [RowError(0, "", "", str(exc), "file.unreadable")]) from exc


def _chunks(sheet: SheetStream, filename: str) -> Iterator[list[DataRow]]:
    rows = iter(sheet.rows)
    while True:
        try:
            chunk = list(islice(rows, CHUNK_ROWS))
        except SpreadsheetError as exc:  # damaged past the header (a CSV's broken quoting)
            raise ImportRejected(filename, [RowError(0, "", "", str(exc), "file.unreadable")]) from exc
        if not chunk:
            return
        yield chunk


def import_operations(engine: Engine, slug: str, kind: OperationsKind | str, path: Path, *, clock: Clock,
                      actor: str = "system") -> OperationsImportResult:
    """Import one platform export of `kind`; ImportRejected (every bad row) and nothing written if any row is bad.

    Chunk by chunk in one transaction: each chunk's rows are written while no bad row has been seen, and a bad
    row anywhere rolls back what was written (the whole file is still read, so every bad row is reported).
    """
    kind = OperationsKind(kind)
    spec = KINDS[kind]
    data = read_upload(path)
    digest = hashlib.sha256(data).hexdigest()
    record_kind = f"operations:{kind.value}"
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        serialize(session, f"import:operations:{ctx.program_id}")  # as applications: an overlapping file waits
        t = table_of(ImportRecord)
        previous = session.execute(select(t.c.rows).where(t.c.kind == record_kind, t.c.program_id == ctx.program_id,
                                                          t.c.sha256 == digest)).scalar()
        if previous is not None:
            return OperationsImportResult(kind, int(previous), 0, already_imported=True)
        sheet = _stream(data, path.name)
        del data  # hashed; the reader holds what it needs
        where = column_positions(sheet, path.name, COLUMNS[kind])
        errors: list[RowError] = []
        import_id = record_import(ctx, record_kind, digest, path.name, 0, 0, actor)
        memo: dict[str, Any] = {}
        rows = created = 0
        for chunk in _chunks(sheet, path.name):
            rows += len(chunk)
            values = spec.build(ctx, parse_rows(sheet, where, spec.parsers, errors, chunk), errors, memo)
            if errors:
                continue  # nothing more is written; the rest is read for its errors
            if spec.write is not None:
                created += spec.write(ctx, values, actor)
                continue
            for v in values:
                v["import_id"] = import_id
            created += insert_ignoring_conflicts(session, spec.model, values, list(spec.key))
        if not rows:
            errors.append(row_error(sheet.header_row, "表头", "", "file.no_rows", "文件中没有数据行", "the file has no rows"))
        if errors:
            raise ImportRejected(path.name, errors)  # the transaction rolls back the chunks written
        session.execute(update(t).where(t.c.id == import_id).values(rows=rows, created=created))
        return OperationsImportResult(kind, rows, created)


__all__ = ["COLUMNS", "OPERATIONS_KIND_LABELS", "FieldError", "OperationsImportResult", "OperationsKind", "Parsed",
           "import_operations", "parse_datetime", "parse_rows"]
