"""Policy: an operations export's column parsed at once (the importer's fast path) gives exactly the values its
cells give parsed one by one; when any cell would fail or needs folding, it gives nothing, and the importer
parses that column cell by cell, where every bad cell is reported with its row, column, value and reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from models.validators import FieldError
from tasks.intake.operations_import import (
    AT_ONCE,
    _distributor,
    _drug,
    _order_no,
    parse_datetime,
    parse_money,
    parse_positive,
    parse_rows,
)
from tasks.intake.spreadsheets import DataRow, Sheet
from tasks.platform.files import Cells, parse_code, parse_date


def _cell_by_cell(parse: Callable[[str, str], Any], raws: Sequence[str]) -> list[Any] | None:
    out = []
    for raw in raws:
        try:
            out.append(parse(raw, "列"))
        except FieldError:
            return None
    return out


def _same(parse: Callable[[str, str], Any], raws: list[str]) -> None:
    at_once = AT_ONCE[parse](raws)
    one_by_one = _cell_by_cell(parse, raws)
    if at_once is not None:  # the fast path never accepts what a cell refuses, and gives the very values
        assert one_by_one is not None
        assert [(type(v), str(v)) for v in at_once] == [(type(v), str(v)) for v in one_by_one]


# Odd inputs the platform's exports and people's spreadsheets carry.
_MONEY_ODD = ["12.3", "12.30", "0.01", "999999999999.99", "1000000000000", "0", "0.00", "00.5", "１２.３", " 12.3",
              "12.3 ", "1,000.00", "1e3", "-5", "+5", "12.345", "12.300000000000001", "12.", ".5", "¥12", "12元",
              "nan", "inf", "", "12,5", "٣", "45678.0"]
_INT_ODD = ["1", "12", "999999999", "1000000000", "0", "00", "012", "１２", " 12", "12.0", "12.5", "1,000", "1e3",
            "-1", "+1", "", "٣", "1.00"]
_DATE_ODD = ["2025-10-15", "2025-1-5", "2025/10/15", "2025年10月15日", "20251015", "2025-02-30", "2025-13-01",
             "２０２５-１０-１５", "45678", "45678.0", "2025-10-15 14:30", "2025-10-15 14:30:00", " 2025-10-15", ""]
_DATETIME_ODD = ["2025-10-15 14:30", "2025-10-15 14:30:05", "2025-10-15 24:00", "2025-10-15 14:60",
                 "2025-10-15T14:30", "2025/10/8 14:30", "2025-10-15 14:30:00.5", "2025-10-15", "45678.6",
                 "２０２５-10-15 14:30", "2025-02-30 10:00", " 2025-10-15 14:30", "2025-10-15  14:30", ""]
_DRUG_ODD = ["XA01AAA0001010101010101", "ZA01AAA0001010101010", "XA01AA", "XA01A", "xa01aaa0001010101010101",
             "ZA01AAA00010101010101", "XA01AAA00010101010101012", "A01AAA0001", "X A01AAA", "ＸA01AAA", ""]
_INSURANCE_ODD = ["H21010200001", "P21010200001", "H66010200001", "H99010200001", "H71010200001", "h21010200001",
                  "H2101020000", "H210102000011", " H21010200001", "Ｈ21010200001", "X21010200001", ""]
_TEXT_ODD = ["国药控股沈阳有限公司", "  空格  ", "\u3000", "", "A" * 64, "A" * 65, "Ⅻ" * 30, "ﬁ"]


def _column(odd: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(odd), max_size=6)


@given(_column(_MONEY_ODD))
@example(["12.3", "0.01", "999999999999.99"])
@example(["12.3", "0"])
def test_a_money_column_parsed_at_once_gives_what_each_cell_gives(raws):
    _same(parse_money, raws)


@given(_column(_INT_ODD))
@example(["1", "999999999"])
def test_a_quantity_column_parsed_at_once_gives_what_each_cell_gives(raws):
    _same(parse_positive, raws)


@given(_column(_DATE_ODD))
@example(["2025-10-15", "2024-02-29"])
def test_a_date_column_parsed_at_once_gives_what_each_cell_gives(raws):
    _same(parse_date, raws)


@given(_column(_DATETIME_ODD))
@example(["2025-10-15 14:30", "2025-10-15 14:30:05"])
def test_a_datetime_column_parsed_at_once_gives_what_each_cell_gives(raws):
    _same(parse_datetime, raws)


@given(_column(_DRUG_ODD), _column(_INSURANCE_ODD), _column(_TEXT_ODD))
def test_code_and_text_columns_parsed_at_once_give_what_each_cell_gives(drugs, codes, texts):
    _same(_drug, drugs)
    _same(parse_code, codes)
    _same(_order_no, texts)
    _same(_distributor, texts)


def test_a_clean_export_s_columns_are_all_taken_at_once():
    clean = {parse_money: ["12.30", "0.5", "3"], parse_positive: ["1", "20"], parse_date: ["2025-10-15"],
             parse_datetime: ["2025-10-15 14:30", "2025-10-15 14:30:05"], _drug: ["XA01AAA0001010101010101"],
             parse_code: ["H21010200001"], _order_no: ["PO-1"], _distributor: ["国药控股"]}
    for parse, raws in clean.items():
        assert AT_ONCE[parse](raws) is not None, parse


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "订单编号": _order_no, "机构医保编码": parse_code, "药品统一编码": _drug, "配送企业": _distributor,
    "采购数量": parse_positive, "采购单价(元)": parse_money, "下单时间": parse_datetime}
_GOOD = ("PO-1", "H21010200001", "XA01AAA0001010101010101", "国药控股", "10", "12.30", "2025-10-15 14:30")


def _row_by_row(sheet: Sheet, where: dict[str, int]) -> tuple[list[Any], list[Any]]:
    out, errors = [], []
    for r in sheet.rows:
        cells = Cells(sheet, r.number, r.cells, where)
        values = {c: cells.take(c, p) for c, p in _PARSERS.items()}
        errors.extend(cells.errors)
        if not cells.errors:
            out.append((r.number, values))
    return out, errors


@given(st.lists(st.tuples(st.sampled_from(["PO-1", "", "\u3000PO"]), st.sampled_from([*_INSURANCE_ODD[:3], ""]),
                          st.sampled_from(_DRUG_ODD[:4]), st.sampled_from(["国药控股", " 国药 "]),
                          st.sampled_from(_INT_ODD), st.sampled_from(_MONEY_ODD), st.sampled_from(_DATETIME_ODD)),
                max_size=5),
       st.booleans())
@example([_GOOD, (*_GOOD[:4], "0", "12.345", "2025-02-30 10:00")], False)
@example([_GOOD, _GOOD[:5]], True)  # a short row: its missing cells are blank
@example([_GOOD, _GOOD], False)  # a clean chunk: every column at once
@example([], False)
def test_an_orders_chunk_parsed_column_wise_gives_the_rows_and_errors_of_row_by_row(rows, lossy):
    header = tuple(_PARSERS)
    sheet = Sheet(header, 1, [DataRow(n + 2, cells) for n, cells in enumerate(rows)],
                  frozenset({(2, 5)}) if lossy else frozenset())
    where = {c: i for i, c in enumerate(header)}
    errors: list[Any] = []
    parsed = parse_rows(sheet, where, _PARSERS, errors)
    assert (parsed, errors) == _row_by_row(sheet, where)
