"""Imports of the platform's operational exports: all-or-nothing per file, every bad row reported, never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from models.audit import AuditEvent
from models.enrollment import Institution
from models.operations import Delivery, LowestPrice, PriceReport, PurchaseOrder, SalePrice, Settlement
from tasks.intake.operations_import import COLUMNS, OperationsKind, import_operations
from tasks.intake.spreadsheets import ImportRejected
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_product,
    make_program,
    table_counts,
)
from tests.factories_files import write_csv, write_xlsx

CLOCK = clock_at(2025, 12, 20, 9)


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def world(engine: Engine) -> dict[str, str]:
    make_program(engine)
    inst = make_institution(engine)
    product = make_product(engine, make_enterprise(engine))
    return {"inst": inst.insurance_code, "drug": product.drug_code}


def _orders(tmp_path: Path, world: dict[str, str], *extra: list[object], name: str = "orders.xlsx") -> Path:
    rows: list[list[object]] = [
        ["PO-1", world["inst"], world["drug"], "国药控股沈阳有限公司", 10, "12.50", "2025-12-01 09:30"],
        ["PO-2", world["inst"], world["drug"], "国药控股沈阳有限公司", 5, "12.50", "2025-12-02 10:00:00"],
        *extra]
    return write_xlsx(tmp_path / name, COLUMNS[OperationsKind.ORDERS], rows)


def test_orders_deliveries_and_payments_come_in_and_the_same_file_twice_creates_nothing(
        engine: Engine, world: dict[str, str], tmp_path: Path) -> None:
    orders = _orders(tmp_path, world)  # written once: xlsxwriter stamps the time, so a rewrite is other bytes
    result = import_operations(engine, "shenyang-2025", "orders", orders, clock=CLOCK)
    assert (result.rows, result.created) == (2, 2)
    deliveries = write_csv(tmp_path / "d.csv", COLUMNS[OperationsKind.DELIVERIES], [
        ["PO-1", "2025-12-02 09:30", "2025-12-02", 6], ["PO-1", "2025-12-05 09:30", "2025-12-05", 4]],
        encoding="gb18030")
    assert import_operations(engine, "shenyang-2025", "deliveries", deliveries, clock=CLOCK).created == 2
    payments = write_xlsx(tmp_path / "p.xlsx", COLUMNS[OperationsKind.PAYMENTS], [["PO-1", "2025-12-10", "100.00"],
                                                                                  ["PO-1", "2025-12-11", "25.00"]])
    assert import_operations(engine, "shenyang-2025", "payments", payments, clock=CLOCK).created == 2
    counts = table_counts(engine)
    again = import_operations(engine, "shenyang-2025", "orders", orders, clock=CLOCK)
    assert again.already_imported and again.created == 0
    assert import_operations(engine, "shenyang-2025", "deliveries", deliveries, clock=CLOCK).already_imported
    assert table_counts(engine) == counts
    # An overlapping export (a new file repeating PO-1 and adding PO-3) adds only what is new.
    more = _orders(tmp_path, world, ["PO-3", world["inst"], world["drug"], "配送企业", 1, "12.50", "2025-12-03 08:00"],
                   name="orders2.xlsx")
    assert import_operations(engine, "shenyang-2025", "orders", more, clock=CLOCK).created == 1
    with Session(engine) as session:
        order = session.execute(select(PurchaseOrder).where(PurchaseOrder.order_no == "PO-1")).scalar_one()
        assert (order.quantity, str(order.amount), order.import_id is not None) == (10, "125.00", True)
    assert (count(engine, Delivery), count(engine, Settlement)) == (2, 2)


def test_a_bad_orders_file_is_refused_whole_with_every_bad_row(engine: Engine, world: dict[str, str],
                                                                 tmp_path: Path) -> None:
    path = _orders(tmp_path, world,
                   ["PO-1", world["inst"], world["drug"], "配送企业", 1, "12.50", "2025-12-03 08:00"],
                   ["PO-4", "H21010299999", world["drug"], "配送企业", 0, "-1", "2025-13-01 08:00"])
    with pytest.raises(ImportRejected) as caught:
        import_operations(engine, "shenyang-2025", "orders", path, clock=CLOCK)
    found = {(e.row, e.column) for e in caught.value.errors}
    assert {(4, "订单编号"), (5, "采购数量"), (5, "采购单价(元)"), (5, "下单时间")} <= found
    assert all(" / " in e.message for e in caught.value.errors)  # Chinese and English
    assert count(engine, PurchaseOrder) == 0


@pytest.mark.parametrize("kind", [OperationsKind.DELIVERIES, OperationsKind.PAYMENTS])
def test_deliveries_and_payments_of_unknown_orders_are_refused_whole(engine: Engine, world: dict[str, str],
                                                                     tmp_path: Path, kind: OperationsKind) -> None:
    import_operations(engine, "shenyang-2025", "orders", _orders(tmp_path, world), clock=CLOCK)
    rows = {OperationsKind.DELIVERIES: [["PO-1", "2025-12-02 09:30", "2025-12-02", 10],
                                        ["PO-9", "2025-12-02 09:30", "2025-12-02", 10]],
            OperationsKind.PAYMENTS: [["PO-1", "2025-12-10", "125.00"], ["PO-9", "2025-12-10", "1.00"]]}[kind]
    path = write_xlsx(tmp_path / "f.xlsx", COLUMNS[kind], rows)
    with pytest.raises(ImportRejected) as caught:
        import_operations(engine, "shenyang-2025", kind, path, clock=CLOCK)
    assert [(e.row, e.column, e.value) for e in caught.value.errors] == [(3, "订单编号", "PO-9")]
    assert count(engine, Delivery) + count(engine, Settlement) == 0


def test_a_delivery_accepted_before_it_arrived_is_refused(engine: Engine, world: dict[str, str],
                                                          tmp_path: Path) -> None:
    import_operations(engine, "shenyang-2025", "orders", _orders(tmp_path, world), clock=CLOCK)
    path = write_xlsx(tmp_path / "d.xlsx", COLUMNS[OperationsKind.DELIVERIES],
                      [["PO-1", "2025-11-30 09:30", "2025-11-29", 10]])
    with pytest.raises(ImportRejected) as caught:
        import_operations(engine, "shenyang-2025", "deliveries", path, clock=CLOCK)
    assert {e.column for e in caught.value.errors} == {"送达时间", "验收日期"}


def test_prices_lowest_prices_and_price_reports_come_in_and_bad_ones_are_refused_whole(
        engine: Engine, world: dict[str, str], tmp_path: Path) -> None:
    prices = write_xlsx(tmp_path / "prices.xlsx", COLUMNS[OperationsKind.PRICES], [
        [world["inst"], world["drug"], "12.50", "", "2025-12-01"], [world["inst"], world["drug"], "13.00", "13.00",
                                                                    "2025-12-10"]])
    assert import_operations(engine, "shenyang-2025", "prices", prices, clock=CLOCK).created == 2
    lowest = write_xlsx(tmp_path / "lowest.xlsx", COLUMNS[OperationsKind.LOWEST_PRICES],
                        [[world["drug"], "10.00", "2025-09-22"]])
    reports = write_xlsx(tmp_path / "reports.xlsx", COLUMNS[OperationsKind.PRICE_REPORTS],
                         [[world["drug"], "2025-10-24"]])
    assert import_operations(engine, "shenyang-2025", "lowest-prices", lowest, clock=CLOCK).created == 1
    assert import_operations(engine, "shenyang-2025", "price-reports", reports, clock=CLOCK).created == 1
    bad = write_xlsx(tmp_path / "bad.xlsx", COLUMNS[OperationsKind.PRICES], [
        [world["inst"], world["drug"], "12.50", "", "2025-12-15"], ["P21010299999", world["drug"], "abc", "", "x"]])
    with pytest.raises(ImportRejected) as caught:
        import_operations(engine, "shenyang-2025", "prices", bad, clock=CLOCK)
    assert {(e.row, e.column) for e in caught.value.errors} == {(3, "线下销售价(元)"), (3, "执行日期")}
    bad_lowest = write_xlsx(tmp_path / "bad_lowest.xlsx", COLUMNS[OperationsKind.LOWEST_PRICES],
                            [[world["drug"], "10.00", "2025-09-23"], ["NOT-A-CODE", "1", "2025-09-22"]])
    with pytest.raises(ImportRejected):
        import_operations(engine, "shenyang-2025", "lowest-prices", bad_lowest, clock=CLOCK)
    bad_reports = write_xlsx(tmp_path / "bad_reports.xlsx", COLUMNS[OperationsKind.PRICE_REPORTS],
                             [[world["drug"], "2025-10-25"], [world["drug"], "someday"]])
    with pytest.raises(ImportRejected):
        import_operations(engine, "shenyang-2025", "price-reports", bad_reports, clock=CLOCK)
    assert (count(engine, SalePrice), count(engine, LowestPrice), count(engine, PriceReport)) == (2, 1, 1)


def test_a_file_with_a_missing_column_is_refused(engine: Engine, world: dict[str, str], tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "o.xlsx", COLUMNS[OperationsKind.ORDERS][:-1], [["PO-1", world["inst"]]])
    with pytest.raises(ImportRejected) as caught:
        import_operations(engine, "shenyang-2025", "orders", path, clock=CLOCK)
    assert "下单时间" in caught.value.errors[0].message


def test_a_bad_row_in_a_later_chunk_of_a_large_export_leaves_nothing_written(
        engine: Engine, world: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large export is read and written a chunk at a time, yet still all or nothing: a bad row after rows
    already written rolls them back, and an order number repeated in another chunk is still a duplicate."""
    monkeypatch.setattr("tasks.intake.operations_import.CHUNK_ROWS", 2)
    rows = [[f"PO-{k}", world["inst"], world["drug"], "国药控股沈阳有限公司", 1, "12.50", "2025-12-01 09:30"]
            for k in range(3, 7)]
    bad = _orders(tmp_path, world, *rows, ["PO-1", world["inst"], world["drug"], "国药控股沈阳有限公司", 1, "12.50",
                                           "2025-12-01 09:30"], name="bad.xlsx")
    with pytest.raises(ImportRejected) as refused:
        import_operations(engine, "shenyang-2025", "orders", bad, clock=CLOCK)
    assert [(e.row, e.column) for e in refused.value.errors] == [(8, "订单编号")]  # row 8: PO-1 again, chunk 4
    assert count(engine, PurchaseOrder) == 0
    good = _orders(tmp_path, world, *rows, name="good.xlsx")
    result = import_operations(engine, "shenyang-2025", "orders", good, clock=CLOCK)
    assert (result.rows, result.created, count(engine, PurchaseOrder)) == (6, 6, 6)


def test_a_pharmacy_s_price_index_condition_comes_in_from_the_platform_and_each_change_is_audited(
        engine: Engine, world: dict[str, str], tmp_path: Path) -> None:
    """Seed 002 §七: a pharmacy not above the region's 量价比较指数 may add up to 15 %; the flag the sale-price
    rule reads is imported, changed only where it differs, and refused whole for an unknown institution."""
    columns = COLUMNS[OperationsKind.PRICE_INDEX]

    def flag() -> bool:
        with Session(engine) as session:
            return bool(session.execute(select(Institution.price_index_ok)
                                        .where(Institution.insurance_code == world["inst"])).scalar_one())

    first = write_csv(tmp_path / "index1.csv", columns, [[world["inst"], "是"]])
    result = import_operations(engine, "shenyang-2025", "price-index", first, clock=CLOCK, actor="manager")
    assert (result.rows, result.created, flag()) == (1, 1, True)
    with Session(engine) as session:
        [audit] = session.execute(select(AuditEvent).where(AuditEvent.action == "price_index_set")).scalars()
    assert (audit.entity, audit.from_state, audit.to_state, audit.actor) == ("institution", "否", "是", "manager")
    same = write_csv(tmp_path / "index2.csv", columns, [[world["inst"], "是"], ["", ""]])
    assert import_operations(engine, "shenyang-2025", "price-index", same, clock=CLOCK).created == 0
    unknown = write_csv(tmp_path / "index3.csv", columns, [[world["inst"], "否"], ["H21010299999", "否"]])
    with pytest.raises(ImportRejected) as refused:
        import_operations(engine, "shenyang-2025", "price-index", unknown, clock=CLOCK)
    assert [(e.row, e.column) for e in refused.value.errors] == [(3, "机构医保编码")]
    assert flag() is True  # nothing written
    off = write_csv(tmp_path / "index4.csv", columns, [[world["inst"], "否"]])
    assert import_operations(engine, "shenyang-2025", "price-index", off, clock=CLOCK).created == 1
    assert flag() is False
