"""Every table stores and returns what it was given, on SQLite and on PostgreSQL.

One row per table, linked as the product links them (program → institution → application → batch →
review → gate → notice → audit …). What must survive the trip: aware instants (equal, and read back
aware in UTC), money to the cent as Decimal, enums as their members, JSON with Chinese text.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import Engine, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel, select

from models.audit import AuditChainHead, AuditEvent, AuditLink, AuditLinkMixed, audit_row
from models.calendar import CalendarDay, CalendarYear
from models.catalog import DeclarationItem, Enterprise, EnterpriseDeclaration, ListEntry, ListVersion, Product
from models.clock import SHANGHAI
from models.compliance.codes import SubjectType, ViolationRule
from models.enforcement import BadRecord, EnforcementCase, EnterpriseExit, ExitState, LadderState
from models.enrollment import Application, Batch, Gate, Institution, Review
from models.operations import (
    ComplianceMark,
    Contract,
    Delivery,
    EnforcementAction,
    LowestPrice,
    Payment,
    PlatformAccount,
    PriceReport,
    PurchaseOrder,
    QuarterlyReport,
    SalePrice,
    Selection,
    Settlement,
    Violation,
)
from models.outbox import Notice
from models.program import AllianceInvitation, ClockSetting, ImportRecord, PhaseWindow, Program, User
from models.progress import ProgramSnapshot
from models.register import DesignationStatus, RegisterEntry
from models.reports import ReportKind, ReportVersion
from models.signin import SignInThrottle, WebSession
from models.states import (
    AccountState,
    ApplicationState,
    BatchState,
    ContractState,
    Decision,
    DeclarationState,
    EnforcementKind,
    EnforcementState,
    EnterpriseState,
    GateKind,
    GateState,
    InstitutionKind,
    InvitationState,
    ListKind,
    NoticeStatus,
    ReviewLevel,
    Role,
)
from models.tables import metadata
from models.transitions import APPLICATION

# Instants in three zones, with microseconds: each must come back as the same instant.
T_SHANGHAI = datetime(2025, 9, 22, 10, 30, 15, 123456, tzinfo=SHANGHAI)
T_UTC = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)  # 10-01 00:30 in Shanghai
T_MINUS5 = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))

DEFINITION = {"名称": "沈阳市集采药品“三进”工作", "phases": [{"name": "enrollment", "label": "组织医药机构参加"}],
              "districts": ["和平区", "沈河区"], "share": 0.6, "enabled": True, "none": None}


def build_graph(session: Session) -> list[SQLModel]:
    """One row of every table, each pointing at the rows it belongs to; returns them in insert order."""
    rows: list[SQLModel] = []

    def add(row: SQLModel) -> Any:
        session.add(row)
        session.flush()
        rows.append(row)
        return row

    program = add(Program(slug="round-trip-2025", name="沈阳市集采药品“三进”工作（2025年）", region="辽宁省沈阳市",
                          region_code="210100", definition=DEFINITION, content_hash="a" * 64,
                          source_path="deploy/programs/沈阳.yaml", loaded_at=T_SHANGHAI))
    add(PhaseWindow(program_id=program.id, phase="continuous_review", label="持续推进", opens_on=date(2025, 12, 1),
                    closes_on=None))
    add(AllianceInvitation(program_id=program.id, city="大连市", bureau="大连市医疗保障局", email="dl@ybj.example.cn",
                           state=InvitationState.ACCEPTED, invited_at=T_SHANGHAI, responded_at=T_MINUS5))
    user = add(User(name="reviewer0", display_name="王审核", role=Role.DISTRICT_REVIEWER, districts=["和平区", "沈河区"],
                    program_slugs=["round-trip-2025"], password_hash="scrypt$16384$8$1$00$11", active=True))
    add(WebSession(token_hash="c" * 64, user_id=user.id, created_at=T_SHANGHAI, expires_at=T_UTC, revoked_at=T_MINUS5,
                   address="10.0.0.1"))
    add(SignInThrottle(scope="account", key="reviewer0", failures=10, window_started_at=T_SHANGHAI,
                       last_failed_at=T_UTC, locked_at=T_MINUS5))
    add(ClockSetting(id=1, now=T_UTC))
    imported = add(ImportRecord(kind="applications", program_id=program.id, sha256="b" * 64, filename="申请表（第1批）.xlsx",
                                rows=2, created=1, imported_by="manager", imported_at=T_SHANGHAI))
    parent = add(Institution(name="和平区浑河站乡镇卫生院", address="沈阳市和平区测试路1号", uscc="91350100M000100Y43",
                             legal_rep="张三", insurance_code="H21010200001", contact_name="李四", phone="024-12345678",
                             email="wsy@example.cn", district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER,
                             private_tertiary=False, special_designated=True))
    clinic = Institution(name="浑河站村卫生室", address="沈阳市和平区测试路2号", uscc="91110108551385082Q",
                         legal_rep="赵六", insurance_code="H21010200002", contact_name="钱七", phone="13800000000",
                         email=None, district="和平区", kind=InstitutionKind.VILLAGE_CLINIC, proxy_parent_id=parent.id)
    add(clinic)
    enterprise = add(Enterprise(name="测试制药有限公司", uscc="91110000600037341L", contact_name="孙八",
                                phone="010-88888888", email="qy@example.cn", state=EnterpriseState.BARRED,
                                barred_until=date(2027, 9, 21)))
    product = add(Product(enterprise_id=enterprise.id, drug_code="XC10AAA052A001010100483", name="阿托伐他汀钙片",
                          dosage_form="片剂", spec="20mg", conversion_ratio="28", min_unit="片", package_unit="盒",
                          package_material="铝塑泡罩", manufacturer="测试制药有限公司", bidder="测试制药有限公司",
                          winning_price=Decimal("12.34"), approval_number="国药准字H20193001", category="心脑血管",
                          is_special=True))
    declaration = add(EnterpriseDeclaration(program_id=program.id, enterprise_id=enterprise.id,
                                            state=DeclarationState.ACCEPTED, commitment_signed=True,
                                            findings=[{"字段": "中选价(元)", "问题": "与国家中选结果不一致"}],
                                            reason="材料齐全", import_id=imported.id, submitted_at=T_SHANGHAI,
                                            decided_at=T_UTC, decided_by="manager"))
    add(DeclarationItem(declaration_id=declaration.id, product_id=product.id, recommended=True))
    version = add(ListVersion(program_id=program.id, kind=ListKind.INSTITUTIONS, number=1, content_hash="c" * 64,
                              entry_count=1, added=1, removed=0, changed=0,
                              diff={"added": ["H21010200001"], "removed": [], "说明": "第1批"},
                              reason="第1批机构名单", published_at=T_UTC, published_by="manager"))
    add(ListEntry(version_id=version.id, key="H21010200001",
                  data={"单位名称": "和平区浑河站乡镇卫生院", "区县": "和平区", "三进": True}))
    batch = add(Batch(program_id=program.id, number=1, state=BatchState.RUNNING, opened_on=date(2025, 9, 10),
                      cutoff_on=date(2025, 9, 19), declared_at=T_SHANGHAI, matured_at=T_UTC, running_at=T_MINUS5,
                      list_version_id=version.id))
    application = add(Application(program_id=program.id, institution_id=parent.id, attempt=1, district="和平区",
                                  state=ApplicationState.RUNNING, batch_id=batch.id, committed_drug_count=60,
                                  price_option="at_winning_price", participation_years=1,
                                  findings=[{"field": "联系电话", "message": "号码位数不足"}], reason="同意",
                                  import_id=imported.id, submitted_at=T_SHANGHAI, decided_at=T_UTC))
    gate = add(Gate(natural_key=f"district_review:{batch.id}:和平区", program_id=program.id, phase="enrollment",
                    kind=GateKind.DISTRICT_REVIEW, title="和平区第1批申请审核", subject_type="batch",
                    subject_id=batch.id, items=[application.id], district="和平区",
                    decider_role=Role.DISTRICT_REVIEWER, state=GateState.DECIDED, opened_at=T_SHANGHAI,
                    due_on=date(2025, 9, 24), decision={"outcomes": [{"decision": "approve", "reason": "材料齐全", "by": "reviewer0",
                                                "at": "2025-09-20T10:00:00+08:00", "items": [application.id]}]},
                    decided_by="reviewer0", decided_at=T_UTC, flow_run_id="0f8c2b8e-run", version=2,
                    due_on_provisional=True, due_from=date(2025, 9, 17), due_working_days=5))
    add(Review(application_id=application.id, level=ReviewLevel.DISTRICT, decision=Decision.APPROVE, reason="材料齐全",
               reviewer="reviewer0", gate_id=gate.id, decided_at=T_UTC))
    add(PlatformAccount(program_id=program.id, institution_id=parent.id, state=AccountState.REGISTERED,
                        account_no="LN-210102-0001", registered_on=date(2025, 10, 9), due_on=date(2025, 11, 30)))
    add(Selection(program_id=program.id, institution_id=parent.id, product_id=product.id,
                  sale_price=Decimal("12.34"), online_price=Decimal("0.10"), annual_volume=1200))
    add(Contract(program_id=program.id, institution_id=parent.id, enterprise_id=enterprise.id, year=2025,
                 state=ContractState.SIGNED, signed_on=date(2025, 10, 20), due_on=date(2025, 11, 30),
                 agreed_volumes={"XC10AAA052A001010100483": 1200}))
    order = add(PurchaseOrder(program_id=program.id, order_no="PO-2025-000001", institution_id=parent.id,
                              product_id=product.id, enterprise_id=enterprise.id, distributor="国药控股沈阳有限公司",
                              quantity=100, unit_price=Decimal("12.34"), amount=Decimal("1234.00"),
                              ordered_at=T_SHANGHAI))
    delivery = add(Delivery(order_id=order.id, arrived_at=T_UTC, accepted_on=date(2025, 10, 1), quantity=100))
    add(Settlement(order_id=order.id, paid_on=date(2025, 11, 3), amount=Decimal("1234.00")))
    add(Payment(order_id=order.id, delivery_id=delivery.id, institution_id=parent.id,
                amount=Decimal("999999999999.99"), due_on=date(2025, 11, 30), paid_on=None))
    add(ComplianceMark(program_id=program.id, settlement_id=2_147_483_647, payment_id=1))
    add(SalePrice(program_id=program.id, institution_id=parent.id, product_id=product.id,
                  offline_price=Decimal("12.34"), online_price=None, effective_on=date(2025, 10, 1)))
    add(LowestPrice(program_id=program.id, drug_code=product.drug_code, price=Decimal("0.01"),
                    effective_on=date(2025, 9, 22)))
    add(PriceReport(program_id=program.id, drug_code=product.drug_code, reported_on=date(2025, 10, 24)))
    add(CalendarYear(year=2027, title="国务院办公厅关于2027年部分节假日安排的通知", text_sha256="ab" * 32,
                     entered_at=T_SHANGHAI, entered_by="manager"))
    add(CalendarDay(day=date(2027, 1, 1), year=2027, working=False, festival="元旦"))
    add(RegisterEntry(program_id=program.id, as_of=date(2026, 3, 31), insurance_code="H21010200001",
                      name="和平区浑河站乡镇卫生院", district="和平区", kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER,
                      status=DesignationStatus.ACTIVE, designated_on=date(2020, 1, 1), import_id=imported.id))
    add(ReportVersion(program_id=program.id, kind=ReportKind.QUARTERLY, period="2025Q4", version=2,
                      content_hash="cd" * 32, figures={"tables": [{"scope": "辽宁省沈阳市", "rows": [["汇总", ["12.34"]]]}]},
                      xlsx=bytes(range(256)), html="<h1>集采药品“三进”相关数据统计表</h1>", file_stem="shenyang-2025-2025Q4-quarterly-v2",
                      generated_at=T_SHANGHAI, generated_by="manager", data_as_of=date(2026, 1, 20)))
    add(ProgramSnapshot(program_id=program.id, day=date(2026, 1, 20), counts={"applied": 120, "batch_running": 3},
                        taken_at=T_SHANGHAI))
    add(QuarterlyReport(program_id=program.id, year=2025, quarter=4, due_on=date(2026, 1, 31),
                        figures={"定点药店": {"参加集采药品医药机构数量": {"新增": 3, "累计": 10}}, "汇总": "12.34"},
                        submitted_at=T_MINUS5))
    violation = add(Violation(program_id=program.id, rule=ViolationRule.LATE_DELIVERY,
                              subject_type=SubjectType.ENTERPRISE, subject_id=enterprise.id, object_key="PO-1",
                              detected_on=date(2025, 10, 1), detected_at=T_UTC,
                              evidence={"说明": "超过72小时未配送", "hours": 80}))
    add(EnforcementAction(violation_id=violation.id, kind=EnforcementKind.INTERVIEW, state=EnforcementState.EXECUTED,
                          decided_by="manager", decided_at=T_SHANGHAI, reason="约谈企业负责人"))
    add(EnforcementCase(program_id=program.id, violation_id=violation.id, subject_type=SubjectType.ENTERPRISE,
                        subject_id=enterprise.id, state=LadderState.RECTIFYING, due_on=date(2027, 1, 15),
                        due_on_provisional=True, due_from=date(2026, 12, 31), due_working_days=10,
                        opened_at=T_SHANGHAI))
    add(BadRecord(program_id=program.id, enterprise_id=enterprise.id, starts_on=date(2025, 10, 1),
                  barred_until=date(2027, 9, 30), reason="拒绝配送（不良记录）", recorded_by="manager",
                  recorded_at=T_UTC))
    add(EnterpriseExit(program_id=program.id, enterprise_id=enterprise.id, exits_on=date(2026, 1, 1),
                       reason="协议期满申请退出", state=ExitState.APPROVED, requested_by="manager",
                       requested_at=T_SHANGHAI))
    add(Notice(idempotency_key=f"application_decision:{application.id}", program_id=program.id,
               kind="application_decision", recipient_type="institution", recipient_id=parent.id,
               recipient_name="和平区浑河站乡镇卫生院", email="wsy@example.cn",
               context={"机构": "和平区浑河站乡镇卫生院", "结果": "通过", "批次": 1}, subject="“三进”申请审核结果",
               status=NoticeStatus.SENT, attempts=1, next_attempt_at=None, message_id="<1@ybj.example.cn>",
               last_error=None, created_at=T_SHANGHAI, sent_at=T_UTC))
    _, record = APPLICATION.apply(application.id, ApplicationState.SUBMITTED, "district_approve", actor="reviewer0",
                                  role=Role.DISTRICT_REVIEWER, at=T_SHANGHAI, reason="材料齐全", program_id=program.id,
                                  data={"gate": gate.id, "区县": "和平区"})
    add(AuditEvent(**audit_row(record)))
    add(AuditChainHead(chain=999_999, seq=1, hash="f" * 64))  # a chain of its own: the commit moves the program's
    add(AuditLink(chain=999_999, first_seq=1, last_seq=1, hash="e" * 64, locators=b"\x00\x01" + bytes(4)))
    add(AuditLinkMixed(chain=999_999, first_seq=1))
    return rows


def column_values(row: SQLModel) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in type(row).__table__.columns}  # type: ignore[attr-defined]


def assert_same_value(where: str, sent: Any, got: Any) -> None:
    if isinstance(sent, datetime):
        assert isinstance(got, datetime), where
        assert got.tzinfo is not None and got.utcoffset() == timedelta(0), f"{where}: {got!r} is not aware UTC"
        assert got == sent, where
    elif isinstance(sent, Decimal):
        assert isinstance(got, Decimal) and str(got) == str(sent), f"{where}: {got!r} != {sent!r}"
    elif isinstance(sent, StrEnum):
        assert got is sent, f"{where}: {got!r} is not the member {sent!r}"
    else:
        assert type(got) is type(sent) and got == sent, f"{where}: {got!r} != {sent!r}"


@pytest.fixture
def stored(engine: Engine) -> list[tuple[type[SQLModel], dict[str, Any]]]:
    """The graph written and committed; each row as (model, the values it was given)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = build_graph(session)
        session.commit()
        return [(type(row), column_values(row)) for row in rows]


def test_the_round_trip_graph_has_a_row_in_every_table(stored):
    assert {model.__tablename__ for model, _ in stored} == set(metadata.tables)  # type: ignore[attr-defined]


SEALED_AT_COMMIT = {"chain", "chain_seq", "chain_hash"}  # written by the commit that stores an audit row


def test_every_column_of_every_table_reads_back_as_written(engine, stored):
    with Session(engine) as session:
        for model, sent in stored:
            keys = model.__table__.primary_key.columns.keys()
            got = session.get(model, tuple(sent[k] for k in keys) if len(keys) > 1 else sent[keys[0]])
            assert got is not None, model.__name__
            for key, value in sent.items():
                if model is AuditEvent and key in SEALED_AT_COMMIT:
                    assert getattr(got, key) is not None, key  # the commit chained the row (core/audit_chain.py)
                    continue
                assert_same_value(f"{model.__name__}.{key}", value, getattr(got, key))


def test_instants_come_back_aware_and_equal_and_are_stored_as_utc(engine, stored):
    with Session(engine) as session:
        batch = session.exec(select(Batch)).one()
    assert (batch.declared_at, batch.matured_at, batch.running_at) == (T_SHANGHAI, T_UTC, T_MINUS5)
    assert batch.declared_at is not None and batch.running_at is not None
    assert batch.declared_at.tzinfo is UTC
    assert batch.declared_at.astimezone(SHANGHAI).isoformat() == "2025-09-22T10:30:15.123456+08:00"
    assert batch.running_at.astimezone(SHANGHAI).date() == date(2026, 1, 1)
    with engine.connect() as conn:
        declared, running = conn.execute(text("select declared_at, running_at from batch")).one()
    if engine.dialect.name == "sqlite":  # no zone type: the text must be UTC wall time so it sorts as instants
        assert str(declared).startswith("2025-09-22 02:30:15.123456")
        assert str(running).startswith("2026-01-01 04:59:59.999999")
    else:
        assert (declared, running) == (T_SHANGHAI, T_MINUS5)


def test_money_is_exact_to_the_cent(engine, stored):
    with Session(engine) as session:
        product = session.exec(select(Product)).one()
        selection = session.exec(select(Selection)).one()
        payment = session.exec(select(Payment)).one()
        total = session.execute(sa_select(func.sum(PurchaseOrder.amount))).scalar_one()
    assert product.winning_price == Decimal("12.34") and str(product.winning_price) == "12.34"
    assert str(selection.online_price) == "0.10"
    assert str(payment.amount) == "999999999999.99"
    assert Decimal(str(total)) == Decimal("1234.00")


def test_enums_come_back_as_members_and_are_stored_as_plain_text(engine, stored):
    with Session(engine) as session:
        application = session.exec(select(Application)).one()
        user = session.exec(select(User)).one()
    assert application.state is ApplicationState.RUNNING
    assert user.role is Role.DISTRICT_REVIEWER
    with engine.connect() as conn:
        assert conn.execute(text("select state from application")).scalar_one() == "running"
        assert conn.execute(text("select kind from institution order by id")).scalars().all() == [
            "township_health_center", "village_clinic"]


def test_json_keeps_chinese_text_and_structure(engine, stored):
    with Session(engine) as session:
        program = session.exec(select(Program)).one()
        report = session.exec(select(QuarterlyReport)).one()
        audit = session.exec(select(AuditEvent)).one()
    assert program.definition == DEFINITION
    assert program.definition["districts"] == ["和平区", "沈河区"]
    assert report.figures["定点药店"]["参加集采药品医药机构数量"] == {"新增": 3, "累计": 10}
    assert audit.data["区县"] == "和平区"
    assert (audit.entity, audit.from_state, audit.to_state, audit.role) == (
        "application", "submitted", "district_approved", Role.DISTRICT_REVIEWER)


def test_a_naive_instant_is_refused_on_insert_and_nothing_is_written(engine):
    notice = Notice(idempotency_key="naive", kind="reminder", recipient_type="user", recipient_name="manager",
                    created_at=datetime(2025, 9, 22, 10, 30))
    with Session(engine) as session:
        session.add(notice)
        with pytest.raises(StatementError) as info:
            session.commit()
        assert isinstance(info.value.orig, ValueError)
        assert "naive datetime" in str(info.value.orig)
        session.rollback()
    with Session(engine) as session:
        assert session.execute(sa_select(func.count()).select_from(Notice)).scalar_one() == 0


def test_a_naive_instant_is_refused_on_update_and_the_stored_value_stays(engine, stored):
    with Session(engine) as session:
        batch = session.exec(select(Batch)).one()
        batch.declared_at = datetime(2025, 9, 22, 10, 30)
        with pytest.raises(StatementError):
            session.commit()
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(Batch)).one().declared_at == T_SHANGHAI
