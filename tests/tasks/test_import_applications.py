from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from models.clock import SHANGHAI, FixedClock
from models.states import ApplicationState, InstitutionKind, NoticeStatus, Role
from models.tables import Application, AuditEvent, ImportRecord, Institution, Notice
from models.windows import WindowClosed
from tasks.intake.application_import import import_applications
from tasks.intake.import_files import ProgramNotFound
from tasks.intake.spreadsheets import ImportRejected, RowError
from tests.factories_files import (
    APPLICATION_HEADER,
    application_row,
    bad_check_char,
    insurance_code,
    uscc,
    write_csv,
    write_xlsx,
)

# Jiangxi's floors (002 §五) on the Shenyang program, which itself sets none.
FLOORS = {"min_drug_count": {"private_tertiary": 80, "private_other": 50, "pharmacy": 50}}


def _rows_by_uscc(engine):
    with Session(engine) as session:
        return {i.uscc: i for i in session.execute(select(Institution)).scalars()}


def _errors(exc: ImportRejected) -> set[tuple[int, str, str]]:
    return {(e.row, e.column, e.rule) for e in exc.errors}


def test_good_file_creates_institutions_applications_audit_and_receipts(engine, shenyang, clock_in_windows, tmp_path):
    rows = [
        application_row(1),
        application_row(2, kind="连锁药店", district="沈河区", 特药定点="是", 电子邮箱=""),
        application_row(3, kind="民营诊所", district="皇姑区"),
        application_row(4, kind="乡镇卫生院", district="新民市"),
        application_row(5, kind="村卫生室", district="新民市", 代采上级机构医保编码=insurance_code(4, district="新民市")),
    ]
    path = write_xlsx(tmp_path / "沈阳申请.xlsx", APPLICATION_HEADER, rows)

    result = import_applications(engine, "shenyang-2025", path, clock=clock_in_windows, actor="hp_reviewer")

    assert (result.rows, result.created, result.skipped, result.already_imported) == (5, 5, [], False)
    assert result.warnings == []
    institutions = _rows_by_uscc(engine)
    pharmacy = institutions[uscc(2, "沈河区", "92")]
    assert pharmacy.kind is InstitutionKind.CHAIN_PHARMACY
    assert pharmacy.phone == "13800000002"  # the number cell came back as typed, not 13800000002.0
    assert pharmacy.special_designated is True and pharmacy.email is None
    with Session(engine) as session:
        apps = session.execute(select(Application).order_by(Application.id)).scalars().all()
        audits = session.execute(select(AuditEvent)).scalars().all()
        notices = {n.idempotency_key: n for n in session.execute(select(Notice)).scalars()}
        record = session.get(ImportRecord, result.import_id)
    assert [(a.state, a.attempt, a.import_id) for a in apps] == [(ApplicationState.SUBMITTED, 1, result.import_id)] * 5
    assert [a.district for a in apps] == ["和平区", "沈河区", "皇姑区", "新民市", "新民市"]
    assert apps[0].committed_drug_count == 60 and apps[0].price_option == "at_winning_price"
    assert {(a.entity, a.action, a.from_state, a.to_state, a.actor, a.role) for a in audits} == {
        ("application", "submit", None, "submitted", "hp_reviewer", Role.SYSTEM)
    }
    assert sorted(int(a.entity_id) for a in audits) == [a.id for a in apps]
    assert set(notices) == {f"application_receipt:{a.id}" for a in apps}
    first = notices[f"application_receipt:{apps[0].id}"]
    assert first.kind == "application_receipt" and first.email == "inst1@example.cn"
    # The program's and the institution's names are the row's to give (its program, its recipient; issue #17).
    assert first.program_id is not None and first.recipient_name == "沈阳市和平区测试1号社区卫生服务中心"
    assert first.context == {"application_id": apps[0].id, "district": "和平区", "submitted_on": "2025-09-12"}
    assert notices[f"application_receipt:{apps[1].id}"].status is NoticeStatus.NO_ADDRESS
    assert (record.kind, record.rows, record.created, record.filename) == ("applications", 5, 5, "沈阳申请.xlsx")


def test_same_file_twice_creates_nothing_the_second_time(engine, shenyang, clock_in_windows, tmp_path, db_counts):
    path = write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, [application_row(n) for n in range(1, 4)])
    first = import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    before = db_counts()

    again = import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)

    assert (again.already_imported, again.created, again.import_id, again.rows) == (True, 0, first.import_id, 3)
    assert db_counts() == before


def test_every_bad_cell_of_every_bad_row_is_reported_and_nothing_is_written(
    engine, add_program, clock_in_windows, tmp_path, db_counts
):
    add_program("shenyang-floors", rules=FLOORS)
    rows = [
        application_row(1),                                                     # row 2: fine
        application_row(2, 统一社会信用代码=bad_check_char(uscc(2))),            # row 3
        application_row(3, 所属区县="朝阳区"),                                   # row 4: not a Shenyang district
        application_row(4, 联系电话="1234"),                                     # row 5
        application_row(5, 统一社会信用代码=uscc(1)),                             # row 6: same USCC as row 2
        application_row(6, kind="单体药店", 承诺配备药品数量=30),                 # row 7: pharmacy floor is 50
        application_row(7, 联系电话="abc", 电子邮箱="no-at-sign", 承诺参加年限=0),  # row 8: three bad cells
    ]
    path = write_xlsx(tmp_path / "bad.xlsx", APPLICATION_HEADER, rows)
    before = db_counts()

    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-floors", path, clock=clock_in_windows)

    assert _errors(caught.value) == {
        (3, "统一社会信用代码", "uscc.check_char"),
        (4, "所属区县", "district.unknown"),
        (5, "联系电话", "phone.format"),
        (6, "统一社会信用代码", "uscc.duplicate"),
        (7, "承诺配备药品数量", "drug_count.below_minimum"),
        (8, "联系电话", "phone.format"),
        (8, "电子邮箱", "email.at"),
        (8, "承诺参加年限", "int.not_positive"),
    }
    duplicate = next(e for e in caught.value.errors if e.rule == "uscc.duplicate")
    assert "第2行" in duplicate.message and "row 2" in duplicate.message
    district = next(e for e in caught.value.errors if e.column == "所属区县")
    assert district.value == "朝阳区" and "不在可选范围内" in district.message and "和平区" in district.message
    assert all(" / " in e.message for e in caught.value.errors)  # Chinese / English
    assert "8处错误" in str(caught.value) or "8 error" in str(caught.value)
    assert db_counts() == before


def test_duplicate_insurance_code_names_the_earlier_row(engine, shenyang, clock_in_windows, tmp_path):
    rows = [application_row(1), application_row(2, 机构医保编码=insurance_code(1))]
    path = write_xlsx(tmp_path / "dup.xlsx", APPLICATION_HEADER, rows)
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    assert [(e.row, e.column, e.rule) for e in caught.value.errors] == [
        (3, "机构医保编码", "institution_code.duplicate")
    ]
    assert "第2行" in caught.value.errors[0].message


def test_misspelt_header_is_one_error_naming_expected_and_found(engine, shenyang, clock_in_windows, tmp_path, db_counts):
    header = ["统一信用代码" if h == "统一社会信用代码" else h for h in APPLICATION_HEADER]
    path = write_xlsx(tmp_path / "h.xlsx", header, [application_row(1)])
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    [error] = caught.value.errors
    assert (error.row, error.column, error.rule) == (1, "表头", "header.mismatch")
    assert "缺少列" in error.message and "统一社会信用代码" in error.message
    assert "无法识别的列" in error.message and "统一信用代码" in error.message
    assert db_counts()["Application"] == 0


def test_optional_columns_may_be_left_out_and_columns_reordered(engine, shenyang, clock_in_windows, tmp_path):
    header = list(reversed([h for h in APPLICATION_HEADER if h not in ("民营三级", "代采上级机构医保编码")]))
    path = write_xlsx(tmp_path / "min.xlsx", header, [application_row(1)])
    assert import_applications(engine, "shenyang-2025", path, clock=clock_in_windows).created == 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_csv_in_the_encodings_excel_writes(engine, shenyang, clock_in_windows, tmp_path, encoding):
    rows = [application_row(1), application_row(2, kind="村卫生室", 代采上级机构医保编码=insurance_code(1))]
    path = write_csv(tmp_path / "申请.csv", APPLICATION_HEADER, rows, encoding=encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")  # really not UTF-8, so the fallback is exercised

    result = import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)

    assert result.created == 2
    names = {i.name for i in _rows_by_uscc(engine).values()}
    assert names == {"沈阳市和平区测试1号社区卫生服务中心", "沈阳市和平区测试2号村卫生室"}


@pytest.mark.parametrize(
    ("when", "state"),
    [(datetime(2025, 9, 9, 23, 59, tzinfo=SHANGHAI), "尚未开始"), (datetime(2025, 10, 8, 9, tzinfo=SHANGHAI), "已经结束")],
)
def test_outside_the_enrollment_window_is_refused_naming_the_window(engine, shenyang, tmp_path, db_counts, when, state):
    path = write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, [application_row(1)])
    with pytest.raises(WindowClosed) as caught:
        import_applications(engine, "shenyang-2025", path, clock=FixedClock(when))
    message = str(caught.value)
    assert "组织医药机构参加" in message and "2025-09-10" in message and "2025-09-30" in message
    assert state in message and "enrollment" in message
    assert db_counts()["ImportRecord"] == 0


def test_continuous_review_keeps_accepting_after_enrollment(engine, shenyang, tmp_path):
    path = write_xlsx(tmp_path / "late.xlsx", APPLICATION_HEADER, [application_row(1)])
    late = FixedClock(datetime(2026, 3, 2, 9, tzinfo=SHANGHAI))
    assert import_applications(engine, "shenyang-2025", path, clock=late).created == 1


def test_rejected_institution_reapplies_as_attempt_2_and_pending_ones_are_skipped(engine, shenyang, clock_in_windows, tmp_path):
    first = write_xlsx(tmp_path / "round1.xlsx", APPLICATION_HEADER, [application_row(1), application_row(2)])
    import_applications(engine, "shenyang-2025", first, clock=clock_in_windows)
    rejected_uscc = uscc(1)
    with Session(engine) as session:
        inst_id = session.execute(select(Institution.id).where(Institution.uscc == rejected_uscc)).scalar_one()
        session.execute(update(Application).where(Application.institution_id == inst_id)
                        .values(state=ApplicationState.REJECTED))
        session.commit()

    # The district resends its grown list: both old institutions (one with a new phone) and a new one.
    second = write_xlsx(tmp_path / "round2.xlsx", APPLICATION_HEADER,
                        [application_row(1, 联系电话="024-23456789"), application_row(2), application_row(3)])
    result = import_applications(engine, "shenyang-2025", second, clock=clock_in_windows)

    assert result.created == 2
    assert [row for row, _ in result.skipped] == [3]
    assert "submitted" in result.skipped[0][1]
    with Session(engine) as session:
        apps = session.execute(select(Application.attempt, Application.state)
                               .where(Application.institution_id == inst_id)
                               .order_by(Application.attempt)).all()
        phone = session.get(Institution, inst_id).phone
    assert [tuple(a) for a in apps] == [(1, ApplicationState.REJECTED), (2, ApplicationState.SUBMITTED)]
    assert phone == "024-23456789"
    assert len(_rows_by_uscc(engine)) == 3


def test_proxy_procured_village_clinic_with_its_parent_in_the_same_file(engine, shenyang, clock_in_windows, tmp_path):
    parent_code = insurance_code(10, district="康平县")
    rows = [
        application_row(11, kind="村卫生室", district="康平县", 代采上级机构医保编码=parent_code),  # child first
        application_row(10, kind="乡镇卫生院", district="康平县"),
        application_row(12, kind="社区卫生服务站", district="康平县", 代采上级机构医保编码=parent_code),
    ]
    path = write_xlsx(tmp_path / "proxy.xlsx", APPLICATION_HEADER, rows)

    assert import_applications(engine, "shenyang-2025", path, clock=clock_in_windows).created == 3

    by_code = {i.insurance_code: i for i in _rows_by_uscc(engine).values()}
    parent = by_code[parent_code]
    assert parent.proxy_parent_id is None
    assert by_code[insurance_code(11, district="康平县")].proxy_parent_id == parent.id
    assert by_code[insurance_code(12, district="康平县")].proxy_parent_id == parent.id


def test_proxy_parent_already_in_the_database(engine, shenyang, clock_in_windows, tmp_path):
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "p.xlsx", APPLICATION_HEADER,
                                                            [application_row(20, kind="乡镇卫生院")]), clock=clock_in_windows)
    child = application_row(21, kind="村卫生室", 代采上级机构医保编码=insurance_code(20))
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "c.xlsx", APPLICATION_HEADER, [child]),
                        clock=clock_in_windows)
    by_code = {i.insurance_code: i for i in _rows_by_uscc(engine).values()}
    assert by_code[insurance_code(21)].proxy_parent_id == by_code[insurance_code(20)].id


def test_proxy_rules_are_enforced(engine, shenyang, clock_in_windows, tmp_path, db_counts):
    rows = [
        application_row(30, kind="单体药店"),                                                        # row 2
        application_row(31, kind="村卫生室", 代采上级机构医保编码=insurance_code(30, pharmacy=True)),   # row 3
        application_row(32, kind="民营诊所", 代采上级机构医保编码=insurance_code(34)),                  # row 4
        application_row(33, kind="村卫生室", 代采上级机构医保编码=insurance_code(99)),                  # row 5
        application_row(34, kind="乡镇卫生院"),                                                       # row 6
        application_row(35, kind="社区卫生服务站", 代采上级机构医保编码=insurance_code(34)),            # row 7
        application_row(36, kind="村卫生室", 代采上级机构医保编码=insurance_code(35)),                  # row 8
    ]
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "x.xlsx", APPLICATION_HEADER, rows),
                            clock=clock_in_windows)
    assert _errors(caught.value) == {
        (3, "代采上级机构医保编码", "proxy.parent_not_public"),
        (4, "代采上级机构医保编码", "proxy.kind_not_allowed"),
        (5, "代采上级机构医保编码", "proxy.parent_unknown"),
        (8, "代采上级机构医保编码", "proxy.parent_is_proxied"),
    }
    assert db_counts()["Institution"] == 0


def test_markup_option_only_for_pharmacies_of_programs_with_an_index_cap(engine, add_program, clock_in_windows, tmp_path):
    add_program()
    add_program("shenyang-index", rules={"markup": {"pharmacy_max_with_index": "0.15"}})
    rows = [application_row(40, kind="连锁药店", 销售价格承诺="加价不超过15%"),
            application_row(41, kind="民营诊所", 销售价格承诺="加价不超过15%")]
    path = write_xlsx(tmp_path / "m.xlsx", APPLICATION_HEADER, rows)

    with pytest.raises(ImportRejected) as without_cap:
        import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    with pytest.raises(ImportRejected) as with_cap:
        import_applications(engine, "shenyang-index", path, clock=clock_in_windows)

    assert _errors(without_cap.value) == {(2, "销售价格承诺", "price_option.markup_not_allowed"),
                                          (3, "销售价格承诺", "price_option.markup_not_pharmacy")}
    assert _errors(with_cap.value) == {(3, "销售价格承诺", "price_option.markup_not_pharmacy")}
    only_pharmacy = write_xlsx(tmp_path / "m2.xlsx", APPLICATION_HEADER, rows[:1])
    assert import_applications(engine, "shenyang-index", only_pharmacy, clock=clock_in_windows).created == 1
    with Session(engine) as session:
        assert session.execute(select(Application.price_option)).scalar_one() == "markup_15"


def test_insurance_code_owned_by_another_institution_is_refused(engine, shenyang, clock_in_windows, tmp_path):
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "1.xlsx", APPLICATION_HEADER,
                                                            [application_row(50)]), clock=clock_in_windows)
    thief = application_row(51, 机构医保编码=insurance_code(50))
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "2.xlsx", APPLICATION_HEADER, [thief]),
                            clock=clock_in_windows)
    assert _errors(caught.value) == {(2, "机构医保编码", "institution_code.taken")}


def test_uscc_typed_as_a_number_lost_its_digits_and_says_so(engine, shenyang, clock_in_windows, tmp_path):
    numeric = int("12" + "210102" + "0000007" + "3" + "0" + "1")  # an all-digit 18-character code
    path = write_xlsx(tmp_path / "n.xlsx", APPLICATION_HEADER, [application_row(60, 统一社会信用代码=numeric)])
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    lost = [e for e in caught.value.errors if e.rule == "cell.number_lost_digits"]
    assert [(e.row, e.column) for e in lost] == [(2, "统一社会信用代码")]
    assert "文本" in lost[0].message


def test_blank_rows_are_ignored_but_rows_keep_their_spreadsheet_numbers(engine, shenyang, clock_in_windows, tmp_path):
    rows = [application_row(70), application_row(71, 所属区县="沈阳区")]
    path = write_xlsx(tmp_path / "gaps.xlsx", APPLICATION_HEADER, rows, leading_blank_rows=2, blank_rows_after=[0])
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    assert caught.value.errors == [RowError(6, "所属区县", "沈阳区", caught.value.errors[0].message, "district.unknown")]


def test_position_17_mismatch_is_a_warning_stored_in_findings(engine, shenyang, clock_in_windows, tmp_path):
    from models.validators import make_uscc

    odd = make_uscc("12210102" + "00000080" + ("0" if uscc(80)[16] != "0" else "1"))
    result = import_applications(engine, "shenyang-2025", write_xlsx(
        tmp_path / "w.xlsx", APPLICATION_HEADER, [application_row(80, 统一社会信用代码=odd)]), clock=clock_in_windows)
    assert [(w.row, w.column, w.rule) for w in result.warnings] == [(2, "统一社会信用代码", "uscc.warning")]
    with Session(engine) as session:
        findings = session.execute(select(Application.findings)).scalar_one()
    assert findings[0]["rule"] == "uscc.warning" and findings[0]["row"] == 2


def test_unreadable_and_empty_files_are_clear_errors(engine, shenyang, clock_in_windows, tmp_path):
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    only_header = write_xlsx(tmp_path / "header.xlsx", APPLICATION_HEADER, [])
    for path, words in ((broken, "无法读取"), (empty, "空"), (only_header, "没有申请数据")):
        with pytest.raises(ImportRejected) as caught:
            import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
        assert words in str(caught.value)


def test_unknown_program(engine, shenyang, clock_in_windows, tmp_path):
    with pytest.raises(ProgramNotFound):
        import_applications(engine, "no-such-program", write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, []),
                            clock=clock_in_windows)


def test_a_thousand_rows_use_bulk_statements(engine, shenyang, clock_in_windows, tmp_path):
    from sqlalchemy import event

    rows = [application_row(n, district=d) for n, d in zip(range(1000, 2000), ["和平区", "铁西区"] * 500, strict=True)]
    path = write_xlsx(tmp_path / "big.xlsx", APPLICATION_HEADER, rows)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        result = import_applications(engine, "shenyang-2025", path, clock=clock_in_windows)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result.created == 1000
    # Batched INSERT ... RETURNING and IN-list lookups, not a statement per row.
    assert len(statements) < 100


def test_disqualified_institution_is_skipped_not_reapplied(engine, shenyang, clock_in_windows, tmp_path):
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "1.xlsx", APPLICATION_HEADER,
                                                            [application_row(90)]), clock=clock_in_windows)
    with Session(engine) as session:
        session.execute(update(Application).values(state=ApplicationState.DISQUALIFIED))
        session.commit()
    result = import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "2.xlsx", APPLICATION_HEADER,
                                                                     [application_row(90, 联系人="王五")]),
                                 clock=clock_in_windows)
    assert result.created == 0 and [r for r, _ in result.skipped] == [2]
    assert "取消资格" in result.skipped[0][1]


def test_an_institution_that_buys_for_others_cannot_become_proxy_procured(engine, shenyang, clock_in_windows, tmp_path):
    first = [application_row(91, kind="乡镇卫生院"), application_row(92, kind="村卫生室",
                                                                代采上级机构医保编码=insurance_code(91))]
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "1.xlsx", APPLICATION_HEADER, first),
                        clock=clock_in_windows)
    with Session(engine) as session:
        session.execute(update(Application).values(state=ApplicationState.REJECTED))
        session.commit()
    # The township centre re-applies as proxy-procured by another centre while still buying for the clinic.
    again = [application_row(93, kind="乡镇卫生院"),
             application_row(91, kind="乡镇卫生院", 代采上级机构医保编码=insurance_code(93))]
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "2.xlsx", APPLICATION_HEADER, again),
                            clock=clock_in_windows)
    assert _errors(caught.value) == {(3, "代采上级机构医保编码", "proxy.is_parent")}


def test_rejection_survives_pickling_for_prefect():
    import pickle

    original = ImportRejected("a.xlsx", [RowError(3, "联系电话", "1234", "联系电话不是有效的电话号码 / bad", "phone.format")])
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.filename, copy.errors, str(copy)) == (original.filename, original.errors, str(original))
    missing = pickle.loads(pickle.dumps(ProgramNotFound("x")))
    assert str(missing) == str(ProgramNotFound("x"))


def test_each_application_keeps_its_commitment_and_its_audit_row_names_the_file_row(
    engine, shenyang, clock_in_windows, tmp_path
):
    rows = [application_row(90), application_row(91, kind="连锁药店", district="沈河区")]
    result = import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, rows),
                                 clock=clock_in_windows, actor="hp_reviewer")
    with Session(engine) as session:
        apps = session.execute(select(Application).order_by(Application.id)).scalars().all()
        audits = {int(a.entity_id): a for a in session.execute(select(AuditEvent)).scalars()}
    # The 承诺书 ticks come with every submitted application (001 att.2); the import does not fill them.
    assert all(a.pay_by_next_month_end and a.dedicated_counter and a.dual_price_labels and a.complaint_phone_displayed
               and a.findings == [] and a.batch_id is None and a.decided_at is None for a in apps)
    assert [audits[a.id].data for a in apps] == [
        {"import_id": result.import_id, "row": 2, "attempt": 1},
        {"import_id": result.import_id, "row": 3, "attempt": 1},
    ]
    assert {(a.program_id, a.at) for a in audits.values()} == {(apps[0].program_id, clock_in_windows.now())}


def test_a_district_s_applications_are_stored_together_and_still_name_their_file_rows(
    engine, shenyang, clock_in_windows, tmp_path
):
    # Interleaved forms are stored district by district so each district gate reads its own pages.
    districts = ["和平区", "沈河区", "和平区", "皇姑区", "沈河区", "和平区"]
    rows = [application_row(60 + n, district=d) for n, d in enumerate(districts)]
    result = import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "a.xlsx", APPLICATION_HEADER, rows),
                                 clock=clock_in_windows, actor="hp_reviewer")
    with Session(engine) as session:
        apps = session.execute(select(Application).order_by(Application.id)).scalars().all()
        institutions = session.execute(select(Institution).order_by(Institution.id)).scalars().all()
        audits = {int(a.entity_id): a.data for a in session.execute(select(AuditEvent)).scalars()}
    assert [a.district for a in apps] == ["和平区"] * 3 + ["沈河区"] * 2 + ["皇姑区"]
    assert [i.district for i in institutions] == ["和平区"] * 3 + ["沈河区"] * 2 + ["皇姑区"]
    assert [audits[a.id]["row"] for a in apps] == [2, 4, 7, 3, 6, 5]  # file order within a district
    assert result.created == 6


def test_a_small_file_against_a_large_table_finds_what_is_already_there(
    engine, shenyang, clock_in_windows, tmp_path
):
    # A district's weekly upload beside a province's worth of institutions (here 26 ≫ a 2-row file).
    first = [application_row(n) for n in range(100, 125)] + [application_row(150, kind="乡镇卫生院", district="新民市")]
    import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "all.xlsx", APPLICATION_HEADER, first),
                        clock=clock_in_windows)

    thief = application_row(300, 机构医保编码=insurance_code(105))
    with pytest.raises(ImportRejected) as caught:
        import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "t.xlsx", APPLICATION_HEADER, [thief]),
                            clock=clock_in_windows)
    assert _errors(caught.value) == {(2, "机构医保编码", "institution_code.taken")}

    weekly = [application_row(110),
              application_row(201, kind="村卫生室", district="新民市", 代采上级机构医保编码=insurance_code(150, district="新民市"))]
    result = import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "w.xlsx", APPLICATION_HEADER, weekly),
                                 clock=clock_in_windows)
    assert (result.created, [row for row, _ in result.skipped]) == (1, [2])
    by_code = {i.insurance_code: i for i in _rows_by_uscc(engine).values()}
    assert by_code[insurance_code(201, district="新民市")].proxy_parent_id == by_code[insurance_code(150, district="新民市")].id


def test_the_import_leaves_the_cycle_collector_as_it_found_it(engine, shenyang, clock_in_windows, tmp_path):
    import gc

    good = write_xlsx(tmp_path / "g.xlsx", APPLICATION_HEADER, [application_row(1)])
    bad = write_xlsx(tmp_path / "b.xlsx", APPLICATION_HEADER, [application_row(2, 联系电话="abc")])
    assert gc.isenabled()
    import_applications(engine, "shenyang-2025", good, clock=clock_in_windows)
    assert gc.isenabled()
    with pytest.raises(ImportRejected):
        import_applications(engine, "shenyang-2025", bad, clock=clock_in_windows)
    assert gc.isenabled()
    gc.disable()
    try:
        import_applications(engine, "shenyang-2025", write_xlsx(tmp_path / "c.xlsx", APPLICATION_HEADER,
                                                                [application_row(3)]), clock=clock_in_windows)
        assert not gc.isenabled()  # a caller that paused it keeps it paused
    finally:
        gc.enable()


def test_new_rows_take_the_ids_the_database_shows_it_gave_them_in_the_order_inserted(
    engine, shenyang, clock_in_windows, tmp_path
):
    """The ids of a bulk insert are taken as a range only when one aggregate shows exactly that range above the
    previous highest id (SQLite); otherwise (a gap, a row already above, or PostgreSQL's shared sequence) they are
    read back by key, and either way each application, audit row and receipt belongs to its own file row."""
    from core.bulk import insert_columns, table_of
    from tasks.intake.application_writes import _ids_in_order

    t = table_of(Institution)
    template = {"name": "x", "address": "y", "legal_rep": "z", "contact_name": "c", "phone": "13812345678",
                "email": None, "district": "和平区", "kind": InstitutionKind.PRIVATE_CLINIC.value, "private_tertiary": False,
                "special_designated": False, "proxy_parent_id": None}
    with Session(engine) as session:
        insert_columns(session, t, {"uscc": [uscc(1), uscc(2)], "insurance_code": [insurance_code(1),
                                                                                  insurance_code(2)]}, template)
        expected = [1, 2] if engine.dialect.name == "sqlite" else None
        assert _ids_in_order(session, t, 0, 2) == expected
        assert _ids_in_order(session, t, 0, 3) is None  # not the rows the caller inserted: read back
        session.execute(t.insert().values(id=10, uscc=uscc(3), insurance_code=insurance_code(3), **template))
        assert _ids_in_order(session, t, 0, 2) is None  # a row beyond the range
        session.rollback()

    districts = ["沈河区", "和平区", "沈河区"]
    result = import_applications(engine, "shenyang-2025", write_xlsx(
        tmp_path / "a.xlsx", APPLICATION_HEADER, [application_row(70 + n, district=d) for n, d in enumerate(districts)]),
        clock=clock_in_windows)
    with Session(engine) as session:
        apps = session.execute(select(Application, Institution).join(Institution)).all()
        rows = {int(a.entity_id): a.data["row"] for a in session.execute(select(AuditEvent)).scalars()}
        receipts = {n.context["application_id"]: n.recipient_name
                    for n in session.execute(select(Notice)).scalars()}
    assert result.created == 3
    assert {(i.uscc, rows[a.id]) for a, i in apps} == {(uscc(70 + n, district=d), n + 2)
                                                      for n, d in enumerate(districts)}
    assert {a.id: i.name for a, i in apps} == receipts
