"""A generated corpus of bad input (issue #18): at least 1,000 cases over every import kind, program files and CLI
arguments, none committed — each case is made from a seeded random generator and a valid starting point.

Every case must be refused the way a person can act on: ImportRejected / a CLI exit code 1, a message in Chinese
and English naming the file (and, for a bad cell, its row and column), no traceback, none of the *other* rows'
personal data (names, phones of rows that were fine), and not one row written. On SQLite and on PostgreSQL (the
`engine` fixture): a value one database stores and the other refuses (NUL, a 20-digit id) is exactly what a corpus
finds. Files are made from a seeded random generator; command-line arguments are drawn by hypothesis, a bad value
per argument (tests/corpus.py: derandomized in CI). Each family prints its count per database. Marked slow: about
40-60 s per database on a loaded 2-core machine.
"""

from __future__ import annotations

import io
import random
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from models.clock import SHANGHAI, FixedClock
from models.program_definition import ProgramFileError, load_program_file
from tasks.intake.application_import import import_applications
from tasks.intake.declaration_import import import_declaration
from tasks.intake.operations_import import COLUMNS as OPERATIONS_COLUMNS
from tasks.intake.operations_import import OperationsKind, import_operations
from tasks.intake.register_import import COLUMNS as REGISTER_COLUMNS
from tasks.intake.register_import import import_register
from tasks.intake.spreadsheets import ImportRejected
from tests.corpus import Stopwatch, corpus_settings, report, row_counts
from tests.factories import make_program
from tests.factories_files import APPLICATION_HEADER, DECLARATION_HEADER, application_row, product_row, write_csv

SEED = 20261206
ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"[A-Za-z]{3,}")
pytestmark = pytest.mark.slow
ENROLLING = FixedClock(datetime(2025, 9, 12, 10, tzinfo=SHANGHAI))
DECLARING = FixedClock(datetime(2025, 8, 12, 10, tzinfo=SHANGHAI))
REVIEWING = FixedClock(datetime(2025, 12, 20, 10, tzinfo=SHANGHAI))

# Values no column of its kind accepts; control characters and bidi overrides ride along in several.
NOT_A_NUMBER = ["abc", "十二", "-", "1e", "\x1b[2J", "12..5", "１２a"]
TOO_BIG = ["100000000000000000000", "1" * 40]
NEGATIVE = ["-1", "-0.5", "-100000000000000000000"]
BAD_DATE = ["2025-02-30", "2025-13-01", "2025-00-10", "yesterday", "31/31/2025", "2025-02-30 10:00", "\u202e2025-01-01"]
BAD_DATETIME = ["2025-02-30 10:00", "2025-12-01 25:00", "2025-12-01 10:61", "noon", "2025-12-01T"]
BAD_CODE = ["", "X", "ABC\x1b[31m", "H2101020000", "H21010200001234", "\u202eH210102000001"]
BAD_DRUG = ["", "X", "XC10AA0001A00101010048Z\x07", "药品编码"]

APPLICATION_BAD: dict[str, list[str]] = {
    "统一社会信用代码": ["", "123", "91210102MA0000000X", "9121010200000000ZZ", "\x1b[2J", *TOO_BIG],
    "机构医保编码": BAD_CODE,
    "联系电话": ["abc", "123", "1380000000000000000000", "\x1b]0;x\x07"],
    "电子邮箱": ["not-an-email", "a@", "@b.cn", "a b@c.cn"],
    "所属区县": ["火星区", "", "和平区\u202e"],
    "机构类别": ["医院", "", "x", "三甲医院"],
    "特药定点": ["也许", "2", "yesno"],
    "承诺配备药品数量": [*NEGATIVE, "0", *NOT_A_NUMBER, *TOO_BIG, "1.5"],
    "销售价格承诺": ["随便", "", "加价50%"],
    "承诺参加年限": ["0", "-1", "十年", *TOO_BIG],
    "单位名称": [""],
    "法人代表": [""],
}
DECLARATION_BAD: dict[str, list[str]] = {
    "药品统一编码": BAD_DRUG,
    "中选价(元)": [*NEGATIVE, *NOT_A_NUMBER, "", "10000000000000"],
    "批准文号": ["", "准字", "国药准字X123", "\x1b[2J"],
    "特药": ["也许", "2"],
    "产品名称": [""],
}
REGISTER_BAD: dict[str, list[str]] = {
    "机构医保编码": BAD_CODE,
    "所属区县": ["火星区", ""],
    "机构类别": ["医院", ""],
    "定点状态": ["也许", "", "ok"],
    "定点日期": [*BAD_DATE, "2099-01-01", ""],
    "单位名称": [""],
}
OPERATION_BAD: dict[str, list[str]] = {
    "采购数量": [*NEGATIVE, "0", *NOT_A_NUMBER, *TOO_BIG],
    "采购单价(元)": [*NEGATIVE, *NOT_A_NUMBER],
    "下单时间": BAD_DATETIME,
    "送达时间": BAD_DATETIME,
    "验收日期": BAD_DATE,
    "验收数量": [*NEGATIVE, *NOT_A_NUMBER, *TOO_BIG],
    "付款日期": BAD_DATE,
    "付款金额(元)": [*NEGATIVE, *NOT_A_NUMBER],
    "线下销售价(元)": [*NEGATIVE, *NOT_A_NUMBER],
    "执行日期": BAD_DATE,
    "全国最低价(元)": [*NEGATIVE, *NOT_A_NUMBER],
    "申报日期": BAD_DATE,
    "机构医保编码": BAD_CODE,
    "药品统一编码": BAD_DRUG,
}


@dataclass(frozen=True)
class Kind:
    """One upload kind: its header, a valid row maker, the bad values by column, and how to import a file."""

    name: str
    header: tuple[str, ...]
    row: Callable[[int], dict[str, Any]]
    bad: dict[str, list[str]]
    run: Callable[[Engine, Path], object]
    private: tuple[str, ...] = ()  # columns whose values of the other rows must never appear in a message


def _secret(n: int) -> str:
    return f"私密{n:03d}号"


def _application(n: int) -> dict[str, Any]:
    return application_row(n, 法人代表=_secret(n), 联系人=_secret(n + 500), 联系电话=str(13900000000 + n))


def _register(n: int) -> dict[str, Any]:
    return {"机构医保编码": f"H210102{n:05d}", "单位名称": f"沈阳市和平区测试{n}号社区卫生服务中心", "所属区县": "和平区",
            "机构类别": "社区卫生服务中心", "定点状态": "正常", "定点日期": "2024-03-01"}


def _operation(kind: OperationsKind) -> Callable[[int], dict[str, Any]]:
    example = {"订单编号": "PO-{n}", "机构医保编码": "H210102{n:05d}", "药品统一编码": "XC10AA{n:04d}A001010100483",
               "配送企业": "国药控股沈阳有限公司", "采购数量": "10", "采购单价(元)": "12.50", "下单时间": "2025-12-01 09:30",
               "送达时间": "2025-12-02 09:30", "验收日期": "2025-12-02", "验收数量": "6", "付款日期": "2025-12-10",
               "付款金额(元)": "100.00", "线下销售价(元)": "12.50", "线上销售价(元)": "12.50", "执行日期": "2025-12-01",
               "全国最低价(元)": "10.00", "申报日期": "2025-10-24", "量价比较指数达标": "是"}
    return lambda n: {c: example[c].format(n=n) for c in OPERATIONS_COLUMNS[kind]}


def kinds() -> list[Kind]:
    found = [
        Kind("applications", APPLICATION_HEADER, _application, APPLICATION_BAD,
             lambda e, p: import_applications(e, "shenyang-2025", p, clock=ENROLLING), ("法人代表", "联系人", "联系电话")),
        Kind("declaration", tuple(DECLARATION_HEADER), product_row, DECLARATION_BAD,
             lambda e, p: import_declaration(e, "shenyang-2025", p, "语料测试制药有限公司", clock=DECLARING)),
        Kind("register", REGISTER_COLUMNS, _register, REGISTER_BAD,
             lambda e, p: import_register(e, "shenyang-2025", p, clock=REVIEWING)),
    ]
    for op in OperationsKind:
        bad = {c: v for c, v in OPERATION_BAD.items() if c in OPERATIONS_COLUMNS[op]}
        found.append(Kind(f"operations-{op.value}", OPERATIONS_COLUMNS[op], _operation(op), bad,
                          lambda e, p, op=op: import_operations(e, "shenyang-2025", op, p, clock=REVIEWING)))
    return found


def _count_rows(engine: Engine) -> dict[str, int]:
    return row_counts(engine)


def _xlsx(header: tuple[str, ...], rows: list[dict[str, Any]], far_cell: tuple[int, int] | None = None) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        sheet.write_row(r, 0, [str(row.get(h, "")) for h in header])
    if far_cell:
        sheet.write(far_cell[0], far_cell[1], "x")
    book.close()
    return buf.getvalue()


def _file_level_cases(kind: Kind, rng: random.Random) -> Iterator[tuple[str, bytes, str]]:
    """(file name, bytes, what is wrong) for damage no single cell explains."""
    good = [kind.row(n) for n in range(1, 4)]
    csv_text = ",".join(kind.header) + "\n" + "".join(",".join(str(r.get(h, "")) for h in kind.header) + "\n"
                                                       for r in good)
    yield "empty.csv", b"", "empty"
    yield "blank.csv", b"\n\n  \n", "blank"
    yield "garbage.xlsx", bytes(rng.randrange(256) for _ in range(300)), "not a workbook"
    yield "truncated.xlsx", _xlsx(kind.header, good)[:700], "truncated zip"
    yield "odd-utf16.csv", csv_text.encode("utf-16")[:-1], "utf-16 odd bytes"
    yield "far-cell.xlsx", _xlsx(kind.header, good, (1_048_575, 16_383)), "XFD1048576"
    yield "wide.xlsx", _xlsx(kind.header, good, (2, 5_000)), "too many columns"
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z, z.open("xl/worksheets/sheet1.xml", "w") as part:
        for _ in range(3):
            part.write(b" " * (1 << 20))
    yield "bomb.xlsx", bomb.getvalue(), "zip bomb (3 MB over a 2 MB limit)"
    yield "header-only.csv", (",".join(kind.header) + "\n").encode(), "no rows"
    missing = list(kind.header)
    missing.pop(rng.randrange(len(missing)))
    yield "missing-column.csv", (",".join(missing) + "\n" + "x," * (len(missing) - 1) + "x\n").encode(), "missing"
    yield "wrong-headers.csv", b"a,b,c\n1,2,3\n", "wrong headers"
    yield "nul.csv", b"\x00\x01\x02" * 100, "binary"
    yield "gb-garbage.csv", bytes([0x81, 0x30, 0xFF, 0xFE, 0x80]) * 50 + b"\n", "undecodable"


@pytest.fixture
def corpus_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The Shenyang program on SQLite, then on PostgreSQL."""
    from core.settings import get_settings

    make_program(engine)
    monkeypatch.setenv("SANJIN_IMPORT_MAX_UNPACKED_BYTES", "2000000")  # the corpus's bombs stay small
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


def _assert_refused(message: str, *, filename: str, row: int | None = None, column: str | None = None,
                    private: list[str] = ()) -> None:  # type: ignore[assignment]
    assert "Traceback" not in message
    assert CJK.search(message) and ENGLISH.search(message), message
    assert filename in message, (filename, message)
    if row is not None:
        assert f"第{row}行" in message, (row, message)
    if column is not None:
        assert column in message, (column, message)
    leaked = [p for p in private if p and p in message]
    assert not leaked, (leaked, message)


def test_a_thousand_bad_files_are_each_refused_with_a_message_and_write_nothing(corpus_engine: Engine,
                                                                                 tmp_path: Path) -> None:
    took, rng = Stopwatch(), random.Random(SEED)
    engine, before, tried = corpus_engine, _count_rows(corpus_engine), 0
    accepted: list[tuple[str, str, str]] = []
    per_kind: dict[str, int] = {}
    for kind in kinds():
        at_start = tried
        for name, data, _why in _file_level_cases(kind, rng):
            path = tmp_path / f"{kind.name}-{tried}-{name}"
            path.write_bytes(data)
            with pytest.raises(ImportRejected) as caught:
                kind.run(engine, path)
            _assert_refused(str(caught.value), filename=path.name)
            tried += 1
        cells = [(c, v) for c, values in kind.bad.items() for v in values]
        for _ in range(max(len(cells), 60)):
            rows = [kind.row(n) for n in range(1, rng.randint(2, 6))]
            target = rng.randrange(len(rows))
            column, value = rng.choice(cells)
            rows[target][column] = value
            path = write_csv(tmp_path / f"{kind.name}-{tried}.csv", kind.header, rows,
                             encoding=rng.choice(["utf-8-sig", "utf-8", "gb18030"]) if value.isprintable() else "utf-8")
            try:
                kind.run(engine, path)
            except ImportRejected as exc:
                refusal = exc
            else:
                accepted.append((kind.name, column, value))
                continue
            others = [str(r[c]) for i, r in enumerate(rows) if i != target for c in kind.private]
            row_number = target + 2
            errors = refusal.errors
            assert any(e.row in (row_number, 0) or e.column == column for e in errors), (column, value, errors)
            _assert_refused(str(refusal), filename=path.name, private=others)
            tried += 1
        per_kind[kind.name] = tried - at_start
    assert not accepted, f"bad values accepted: {sorted(set(accepted))}"
    assert _count_rows(engine) == before, "a refused file wrote something"
    report("bad-file corpus", engine.dialect.name, per_kind, took)
    assert tried >= 700


def test_program_files_with_impossible_dates_or_broken_yaml_are_refused_with_their_place(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    tried = 0
    for shipped in sorted((ROOT / "deploy" / "programs").glob("*.yaml")):
        text = shipped.read_text(encoding="utf-8")
        dates = [m for m in re.finditer(r"(?<![\d#])\d{4}-\d{2}-\d{2}(?!\d)", text)
                 if "#" not in text[text.rfind("\n", 0, m.start()) + 1:m.start()]]
        for m, bad in ((m, bad) for m in dates for bad in rng.sample(["2025-02-30", "2025-13-01", "2025-00-10",
                                                                            "2025-04-31", "2026-02-29"], 2)):
            path = tmp_path / f"{tried}-{shipped.name}"
            path.write_text(text[:m.start()] + bad + text[m.end():], encoding="utf-8")
            with pytest.raises(ProgramFileError) as caught:
                load_program_file(path)
            message = str(caught.value)
            line = text.count("\n", 0, m.start()) + 1
            assert f"line {line}" in message and path.name in message and CJK.search(message), message
            tried += 1
        for breaker in ("key: [unclosed", "\t- tab", "{", "a: b: c", "- x\ny: 1", "x: 'open", "? [", "&a *b"):
            cut = rng.randrange(len(text))
            path = tmp_path / f"{tried}-{shipped.name}"
            path.write_text(text[:cut] + "\n" + breaker + "\n" + text[cut:], encoding="utf-8")
            with pytest.raises(ProgramFileError) as caught:
                load_program_file(path)
            assert path.name in str(caught.value)
            tried += 1
    print(f"\nprogram-file corpus: {tried} broken program files tried, every one refused")
    assert tried >= 60


def _named_cli_cases() -> list[list[str]]:
    """The command lines issue #18 names, and their neighbours: run on every database, every time."""
    huge = ["99999999999999999999", "-1", "0", "abc", "1e9", "2147483648", "\x1b[2J"]
    words = ["nosuchphase", "ENROLLMENT", "", "drug-list", "\u202eenrollment", "x" * 300]
    cases: list[list[str]] = []
    for value in huge:
        cases += [["gate", "decide", value, "--as", "manager"], ["gate", "decide", "1", "--approve", value, "--as", "m"],
                  ["enforcement", "decide", value, "--approve", "--as", "m"], ["notices", "retry", value],
                  ["report", "coverage", "shenyang-2025", "--weeks", value]]
    for word in words:
        cases += [["run", "shenyang-2025", "--phase", word], ["gate", "list", "--program", word or "?", "--json"],
                  ["status", word or "?"], ["laggards", word or "?"], ["publish", "shenyang-2025", "--list", word]]
    cases += [["status", "a\x00b"], ["laggards", "\x00"], ["gate", "decide", "1\x00", "--as", "manager"],  # NUL: PostgreSQL
              ["user", "passwd", "nobody"], ["user", "disable", "nobody"], ["user", "unlock"],
              ["institution", "apply", "shenyang-2025", "/nonexistent/file.csv"],
              ["enterprise", "declare", "shenyang-2025", "/nonexistent.xlsx", "--enterprise", ""],
              ["program", "load", "/nonexistent.yaml"], ["calendar", "import", "/nonexistent.txt", "--as", "x"]]
    return cases


def _not_an_option(text: str) -> bool:
    """A generated word that the parser would take for an option (`--help` exits 0) is not an argument value."""
    return not text.startswith("-") or text.lstrip("-").isdigit()


def _int_within(text: str, low: int, high: int) -> bool:
    try:
        return low <= int(text) <= high
    except ValueError:
        return False


JUNK_WORDS = ["", " ", "\x00", "\x1b[2J", "\u202e", "x" * 300, "😀", "null", "../../etc/passwd", "１２"]
words = st.one_of(st.sampled_from(JUNK_WORDS), st.text(max_size=40)).filter(_not_an_option)
bad_ids = st.one_of(st.integers(min_value=2**31, max_value=10**30).map(str),
                    st.integers(max_value=0).map(str), words.filter(lambda w: not _int_within(w, 1, 2**31 - 1)))
bad_phases = words.filter(lambda w: w.strip() not in {"alliance", "drug_list", "enrollment", "accounts", "contracts",
                                                       "continuous_review"})
bad_slugs = words.filter(lambda w: w.strip() != "shenyang-2025").map(lambda w: w or "?")
bad_weeks = st.one_of(st.integers().filter(lambda n: not 1 <= n <= 520).map(str),
                      words.filter(lambda w: not _int_within(w, 1, 520)))
bad_quarters = st.one_of(st.sampled_from(["2026Q5", "2026Q0", "Q1", "99999999999999999999Q1"]),
                         words.filter(lambda w: not re.search(r"\d{4}", w)))
bad_times = st.one_of(st.sampled_from(["2025-02-30T10:00", "2025-09-12T25:00", "notadate"]),
                      words.filter(lambda w: not re.search(r"\d{4}-\d", w)))
bad_roles = words.filter(lambda w: w.strip() not in {"program_manager", "district_reviewer", "observer"})
bad_districts = words.filter(lambda w: not w.strip().endswith(("区", "县", "市")))
weak_passwords = st.one_of(st.sampled_from(["x", "123456", "password1234", "aaaaaaaaaaaaaaa"]),
                           st.text(min_size=1, max_size=11).filter(_not_an_option))
new_names = st.from_regex(r"u[a-z0-9]{6,12}", fullmatch=True)

bad_command_lines = st.one_of(
    bad_ids.map(lambda v: ["gate", "decide", v, "--approve", "1", "--as", "manager"]),
    bad_ids.map(lambda v: ["gate", "decide", "1", "--approve", v, "--as", "manager"]),
    bad_ids.map(lambda v: ["enforcement", "decide", v, "--approve", "--as", "manager"]),
    bad_ids.map(lambda v: ["notices", "retry", v]),
    bad_weeks.map(lambda v: ["report", "coverage", "shenyang-2025", "--weeks", v]),
    bad_quarters.map(lambda v: ["report", "quarterly", "shenyang-2025", v]),
    bad_phases.map(lambda v: ["run", "shenyang-2025", "--phase", v]),
    bad_slugs.map(lambda v: ["status", v]),
    bad_slugs.map(lambda v: ["laggards", v]),
    bad_slugs.map(lambda v: ["gate", "list", "--program", v, "--json"]),
    bad_times.map(lambda v: ["clock", "set", v, "--as", "x"]),
    bad_times.map(lambda v: ["contracts", "sign", "shenyang-2025", "H21010200001", "--enterprise", "e", "--year",
                             "2025", "--date", v, "--as", "x"]),
    st.tuples(new_names, bad_roles).map(lambda nv: ["user", "add", nv[0], "--role", nv[1]]),
    st.tuples(new_names, bad_districts).map(lambda nv: ["user", "add", nv[0], "--role", "district_reviewer",
                                                        "--district", nv[1]]),
    st.tuples(new_names, weak_passwords).map(lambda nv: ["user", "add", nv[0], "--role", "observer",
                                                         "--password", nv[1]]),
)


def test_bad_command_lines_exit_1_with_a_message_and_write_nothing(corpus_engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from core import db
    from core.settings import get_settings
    from sanjin.cli import main

    took, url = Stopwatch(), corpus_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("SANJIN_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "300")
    get_settings.cache_clear()
    db._ENGINES[url] = corpus_engine
    before = _count_rows(corpus_engine)
    tried = {"named": 0, "generated": 0}

    def refused(args: list[str], family: str) -> None:
        monkeypatch.setattr(sys, "argv", ["sanjin", *args])
        with pytest.raises(SystemExit) as caught:
            main()
        err = " ".join(capsys.readouterr().err.split())
        assert caught.value.code == 1, (args, caught.value.code, err)
        assert "错误 / error:" in err and "Traceback" not in err, (args, err)
        assert CJK.search(err) and ENGLISH.search(err), (args, err)
        assert "\x1b" not in err and "\u202e" not in err, (args, err)
        assert _count_rows(corpus_engine) == before, (args, "a refused command wrote something")
        tried[family] += 1

    for args in _named_cli_cases():
        refused(args, "named")

    @corpus_settings(100)
    @given(args=bad_command_lines)
    def generated(args: list[str]) -> None:
        refused(args, "generated")

    generated()
    db._ENGINES.pop(url, None)
    report("command-line corpus", corpus_engine.dialect.name, tried, took)
    assert sum(tried.values()) >= 150
