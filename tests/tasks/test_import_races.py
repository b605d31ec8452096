"""Two imports of one kind into one program at the same moment (issue #18, "races of two imports"): every importer
takes its per-program lock (core.db.serialize) before it reads anything, so the second waits for the first to
commit and then reports "imported before" or its own result: no deadlock, no unique violation whose message prints
names and phones, and exactly the rows of both files, once.

Each race is forced rather than hoped for: the first import to reach its "imported before?" check waits there (up
to WINDOW seconds) for the other one. Without the lock both arrive, both find nothing imported, and the race is
certain; with it the second is still waiting for the lock, the first goes on alone, and `overlapped` stays False.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session, SQLModel

from models.catalog import DeclarationItem, EnterpriseDeclaration, Product
from models.enrollment import Application, Institution
from models.operations import Delivery, PurchaseOrder, SalePrice, Settlement
from models.program import ImportRecord
from models.register import RegisterEntry
from tasks.intake.application_import import import_applications
from tasks.intake.declaration_import import import_declaration
from tasks.intake.operations_import import COLUMNS, OperationsKind, import_operations
from tasks.intake.register_import import COLUMNS as REGISTER_COLUMNS
from tasks.intake.register_import import import_register
from tests.factories import clock_at, make_enterprise, make_institution, make_product, make_program
from tests.factories_files import APPLICATION_HEADER, DECLARATION_HEADER, application_row, product_row, write_xlsx

WINDOW = 1.5  # seconds the first import waits at its check for the second
SLUG = "shenyang-2025"
ENROLLING = clock_at(2025, 9, 12, 10)  # drug_list and enrollment open
REVIEWING = clock_at(2025, 12, 20, 9)
FIRST, OVERLAPPING = range(1, 31), range(16, 46)  # 30 rows each, 15 in common


class Rendezvous:
    """Holds the first import thread at the watched statement until the second arrives too, or WINDOW passes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._arrived: set[int] = set()
        self._closed = False
        self.overlapped = False

    def arrive(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._closed or me in self._arrived:
                return
            self._arrived.add(me)
            self._cond.notify_all()
            if self._cond.wait_for(lambda: len(self._arrived) >= 2, timeout=WINDOW):
                self.overlapped = True
            else:
                self._closed = True  # the other was kept out; it passes later without waiting


@contextmanager
def meeting_at_the_check(engine: Engine) -> Iterator[Rendezvous]:
    """Every importer asks "were these bytes imported before?" (a SELECT on importrecord) once it holds its lock."""
    meeting = Rendezvous()

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = statement.lstrip().lower()
        if threading.current_thread().name.startswith("import-") and text.startswith("select") \
                and "from importrecord" in text:
            meeting.arrive()

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield meeting
    finally:
        event.remove(engine, "before_cursor_execute", before)


def race(engine: Engine, jobs: list[Callable[[], Any]]) -> tuple[list[Any], bool]:
    """Run both jobs at once; what each returned (an escaped exception fails the test), and whether they overlapped."""
    results: list[Any] = [None, None]
    escaped: list[str] = []

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except Exception as exc:  # the test reports what escaped, whatever it is
            escaped.append(f"{type(exc).__name__}: {exc}")

    with meeting_at_the_check(engine) as meeting:
        threads = [threading.Thread(target=run, args=(i,), name=f"import-{i}") for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not any(t.is_alive() for t in threads), "the two imports deadlocked"
    assert not escaped, escaped
    return results, meeting.overlapped


def count(engine: Engine, model: type[SQLModel]) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Kind:
    """One import kind: what to set up, a file of rows `numbers`, how to import it, the table its rows land in."""

    name: str
    table: type[SQLModel]
    file: Callable[[Path, dict[str, str], range], Path]
    run: Callable[[Engine, Path], Any]
    setup: Callable[[Engine, Path], dict[str, str]]


def _world(engine: Engine, _tmp: Path) -> dict[str, str]:
    make_program(engine)
    inst, product = make_institution(engine), make_product(engine, make_enterprise(engine))
    return {"inst": inst.insurance_code, "drug": product.drug_code}


def _orders(tmp: Path, w: dict[str, str], numbers: range) -> Path:
    return write_xlsx(tmp / f"orders-{numbers.start}.xlsx", COLUMNS[OperationsKind.ORDERS],
                      [[f"PO-{n}", w["inst"], w["drug"], "国药控股沈阳有限公司", 10, "12.50", "2025-12-01 09:30"]
                       for n in numbers])


def _with_orders(engine: Engine, tmp: Path) -> dict[str, str]:
    w = _world(engine, tmp)
    import_operations(engine, SLUG, OperationsKind.ORDERS, _orders(tmp, w, range(1, 61)), clock=REVIEWING)
    return w


def _program_only(engine: Engine, _tmp: Path) -> dict[str, str]:
    make_program(engine)
    return {}


def _ops(kind: OperationsKind) -> Callable[[Engine, Path], Any]:
    return lambda engine, path: import_operations(engine, SLUG, kind, path, clock=REVIEWING)


KINDS = [
    Kind("applications", Application,
         lambda tmp, w, ns: write_xlsx(tmp / f"申请-{ns.start}.xlsx", APPLICATION_HEADER,
                                       [application_row(n) for n in ns]),
         lambda engine, path: import_applications(engine, SLUG, path, clock=ENROLLING), _program_only),
    Kind("declaration", Product,
         lambda tmp, w, ns: write_xlsx(tmp / f"品种-{ns.start}.xlsx", DECLARATION_HEADER, [product_row(n) for n in ns]),
         lambda engine, path: import_declaration(engine, SLUG, path, "竞速制药有限公司", clock=ENROLLING),
         _program_only),
    Kind("orders", PurchaseOrder, _orders, _ops(OperationsKind.ORDERS), _world),
    Kind("deliveries", Delivery,
         lambda tmp, w, ns: write_xlsx(tmp / f"deliveries-{ns.start}.xlsx", COLUMNS[OperationsKind.DELIVERIES],
                                       [[f"PO-{n}", "2025-12-02 09:30", "2025-12-02", 6] for n in ns]),
         _ops(OperationsKind.DELIVERIES), _with_orders),
    Kind("payments", Settlement,
         lambda tmp, w, ns: write_xlsx(tmp / f"payments-{ns.start}.xlsx", COLUMNS[OperationsKind.PAYMENTS],
                                       [[f"PO-{n}", "2025-12-10", "100.00"] for n in ns]),
         _ops(OperationsKind.PAYMENTS), _with_orders),
    Kind("prices", SalePrice,
         lambda tmp, w, ns: write_xlsx(tmp / f"prices-{ns.start}.xlsx", COLUMNS[OperationsKind.PRICES],
                                       [[w["inst"], w["drug"], "12.50", "",
                                         (date(2025, 10, 1) + timedelta(days=n)).isoformat()] for n in ns]),
         _ops(OperationsKind.PRICES), _world),
    Kind("register", RegisterEntry,
         lambda tmp, w, ns: write_xlsx(tmp / f"register-{ns.start}.xlsx", REGISTER_COLUMNS,
                                       [[f"H210102{n:05d}", f"沈阳市和平区测试{n}号社区卫生服务中心", "和平区",
                                         "社区卫生服务中心", "正常", "2024-03-01"] for n in ns]),
         lambda engine, path: import_register(engine, SLUG, path, clock=REVIEWING), _program_only),
]
BY_NAME = {k.name: k for k in KINDS}


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_the_same_file_imported_twice_at_once_is_imported_once_and_the_other_says_imported_before(
        engine: Engine, tmp_path: Path, kind: Kind) -> None:
    world = kind.setup(engine, tmp_path)
    path = kind.file(tmp_path, world, FIRST)
    before, records = count(engine, kind.table), count(engine, ImportRecord)
    results, overlapped = race(engine, [lambda: kind.run(engine, path)] * 2)
    assert not overlapped, "the second import read before the first committed: it is not serialized"
    assert sorted(r.already_imported for r in results) == [False, True]
    assert sorted(r.created for r in results) == [0, 30]
    assert count(engine, kind.table) - before == 30
    with Session(engine) as session:  # one receipt of the file, and it still says what the import created
        created = session.execute(select(ImportRecord.created).where(ImportRecord.id > records)).scalars().all()
    assert created == [30]


@pytest.mark.parametrize("kind", [k for k in KINDS if k.name not in ("register", "declaration")],
                         ids=[k.name for k in KINDS if k.name not in ("register", "declaration")])
def test_two_overlapping_files_at_once_add_the_rows_in_common_once(engine: Engine, tmp_path: Path,
                                                                     kind: Kind) -> None:
    world = kind.setup(engine, tmp_path)
    first, second = kind.file(tmp_path, world, FIRST), kind.file(tmp_path, world, OVERLAPPING)
    before = count(engine, kind.table)
    results, overlapped = race(engine, [lambda: kind.run(engine, first), lambda: kind.run(engine, second)])
    assert not overlapped
    assert sorted(r.created for r in results) == [15, 30], "the rows in common are added by whichever came first"
    assert count(engine, kind.table) - before == 45
    if kind.name == "applications":
        assert count(engine, Institution) == 45


def test_two_overlapping_declarations_of_one_enterprise_at_once_are_two_declarations_of_45_products(
        engine: Engine, tmp_path: Path) -> None:
    """Products are per (enterprise, drug code): both read "not yet in the catalogue" and inserted it (a unique
    violation printing the product) until the second waited for the first."""
    kind = BY_NAME["declaration"]
    kind.setup(engine, tmp_path)
    first, second = kind.file(tmp_path, {}, FIRST), kind.file(tmp_path, {}, OVERLAPPING)
    results, overlapped = race(engine, [lambda: kind.run(engine, first), lambda: kind.run(engine, second)])
    assert not overlapped
    assert [r.created for r in results] == [30, 30] and len({r.declaration_id for r in results}) == 2
    assert (count(engine, EnterpriseDeclaration), count(engine, Product), count(engine, DeclarationItem)) == (2, 45, 60)


def test_two_different_registers_the_same_day_at_once_leave_one_whole_version(engine: Engine, tmp_path: Path) -> None:
    """The same day's second register replaces the first: whichever commits last is the day's version, whole."""
    kind = BY_NAME["register"]
    kind.setup(engine, tmp_path)
    first, second = kind.file(tmp_path, {}, FIRST), kind.file(tmp_path, {}, OVERLAPPING)
    results, overlapped = race(engine, [lambda: kind.run(engine, first), lambda: kind.run(engine, second)])
    assert not overlapped
    assert sorted(r.replaced for r in results) == [0, 30] and [r.created for r in results] == [30, 30]
    last = next(r for r in results if r.replaced == 30)
    with Session(engine) as session:
        codes = sorted(session.execute(select(RegisterEntry.insurance_code)).scalars())
    expected = FIRST if last is results[0] else OVERLAPPING
    assert codes == [f"H210102{n:05d}" for n in expected]
