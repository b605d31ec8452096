"""An institution application file read column by column, with every per-row rule checked.

Column-wise because that is how 100,000 rows are checked in about a second (LIMITS.md): each
validator runs over a whole column, the texts that repeat once per distinct text, and the rules
between a row's cells once per distinct combination. Checks that need other rows or the database
are in tasks.intake.application_checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import ParamSpec, TypeVar

from models.application_rules import (
    PriceOption,
    check_code_matches_kind,
    check_drug_count,
    check_participation_years,
    check_price_option,
    check_private_tertiary,
    parse_kind,
    parse_positive_int,
    parse_price_option,
    parse_yes_no,
)
from models.program_definition import ProgramDefinition, Rules
from models.states import InstitutionKind
from models.validators import (
    FieldError,
    check_uscc,
    check_usccs,
    field_error,
    validate_district,
    validate_email,
    validate_insurance_institution_code,
    validate_phone,
    validate_required_text,
    validate_required_texts,
)
from tasks.intake.import_files import HEADER_COLUMN, file_error, header_problem
from tasks.intake.spreadsheets import RowError, RowWarning, Sheet, normalize_header

__all__ = [
    "APPLICATION_COLUMNS",
    "APPLICATION_OPTIONAL_COLUMNS",
    "Applications",
    "application_columns",
    "parse_applications",
]

# Seed 001 att.1 (申请表) + att.2 (承诺书) + what the product needs to route and decide them.
APPLICATION_COLUMNS: tuple[str, ...] = (
    "单位名称", "单位地址", "统一社会信用代码", "法人代表", "机构医保编码", "联系人", "联系电话",
    "电子邮箱", "所属区县", "机构类别", "特药定点", "承诺配备药品数量", "销售价格承诺", "承诺参加年限",
)
APPLICATION_OPTIONAL_COLUMNS: tuple[str, ...] = ("民营三级", "代采上级机构医保编码")

T = TypeVar("T")
P = ParamSpec("P")


def application_columns(sheet: Sheet, filename: str) -> dict[str, int]:
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
        raise file_error(
            filename, header_problem(expected, list(sheet.header), "；".join(problems)),
            row=sheet.header_row, column=HEADER_COLUMN, value="、".join(sheet.header), rule="header.mismatch",
        )
    return {name: i for i, name in enumerate(found)}


_ALL_APPLICATION_COLUMNS = (*APPLICATION_COLUMNS, *APPLICATION_OPTIONAL_COLUMNS)


@dataclass
class Applications:
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


def parse_applications(sheet: Sheet, columns: dict[str, int], defn: ProgramDefinition,
                       districts: Sequence[str]) -> Applications:
    numbers = [r.number for r in sheet.rows]
    raw = _raw_columns(sheet, columns, _ALL_APPLICATION_COLUMNS)
    errors: list[RowError] = []

    def each(column: str, parse: Callable[[str], T]) -> list[T | None]:
        return _parse_column(raw[column], parse, column, numbers, errors)

    def distinct(column: str, parse: Callable[[str], T]) -> list[T | None]:
        return _parse_distinct(raw[column], parse, column, numbers, errors)

    def text(column: str, max_len: int) -> list[str | None]:
        whole = validate_required_texts(raw[column], max_len)  # the usual column, all good: at once
        if whole is not None:
            return list(whole)
        return each(column, partial(validate_required_text, field=column, max_len=max_len))

    name = text("单位名称", 200)
    address = text("单位地址", 300)
    checked: Sequence[tuple[str, list[str]] | None] | None = check_usccs(raw["统一社会信用代码"])
    if checked is None:  # some code is not as the register prints it: cell by cell, each bad one reported
        checked = each("统一社会信用代码", check_uscc)
    legal_rep = text("法人代表", 64)
    code = each("机构医保编码", validate_insurance_institution_code)
    contact_name = text("联系人", 64)
    phone = each("联系电话", validate_phone)
    email = each("电子邮箱", _optional_email)
    parent_code = distinct("代采上级机构医保编码", _optional_code)
    apps = Applications(
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
