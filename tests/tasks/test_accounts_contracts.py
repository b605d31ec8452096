"""Accounts and contracts as policy: 代采 clinics are exempt, contracts are annual per enterprise, imports are all-or-nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from models.audit import AuditEvent
from models.catalog import Enterprise, Product
from models.clock import FixedClock
from models.enrollment import Institution
from models.operations import Contract, PlatformAccount, Selection
from models.program import Program
from models.states import AccountState, ContractState, InstitutionKind
from tasks.calendar import working_days_for
from tasks.intake.spreadsheets import ImportRejected
from tasks.platform.accounts import ACCOUNT_COLUMNS, import_platform_accounts, reconcile_accounts, register_account
from tasks.platform.contracts import CONTRACT_COLUMNS, import_platform_contracts, reconcile_contracts, sign_contract
from tasks.platform.files import RecordRejected
from tasks.platform.laggards import laggards
from tasks.platform.selections import SELECTION_COLUMNS, SelectionRow, import_selections, record_selections
from tasks.programs import get_program
from tests.factories import (
    clock_at,
    make_enterprise,
    make_institution,
    make_order,
    make_product,
    make_program,
    make_running_application,
    publish_drug_list,
    shanghai,
)
from tests.factories_files import write_csv, write_xlsx

SLUG = "shenyang-2025"
RAN = shanghai(2025, 9, 30, 18)  # the first batch was published on the last day of enrollment


@dataclass
class World:
    program: Program
    parent: Institution  # 乡镇卫生院, special-drug designated, buys for the clinic
    clinic: Institution  # 村卫生室, proxy-procured (代采)
    pharmacy: Institution
    idle: Institution  # applied elsewhere, not running in this program
    ent_a: Enterprise
    ent_b: Enterprise
    a1: Product
    a2: Product
    b1: Product
    special: Product


@pytest.fixture
def world(engine: Engine) -> World:
    program = make_program(engine, SLUG)
    parent = make_institution(engine, kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER, name="和平乡卫生院", special=True)
    clinic = make_institution(engine, kind=InstitutionKind.VILLAGE_CLINIC, name="和平村卫生室",
                              proxy_parent_id=parent.id, email=None)
    pharmacy = make_institution(engine, district="沈河区", name="沈河大药房")
    idle = make_institution(engine, name="未参加药店")
    for inst in (parent, clinic, pharmacy):
        make_running_application(engine, program, inst, running_at=RAN)
    ent_a, ent_b = make_enterprise(engine, "甲制药有限公司"), make_enterprise(engine, "乙制药有限公司")
    a1, a2, b1 = make_product(engine, ent_a), make_product(engine, ent_a), make_product(engine, ent_b)
    special = make_product(engine, ent_b, special=True, name="特药注射液")
    publish_drug_list(engine, program, [a1, a2, b1, special], clock=clock_at(2025, 9, 15, 12))
    return World(program, parent, clinic, pharmacy, idle, ent_a, ent_b, a1, a2, b1, special)


def _audit_count(engine: Engine, entity: str | None = None) -> int:
    query = select(func.count()).select_from(AuditEvent)
    if entity is not None:
        query = query.where(AuditEvent.entity == entity)  # type: ignore[arg-type]
    with Session(engine) as session:
        return int(session.execute(query).scalar_one())


def _accounts(engine: Engine) -> dict[int, PlatformAccount]:
    with Session(engine) as session:
        return {a.institution_id: a for a in session.execute(select(PlatformAccount)).scalars()}


def _contracts(engine: Engine) -> dict[tuple[int, int, int], Contract]:
    with Session(engine) as session:
        return {(c.institution_id, c.enterprise_id, c.year): c for c in session.execute(select(Contract)).scalars()}


def _select(engine: Engine, w: World, clock: FixedClock, rows: list[tuple[Institution, Product, int]]) -> None:
    record_selections(engine, SLUG, [SelectionRow(i.insurance_code, p.drug_code, Decimal("12.50"), v)
                                     for i, p, v in rows], clock=clock)


def _standard_selections(engine: Engine, w: World, clock: FixedClock) -> None:
    _select(engine, w, clock, [(w.clinic, w.a1, 100), (w.parent, w.a1, 50), (w.parent, w.b1, 10),
                               (w.pharmacy, w.a2, 30)])


# --------------------------------------------------------------------------- accounts


def test_proxy_procured_clinic_is_exempt_and_never_gets_an_account_a_contract_or_a_reminder(
        engine: Engine, world: World, tmp_path: Path) -> None:
    w = world
    clock = clock_at(2025, 10, 9, 10)
    report = reconcile_accounts(engine, SLUG, clock=clock)
    assert report.created == 3
    assert report.counts == {AccountState.PENDING: 2, AccountState.REGISTERED: 0, AccountState.EXEMPT: 1}
    with Session(engine) as session:
        created = session.execute(select(AuditEvent).where(AuditEvent.entity == "platform_account")  # type: ignore[arg-type]
                                  ).scalars().all()
    assert sorted((e.action, e.to_state, e.data["institution_id"]) for e in created) == sorted(
        [("create", "pending", w.parent.id), ("create", "exempt", w.clinic.id), ("create", "pending", w.pharmacy.id)])
    clinic_account = _accounts(engine)[w.clinic.id or 0]
    assert clinic_account.state == AccountState.EXEMPT and clinic_account.due_on is None

    _standard_selections(engine, w, clock)
    contracts = reconcile_contracts(engine, SLUG, clock=clock)
    rows = _contracts(engine)
    # The clinic's 100 boxes are bought by its upper institution (000 §三(四)): no contract of its own.
    assert set(rows) == {(w.parent.id, w.ent_a.id, 2025), (w.parent.id, w.ent_b.id, 2025),
                         (w.pharmacy.id, w.ent_a.id, 2025)}
    assert rows[(w.parent.id or 0, w.ent_a.id or 0, 2025)].agreed_volumes == {w.a1.drug_code: 150}
    assert contracts.created == 3 and contracts.proxy_selections_without_buyer == []

    # A platform export listing the clinic is a warning; the clinic stays exempt.
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, [
        {"机构医保编码": w.clinic.insurance_code, "平台账号": "LN-CLINIC", "注册日期": "2025-10-08"}])
    result = import_platform_accounts(engine, SLUG, path, clock=clock, actor="manager")
    assert result.changed == 0 and [x.rule for x in result.warnings] == ["account.exempt"]
    assert _accounts(engine)[w.clinic.id or 0].state == AccountState.EXEMPT

    late = laggards(engine, SLUG, clock=clock_at(2025, 12, 10, 9))
    assert {g.institution_id for g in late} == {w.parent.id, w.pharmacy.id}
    assert {g.what for g in late} == {"account", "contract"}
    assert all(g.institution_id != w.clinic.id for g in late)
    [parent_contracts] = [g for g in late if g.what == "contract" and g.institution_id == w.parent.id]
    assert parent_contracts.enterprises == tuple(sorted([w.ent_a.name, w.ent_b.name]))  # one reminder, both named


def test_a_proxy_clinic_whose_upper_institution_is_not_running_is_reported_not_contracted(
        engine: Engine, world: World) -> None:
    w = world
    upper = make_institution(engine, kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER, name="未参加卫生院")
    orphan = make_institution(engine, kind=InstitutionKind.VILLAGE_CLINIC, proxy_parent_id=upper.id, name="孤村卫生室")
    make_running_application(engine, w.program, orphan, running_at=RAN)
    clock = clock_at(2025, 10, 9, 10)
    _select(engine, w, clock, [(orphan, w.a1, 7)])
    report = reconcile_contracts(engine, SLUG, clock=clock)
    assert report.proxy_selections_without_buyer == [orphan.id]
    assert report.created == 0 and _contracts(engine) == {}


def test_reconciling_accounts_again_changes_nothing(engine: Engine, world: World) -> None:
    clock = clock_at(2025, 10, 9, 10)
    first = reconcile_accounts(engine, SLUG, clock=clock)
    audit = _audit_count(engine)
    before = {k: (a.state, a.due_on) for k, a in _accounts(engine).items()}
    second = reconcile_accounts(engine, SLUG, clock=clock)
    assert first.created == 3 and second.created == 0
    assert _audit_count(engine) == audit
    assert {k: (a.state, a.due_on) for k, a in _accounts(engine).items()} == before
    assert _accounts(engine)[world.pharmacy.id or 0].due_on == date(2025, 11, 30)  # the window's close


def test_an_institution_running_after_the_accounts_window_gets_20_working_days(engine: Engine, world: World) -> None:
    late = make_institution(engine, name="后批药店")
    make_running_application(engine, world.program, late, running_at=shanghai(2025, 12, 3, 10))
    reconcile_accounts(engine, SLUG, clock=clock_at(2025, 12, 4, 9))
    assert _accounts(engine)[late.id or 0].due_on == date(2025, 12, 31)  # 2025-12-03 + 20 working days


def test_a_good_account_file_registers_and_importing_it_again_changes_nothing(
        engine: Engine, world: World, tmp_path: Path) -> None:
    w = world
    clock = clock_at(2025, 10, 20, 10)
    reconcile_accounts(engine, SLUG, clock=clock)
    rows = [{"机构医保编码": w.parent.insurance_code, "平台账号": "LN210102001", "注册日期": "2025-10-15"},
            {"机构医保编码": w.pharmacy.insurance_code, "平台账号": "LN210103002", "注册日期": "2025/10/16",
             "机构名称": "沈河大药房"}]
    path = write_xlsx(tmp_path / "accounts.xlsx", (*ACCOUNT_COLUMNS, "机构名称"), rows)
    result = import_platform_accounts(engine, SLUG, path, clock=clock, actor="manager")
    assert (result.rows, result.changed, result.warnings) == (2, 2, [])
    accounts = _accounts(engine)
    assert accounts[w.pharmacy.id or 0].state == AccountState.REGISTERED
    assert accounts[w.pharmacy.id or 0].account_no == "LN210103002"
    assert accounts[w.pharmacy.id or 0].registered_on == date(2025, 10, 16)
    with Session(engine) as session:
        moves = session.execute(select(AuditEvent).where(AuditEvent.action == "register")  # type: ignore[arg-type]
                                   ).scalars().all()
    assert sorted((m.from_state, m.to_state, m.actor) for m in moves) == [("pending", "registered", "manager")] * 2

    audit = _audit_count(engine)
    again = import_platform_accounts(engine, SLUG, path, clock=clock, actor="manager")
    assert again.already_imported and again.changed == 0
    resaved = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, rows)  # same content, other bytes
    third = import_platform_accounts(engine, SLUG, resaved, clock=clock, actor="manager")
    assert (third.changed, third.unchanged) == (0, 2)
    assert _audit_count(engine) == audit
    report = reconcile_accounts(engine, SLUG, clock=clock)
    assert report.counts[AccountState.REGISTERED] == 2 and report.laggards == []


def test_a_bad_account_file_is_refused_whole_with_every_bad_row_reported(
        engine: Engine, world: World, tmp_path: Path) -> None:
    w = world
    clock = clock_at(2025, 10, 20, 10)
    reconcile_accounts(engine, SLUG, clock=clock)
    audit = _audit_count(engine)
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, [
        {"机构医保编码": w.parent.insurance_code, "平台账号": "LN-1", "注册日期": "2025-10-15"},  # row 2: good
        {"机构医保编码": "H21010299999", "平台账号": "LN-2", "注册日期": "2025-10-15"},  # 3: unknown code
        {"机构医保编码": w.idle.insurance_code, "平台账号": "LN-3", "注册日期": "2025-10-15"},  # 4: not running
        {"机构医保编码": w.pharmacy.insurance_code, "平台账号": "LN-4", "注册日期": "15/10/2025"},  # 5: bad date
        {"机构医保编码": w.pharmacy.insurance_code, "平台账号": "", "注册日期": "2025-10-15"},  # 6: no account
        {"机构医保编码": "X123", "平台账号": "LN-6", "注册日期": "2025-10-15"},  # 7: malformed code
        {"机构医保编码": w.pharmacy.insurance_code, "平台账号": "LN-7", "注册日期": "2025-10-21"},  # 8: future
    ], encoding="gb18030")
    with pytest.raises(ImportRejected) as caught:
        import_platform_accounts(engine, SLUG, path, clock=clock, actor="manager")
    errors = {(e.row, e.rule) for e in caught.value.errors}
    assert errors == {(3, "institution.unknown"), (4, "institution.not_running"), (5, "date.invalid"),
                      (6, "text.empty"), (7, "institution_code.format"), (8, "date.future")}
    assert all(" / " in e.message for e in caught.value.errors)  # Chinese, then English
    assert _accounts(engine)[w.parent.id or 0].state == AccountState.PENDING  # the good row was not applied
    assert _audit_count(engine) == audit


def test_one_platform_account_cannot_belong_to_two_institutions(engine: Engine, world: World, tmp_path: Path) -> None:
    clock = clock_at(2025, 10, 20, 10)
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, [
        {"机构医保编码": world.parent.insurance_code, "平台账号": "LN-SAME", "注册日期": "2025-10-15"},
        {"机构医保编码": world.pharmacy.insurance_code, "平台账号": "LN-SAME", "注册日期": "2025-10-15"}])
    with pytest.raises(ImportRejected) as caught:
        import_platform_accounts(engine, SLUG, path, clock=clock)
    assert [(e.row, e.rule) for e in caught.value.errors] == [(3, "account.taken")]


def test_an_account_file_without_its_documented_columns_is_refused(engine: Engine, world: World, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "accounts.csv", ("机构医保编码", "账号"), [[world.parent.insurance_code, "LN-1"]])
    with pytest.raises(ImportRejected) as caught:
        import_platform_accounts(engine, SLUG, path, clock=clock_at(2025, 10, 20, 10))
    assert [e.rule for e in caught.value.errors] == ["header.mismatch"]
    assert "平台账号" in caught.value.errors[0].message and "注册日期" in caught.value.errors[0].message


def test_register_account_from_the_cli(engine: Engine, world: World) -> None:
    clock = clock_at(2025, 10, 20, 10)
    code = world.pharmacy.insurance_code
    assert register_account(engine, SLUG, code, "LN-9", date(2025, 10, 18), clock=clock, actor="manager").changed == 1
    again = register_account(engine, SLUG, code, "LN-9", date(2025, 10, 18), clock=clock, actor="manager")
    assert (again.changed, again.unchanged) == (0, 1)
    other = register_account(engine, SLUG, code, "LN-10", date(2025, 10, 19), clock=clock, actor="manager")
    assert [x.rule for x in other.warnings] == ["account.already_registered"]
    with pytest.raises(RecordRejected, match="系统中没有"):
        register_account(engine, SLUG, "H21010299999", "LN-11", date(2025, 10, 18), clock=clock)
    with pytest.raises(RecordRejected, match="不能为空"):
        register_account(engine, SLUG, world.parent.insurance_code, " ", date(2025, 10, 18), clock=clock)
    with pytest.raises(RecordRejected, match="没有2025年度的购销协议"):
        sign_contract(engine, SLUG, world.pharmacy.insurance_code, world.ent_b.name, 2025, date(2025, 10, 18),
                      clock=clock)


# --------------------------------------------------------------------------- contracts


def test_contracts_are_one_per_enterprise_and_reconciling_again_changes_nothing(engine: Engine, world: World) -> None:
    w = world
    clock = clock_at(2025, 10, 9, 10)
    _standard_selections(engine, w, clock)
    first = reconcile_contracts(engine, SLUG, clock=clock)
    assert (first.year, first.due_on, first.created) == (2025, date(2025, 11, 30), 3)
    assert first.counts == {ContractState.PENDING: 3, ContractState.SIGNED: 0, ContractState.TERMINATED: 0}
    assert _audit_count(engine, "contract") == 3
    before = {k: (c.state, c.agreed_volumes, c.due_on) for k, c in _contracts(engine).items()}

    second = reconcile_contracts(engine, SLUG, clock=clock)
    assert (second.created, second.volumes_updated) == (0, 0)
    assert {k: (c.state, c.agreed_volumes, c.due_on) for k, c in _contracts(engine).items()} == before
    assert _audit_count(engine, "contract") == 3

    # An unsigned contract follows the selections; a signed one never changes.
    sign_contract(engine, SLUG, w.parent.insurance_code, w.ent_b.name, 2025, date(2025, 10, 9), clock=clock)
    _select(engine, w, clock, [(w.pharmacy, w.a2, 45), (w.pharmacy, w.a1, 5), (w.parent, w.b1, 99)])
    third = reconcile_contracts(engine, SLUG, clock=clock)
    rows = _contracts(engine)
    assert third.volumes_updated == 1
    assert rows[(w.pharmacy.id or 0, w.ent_a.id or 0, 2025)].agreed_volumes == {w.a1.drug_code: 5, w.a2.drug_code: 45}
    assert rows[(w.parent.id or 0, w.ent_b.id or 0, 2025)].agreed_volumes == {w.b1.drug_code: 10}


def test_in_continuous_review_contracts_are_for_the_current_year_and_keep_last_years_volume(
        engine: Engine, world: World) -> None:
    w = world
    autumn = clock_at(2025, 10, 9, 10)
    _standard_selections(engine, w, autumn)
    reconcile_contracts(engine, SLUG, clock=autumn)
    sign_contract(engine, SLUG, w.parent.insurance_code, w.ent_a.name, 2025, date(2025, 10, 9), clock=autumn)

    january = clock_at(2026, 1, 5, 9)
    _select(engine, w, january, [(w.parent, w.a1, 20)])  # fewer boxes this year
    report = reconcile_contracts(engine, SLUG, clock=january)
    with Session(engine) as session:
        _, defn = get_program(session, SLUG)
        due = working_days_for(session, defn).add_working_days(date(2026, 1, 5), 20)
    assert report.year == 2026 and report.created == 3
    assert report.due_on == due and not report.due_provisional
    # Seed 003: next year's agreed volume is not below the previous year's (50 + the clinic's 100 = 150).
    assert _contracts(engine)[(w.parent.id or 0, w.ent_a.id or 0, 2026)].agreed_volumes == {w.a1.drug_code: 150}


def test_a_contract_file_signs_pending_contracts_and_refuses_bad_rows(
        engine: Engine, world: World, tmp_path: Path) -> None:
    w = world
    clock = clock_at(2025, 10, 20, 10)
    _standard_selections(engine, w, clock)
    reconcile_contracts(engine, SLUG, clock=clock)
    good: dict[str, object] = {"机构医保编码": w.parent.insurance_code, "企业名称": w.ent_a.name, "年度": 2025,
                               "签订日期": "2025-10-18"}
    clinic: dict[str, object] = {"机构医保编码": w.clinic.insurance_code, "企业名称": w.ent_a.name, "年度": 2025, "签订日期": "2025-10-18"}
    bad: list[dict[str, object]] = [
        {"机构医保编码": w.parent.insurance_code, "企业名称": "不存在制药", "年度": 2025, "签订日期": "2025-10-18"},
        {"机构医保编码": w.pharmacy.insurance_code, "企业名称": w.ent_b.name, "年度": 2025, "签订日期": "2025-10-18"},
        {"机构医保编码": w.pharmacy.insurance_code, "企业名称": w.ent_a.name, "年度": "明年", "签订日期": "2025-10-18"},
    ]
    with pytest.raises(ImportRejected) as caught:
        import_platform_contracts(engine, SLUG, write_xlsx(tmp_path / "bad.xlsx", CONTRACT_COLUMNS, [good, *bad]),
                                  clock=clock, actor="manager")
    assert {(e.row, e.rule) for e in caught.value.errors} == {
        (3, "enterprise.unknown"), (4, "contract.unknown"), (5, "year.invalid")}
    assert all(c.state == ContractState.PENDING for c in _contracts(engine).values())

    path = write_xlsx(tmp_path / "good.xlsx", CONTRACT_COLUMNS, [good, clinic])
    result = import_platform_contracts(engine, SLUG, path, clock=clock, actor="manager")
    assert result.changed == 1 and [x.rule for x in result.warnings] == ["contract.proxy"]
    signed = _contracts(engine)[(w.parent.id or 0, w.ent_a.id or 0, 2025)]
    assert (signed.state, signed.signed_on) == (ContractState.SIGNED, date(2025, 10, 18))
    audit = _audit_count(engine, "contract")
    resaved = write_csv(tmp_path / "good.csv", CONTRACT_COLUMNS, [good, clinic])
    assert import_platform_contracts(engine, SLUG, resaved, clock=clock, actor="manager").changed == 0
    assert _audit_count(engine, "contract") == audit


# --------------------------------------------------------------------------- laggards


def test_laggards_are_sorted_by_working_days_late_and_exempt_ones_never_appear(engine: Engine, world: World) -> None:
    w = world
    others = [make_institution(engine, name=f"药店{i}") for i in range(3)]
    for inst in others:
        make_running_application(engine, w.program, inst, running_at=RAN)
    reconcile_accounts(engine, SLUG, clock=clock_at(2025, 10, 9, 10))
    due = {w.parent.id: date(2025, 9, 30), w.pharmacy.id: date(2025, 9, 26), others[0].id: date(2025, 10, 14),
           others[1].id: date(2025, 11, 30), others[2].id: date(2025, 9, 26)}
    with Session(engine) as session:
        for inst_id, day in due.items():
            session.execute(update(PlatformAccount).where(PlatformAccount.institution_id == inst_id)  # type: ignore[arg-type]
                            .values(due_on=day))
        session.execute(update(PlatformAccount).where(PlatformAccount.institution_id == others[2].id)  # type: ignore[arg-type]
                        .values(state=AccountState.REGISTERED, account_no="LN-X"))
        session.commit()

    # 2025-10-09: National Day ran 10-01..10-08 and Sunday 09-28 was a make-up working day.
    result = laggards(engine, SLUG, clock=clock_at(2025, 10, 9, 10))
    assert [(g.institution_id, g.days_late, g.overdue, g.working_days_left) for g in result] == [
        (w.pharmacy.id, 4, True, 0),  # 09-28 (调休), 09-29, 09-30, 10-09
        (w.parent.id, 1, True, 0),  # only 10-09: the holiday does not count
        (others[0].id, 0, False, 4),  # 10-10, 10-11 (调休 Saturday), 10-13, 10-14: within the 5-day reminder
    ]
    assert all(g.what == "account" for g in result)
    assert result[0].email == w.pharmacy.email and result[0].district == "沈河区"


def test_a_deadline_on_the_weekend_just_past_is_overdue_with_zero_working_days(engine: Engine, world: World) -> None:
    reconcile_accounts(engine, SLUG, clock=clock_at(2025, 10, 9, 10))
    with Session(engine) as session:
        session.execute(update(PlatformAccount).where(PlatformAccount.institution_id == world.pharmacy.id)  # type: ignore[arg-type]
                        .values(due_on=date(2025, 11, 29)))  # a Saturday
        session.commit()
    [late] = [g for g in laggards(engine, SLUG, clock=clock_at(2025, 11, 30, 10)) if g.institution_id == world.pharmacy.id]
    assert (late.overdue, late.days_late) == (True, 0)


# --------------------------------------------------------------------------- selections


def test_a_special_drug_is_refused_for_an_institution_without_the_designation(engine: Engine, world: World) -> None:
    w = world
    clock = clock_at(2025, 10, 9, 10)
    with pytest.raises(ImportRejected) as caught:
        record_selections(engine, SLUG, [SelectionRow(w.pharmacy.insurance_code, w.special.drug_code, None, 5, 2)],
                          clock=clock)
    [error] = caught.value.errors
    assert error.rule == "selection.special_needs_designation"
    assert "特药定点" in error.message and "special-drug-designated" in error.message
    _select(engine, w, clock, [(w.parent, w.special, 5)])  # the parent holds the designation
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Selection)).scalar_one() == 1


def test_a_selections_file_is_all_or_nothing_with_every_bad_row_reported(
        engine: Engine, world: World, tmp_path: Path) -> None:
    w = world
    clock = clock_at(2025, 10, 9, 10)
    unlisted = make_product(engine, w.ent_a)  # declared, but not on the published list
    rows = [
        [w.pharmacy.insurance_code, w.a1.drug_code, "12.50", 100],  # row 2: good
        [w.pharmacy.insurance_code, unlisted.drug_code, "12.50", 10],  # 3: not on the list
        [w.pharmacy.insurance_code, w.special.drug_code, "12.50", 10],  # 4: special drug, no designation
        [w.idle.insurance_code, w.a1.drug_code, "12.50", 10],  # 5: not running
        [w.pharmacy.insurance_code, w.a2.drug_code, "abc", -1],  # 6: bad price and volume
        [w.pharmacy.insurance_code, w.a1.drug_code, "12.00", 1],  # 7: same drug as row 2
    ]
    path = write_xlsx(tmp_path / "selections.xlsx", SELECTION_COLUMNS, rows)
    with pytest.raises(ImportRejected) as caught:
        import_selections(engine, SLUG, path, clock=clock)
    found = {(e.row, e.column, e.rule) for e in caught.value.errors}
    assert {(r, rule) for r, _, rule in found} >= {
        (3, "selection.not_on_list"), (4, "selection.special_needs_designation"), (5, "institution.not_running"),
        (7, "selection.duplicate")}
    assert {c for r, c, _ in found if r == 6} == {"销售价格(元)", "年采购量"}
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Selection)).scalar_one() == 0

    ok = import_selections(engine, SLUG, write_xlsx(tmp_path / "ok.xlsx", SELECTION_COLUMNS, rows[:1]), clock=clock)
    assert (ok.created, ok.updated) == (1, 0)
    again = import_selections(engine, SLUG, write_xlsx(tmp_path / "ok2.xlsx", SELECTION_COLUMNS, rows[:1]), clock=clock)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


# --------------------------------------------------------------------------- seed 003's agreed volume


def test_two_winners_and_a_base_of_1000_agree_600_the_first_year_and_at_least_600_the_next(
        engine: Engine, world: World) -> None:
    w = world
    with Session(engine) as session:
        product = session.get(Product, w.a2.id)
        assert product is not None
        product.winner_count = 2
        session.add(product)
        session.commit()
    autumn = clock_at(2025, 10, 9, 10)
    _select(engine, w, autumn, [(w.pharmacy, w.a2, 30)])
    for month in (3, 6, 9, 12):  # last year's purchases, the base: 4 × 250 = 1,000
        make_order(engine, w.program, w.pharmacy, w.a2, ordered_at=shanghai(2025, month, 10, 9), quantity=250)
    make_order(engine, w.program, w.pharmacy, w.a2, ordered_at=shanghai(2026, 1, 2, 9), quantity=999)  # this year's
    reconcile_contracts(engine, SLUG, clock=clock_at(2026, 1, 5, 9))
    key = (w.pharmacy.id or 0, w.ent_a.id or 0)
    assert _contracts(engine)[(*key, 2026)].agreed_volumes == {w.a2.drug_code: 600}  # 1,000 × 60 %
    sign_contract(engine, SLUG, w.pharmacy.insurance_code, w.ent_a.name, 2026, date(2026, 1, 6),
                  clock=clock_at(2026, 1, 6, 9))
    reconcile_contracts(engine, SLUG, clock=clock_at(2027, 1, 4, 9))  # 2026 bought 999: 599 < 600
    assert _contracts(engine)[(*key, 2027)].agreed_volumes == {w.a2.drug_code: 600}


def test_without_a_winner_count_the_agreed_volume_is_the_institutions_selection(engine: Engine, world: World) -> None:
    w = world
    _select(engine, w, clock_at(2025, 10, 9, 10), [(w.pharmacy, w.a2, 30)])
    make_order(engine, w.program, w.pharmacy, w.a2, ordered_at=shanghai(2025, 10, 10, 9), quantity=1000)
    reconcile_contracts(engine, SLUG, clock=clock_at(2026, 1, 5, 9))
    assert _contracts(engine)[(w.pharmacy.id or 0, w.ent_a.id or 0, 2026)].agreed_volumes == {w.a2.drug_code: 30}
