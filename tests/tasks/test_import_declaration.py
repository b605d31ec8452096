from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from models.clock import SHANGHAI, FixedClock
from models.states import DeclarationState, EnterpriseState, NoticeStatus
from models.tables import AuditEvent, DeclarationItem, Enterprise, EnterpriseDeclaration, Notice, Product
from models.windows import WindowClosed
from tasks.intake.declaration_import import DECLARATION_COLUMNS, import_declaration
from tasks.intake.spreadsheets import ImportRejected
from tests.factories_files import DECLARATION_HEADER, product_row, write_csv, write_xlsx

COMPANY = "测试制药有限公司"


def _errors(exc: ImportRejected) -> set[tuple[int, str, str]]:
    return {(e.row, e.column, e.rule) for e in exc.errors}


def test_good_table_creates_enterprise_products_declaration_audit_and_receipt(
    engine, shenyang, clock_in_windows, tmp_path
):
    rows = [
        product_row(1),
        # a price typed as text, and a category outside Shenyang's focus
        product_row(2, 类别="皮肤病", 特药="是", **{"中选价(元)": "3.14"}),
        product_row(3, 药品统一编码="ZA01AAA0001010100001", 批准文号="国药准字Z20190003", 类别=""),
    ]
    path = write_xlsx(tmp_path / "品种明细表.xlsx", DECLARATION_HEADER, rows)

    result = import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows, actor="ent_user")

    assert (result.rows, result.created, result.already_imported) == (3, 3, False)
    assert [(w.row, w.column, w.rule) for w in result.warnings] == [(3, "类别", "category.outside_focus")]
    with Session(engine) as session:
        enterprise = session.execute(select(Enterprise)).scalar_one()
        products = {p.drug_code: p for p in session.execute(select(Product)).scalars()}
        declaration = session.execute(select(EnterpriseDeclaration)).scalar_one()
        items = session.execute(select(DeclarationItem)).scalars().all()
        audit = session.execute(select(AuditEvent)).scalar_one()
        notice = session.execute(select(Notice)).scalar_one()
    assert enterprise.name == COMPANY and enterprise.state is EnterpriseState.ACTIVE
    first = products["XC10AA0001A001010100483"]
    assert (first.conversion_ratio, first.winning_price, first.category, first.is_special) == (
        "28", Decimal("12.50"), "心脑血管", False)
    assert products["XC10AA0002A001010100483"].is_special is True
    assert products["XC10AA0002A001010100483"].winning_price == Decimal("3.14")
    assert products["ZA01AAA0001010100001"].category is None
    assert declaration.id == result.declaration_id
    assert (declaration.state, declaration.enterprise_id, declaration.import_id) == (
        DeclarationState.SUBMITTED, enterprise.id, result.import_id)
    assert [f["rule"] for f in declaration.findings] == ["category.outside_focus"]
    assert sorted(i.product_id for i in items) == sorted(p.id for p in products.values())
    assert (audit.entity, audit.entity_id, audit.action, audit.from_state, audit.to_state, audit.actor) == (
        "declaration", str(declaration.id), "submit", None, "submitted", "ent_user")
    assert notice.idempotency_key == f"declaration_receipt:{declaration.id}"
    assert notice.kind == "declaration_receipt" and notice.status is NoticeStatus.NO_ADDRESS
    assert notice.context == {"program_name": shenyang.name, "enterprise_name": COMPANY,
                              "declaration_id": declaration.id, "product_count": 3, "submitted_on": "2025-09-12"}


def test_receipt_goes_to_a_known_enterprise_email(engine, shenyang, clock_in_windows, tmp_path):
    with Session(engine) as session:
        session.add(Enterprise(name=COMPANY, email="supply@pharma.example.cn"))
        session.commit()
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_HEADER, [product_row(1)])
    import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows)
    with Session(engine) as session:
        notice = session.execute(select(Notice)).scalar_one()
    assert (notice.email, notice.status) == ("supply@pharma.example.cn", NoticeStatus.PENDING)


def test_the_twelve_columns_alone_are_enough(engine, shenyang, clock_in_windows, tmp_path):
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_COLUMNS, [product_row(1)])
    assert import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows).created == 1


def test_same_file_twice_creates_nothing_the_second_time(engine, shenyang, clock_in_windows, tmp_path, db_counts):
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_HEADER, [product_row(1), product_row(2)])
    first = import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows)
    before = db_counts()
    again = import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows)
    assert (again.already_imported, again.created, again.import_id) == (True, 0, first.import_id)
    assert db_counts() == before


def test_every_bad_cell_is_reported_and_nothing_is_written(engine, shenyang, clock_in_windows, tmp_path, db_counts):
    rows = [
        product_row(1),                                         # row 2: fine
        product_row(2, **{"中选价(元)": "12,5"}),                # row 3: decimal comma
        product_row(3, 药品统一编码="A12345"),                    # row 4: not X/Z
        product_row(4, 药品统一编码="XC10AA0001A001010100483"),   # row 5: same code as row 2
        product_row(5, 批准文号="国药准字H2019", 剂型=""),        # row 6: two bad cells
        product_row(6, 特药="可能", **{"中选价(元)": 0}),         # row 7: two bad cells
    ]
    path = write_xlsx(tmp_path / "bad.xlsx", DECLARATION_HEADER, rows)
    before = db_counts()

    with pytest.raises(ImportRejected) as caught:
        import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows)

    assert _errors(caught.value) == {
        (3, "中选价(元)", "price.comma_decimal"),
        (4, "药品统一编码", "drug_code.prefix"),
        (5, "药品统一编码", "drug_code.duplicate"),
        (6, "批准文号", "approval.format"),
        (6, "剂型", "text.empty"),
        (7, "特药", "yes_no.invalid"),
        (7, "中选价(元)", "price.zero"),
    }
    comma = next(e for e in caught.value.errors if e.rule == "price.comma_decimal")
    assert comma.value == "12,5" and "“.”" in comma.message and "decimal point" in comma.message
    assert "第2行" in next(e.message for e in caught.value.errors if e.rule == "drug_code.duplicate")
    assert db_counts() == before


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (DECLARATION_COLUMNS[:11], ["缺少列", "批准文号"]),
        ([*DECLARATION_COLUMNS[:10], "中选价", "批准文号"], ["缺少列", "中选价(元)", "无法识别的列", "中选价"]),
        ([DECLARATION_COLUMNS[1], DECLARATION_COLUMNS[0], *DECLARATION_COLUMNS[2:]], ["顺序"]),
        ([*DECLARATION_COLUMNS, "备注"], ["无法识别的列", "备注"]),
    ],
    ids=["missing", "misspelt", "order", "extra"],
)
def test_wrong_headers_are_one_error_naming_expected_and_found(
    engine, shenyang, clock_in_windows, tmp_path, db_counts, header, words
):
    path = write_xlsx(tmp_path / "h.xlsx", header, [list(product_row(1).values())[: len(header)]])
    with pytest.raises(ImportRejected) as caught:
        import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows)
    [error] = caught.value.errors
    assert (error.row, error.column, error.rule) == (1, "表头", "header.mismatch")
    assert "应为：药品统一编码、产品名称" in error.message and "实际为：" in error.message
    for word in words:
        assert word in error.message
    assert db_counts()["Product"] == 0


def test_full_width_and_wrapped_headers_are_the_same_headers(engine, shenyang, clock_in_windows, tmp_path):
    header = [("中选价\n（元）" if h == "中选价(元)" else f" {h}") for h in DECLARATION_HEADER]
    path = write_xlsx(tmp_path / "fw.xlsx", header, [list(product_row(1).values())])
    assert import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows).created == 1


def test_csv_declaration_in_gb18030(engine, shenyang, clock_in_windows, tmp_path):
    path = write_csv(tmp_path / "t.csv", DECLARATION_HEADER, [product_row(1)], encoding="gb18030")
    assert import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows).created == 1
    with Session(engine) as session:
        assert session.execute(select(Product.name)).scalar_one() == "阿托伐他汀钙片1"


@pytest.mark.parametrize(
    ("when", "state"),
    [(datetime(2025, 8, 9, 18, tzinfo=SHANGHAI), "尚未开始"), (datetime(2025, 9, 16, 0, 1, tzinfo=SHANGHAI), "已经结束")],
)
def test_outside_the_drug_list_window_is_refused_naming_the_window(
    engine, shenyang, tmp_path, db_counts, when, state
):
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_HEADER, [product_row(1)])
    with pytest.raises(WindowClosed) as caught:
        import_declaration(engine, "shenyang-2025", path, COMPANY, clock=FixedClock(when))
    message = str(caught.value)
    assert "征集“三进”集采药品清单" in message and "2025-08-10" in message and "2025-09-15" in message
    assert state in message and "the drug list window" in message and "drug_list" not in message  # words, not a code
    assert db_counts()["Enterprise"] == 0


def test_rolling_admission_accepts_declarations_any_time(engine, add_program, tmp_path):
    add_program("shenyang-rolling", rules={"enterprise_admission": "rolling"})
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_HEADER, [product_row(1)])
    late = FixedClock(datetime(2026, 5, 20, 9, tzinfo=SHANGHAI))
    assert import_declaration(engine, "shenyang-rolling", path, COMPANY, clock=late).created == 1


def test_a_second_declaration_updates_products_and_warns_of_price_changes(engine, shenyang, clock_in_windows, tmp_path):
    import_declaration(engine, "shenyang-2025", write_xlsx(tmp_path / "1.xlsx", DECLARATION_HEADER,
                                                           [product_row(1), product_row(2)]),
                       COMPANY, clock=clock_in_windows)
    second = write_xlsx(tmp_path / "2.xlsx", DECLARATION_HEADER,
                        [product_row(1, **{"中选价(元)": 11.8}), product_row(3)])

    result = import_declaration(engine, "shenyang-2025", second, COMPANY, clock=clock_in_windows)

    assert result.created == 2
    assert [(w.row, w.rule) for w in result.warnings] == [(2, "price.changed")]
    with Session(engine) as session:
        prices = dict(session.execute(select(Product.drug_code, Product.winning_price)).all())
        items = session.execute(select(DeclarationItem.product_id)
                                .where(DeclarationItem.declaration_id == result.declaration_id)).scalars().all()
        declarations = session.execute(select(EnterpriseDeclaration.id)).scalars().all()
    assert prices == {"XC10AA0001A001010100483": Decimal("11.80"), "XC10AA0002A001010100483": Decimal("12.50"),
                      "XC10AA0003A001010100483": Decimal("12.50")}
    assert len(items) == 2 and len(declarations) == 2


def test_a_barred_enterprise_cannot_declare(engine, shenyang, clock_in_windows, tmp_path, db_counts):
    from datetime import date

    with Session(engine) as session:
        session.add(Enterprise(name=COMPANY, state=EnterpriseState.BARRED, barred_until=date(2026, 6, 30)))
        session.commit()
    before = db_counts()
    with pytest.raises(ImportRejected) as caught:
        import_declaration(engine, "shenyang-2025", write_xlsx(tmp_path / "t.xlsx", DECLARATION_HEADER,
                                                               [product_row(1)]), COMPANY, clock=clock_in_windows)
    assert _errors(caught.value) == {(0, "企业名称", "enterprise.not_active")}
    assert "2026-06-30" in str(caught.value)
    assert db_counts() == before
    with Session(engine) as session:
        session.execute(update(Enterprise).values(barred_until=date(2025, 9, 1)))
        session.commit()
    assert import_declaration(engine, "shenyang-2025", tmp_path / "t.xlsx", COMPANY,
                              clock=clock_in_windows).created == 1


def test_data_right_of_the_last_header_is_an_error(engine, shenyang, clock_in_windows, tmp_path):
    cells = list(product_row(1).values())[:12]
    path = write_xlsx(tmp_path / "t.xlsx", DECLARATION_COLUMNS, [[*cells, "", "多出来的"]])
    with pytest.raises(ImportRejected) as caught:
        import_declaration(engine, "shenyang-2025", path, COMPANY, clock=clock_in_windows)
    assert _errors(caught.value) == {(2, "第14列", "cell.no_header")}


def test_the_number_of_winning_enterprises_is_imported_with_the_product_and_a_bad_one_is_refused(
    engine, shenyang, clock_in_windows, tmp_path
):
    header = (*DECLARATION_HEADER, "中选企业数")
    bad = write_xlsx(tmp_path / "bad.xlsx", header, [product_row(1, 中选企业数="两家")])
    with pytest.raises(ImportRejected) as caught:
        import_declaration(engine, "shenyang-2025", bad, COMPANY, clock=clock_in_windows)
    assert _errors(caught.value) == {(2, "中选企业数", "winner_count.invalid")}
    good = write_xlsx(tmp_path / "good.xlsx", header, [product_row(1, 中选企业数=2), product_row(2, 中选企业数="")])
    import_declaration(engine, "shenyang-2025", good, COMPANY, clock=clock_in_windows)
    with Session(engine) as session:
        winners = dict(session.execute(select(Product.drug_code, Product.winner_count)).tuples().all())
    assert winners == {"XC10AA0001A001010100483": 2, "XC10AA0002A001010100483": None}
