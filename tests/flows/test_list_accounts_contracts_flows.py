"""The list-collection, accounts, contracts and continuous-review flows under Prefect's harness."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from core.clock_store import DatabaseClock
from flows.accounts import accounts_flow
from flows.continuous_review import continuous_review_flow
from flows.contracts import contracts_flow
from flows.drug_list import drug_list_flow
from models.catalog import ListVersion
from models.enrollment import Gate
from models.operations import Contract, PlatformAccount, Selection
from models.states import AccountState, GateKind, GateState, InstitutionKind, ListKind
from tasks.gates.deciding import decide_gate
from tasks.intake.declaration_import import DECLARATION_COLUMNS, import_declaration
from tests.factories import (
    make_enterprise,
    make_institution,
    make_product,
    make_program,
    make_reviewers,
    make_running_application,
    publish_drug_list,
    shanghai,
    table_counts,
)
from tests.factories_files import product_row, write_xlsx

pytestmark = pytest.mark.prefect
SLUG = "shenyang-2025"



def _open(engine: Engine, kind: GateKind) -> list[Gate]:
    with Session(engine) as session:
        return list(session.execute(select(Gate).where(Gate.kind == kind, Gate.state == GateState.OPEN)).scalars())


def test_drug_list_flow_reviews_each_declaration_then_publishes_the_approved_list_once(
        engine: Engine, database_url: str, prefect_api: str, tmp_path: Path) -> None:
    make_program(engine, SLUG)
    make_reviewers(engine, [])
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 20, 10))
    for n, name in ((1, "甲制药有限公司"), (2, "乙制药有限公司")):
        rows = [product_row(10 * n + k, 生产企业=name, 投标企业=name) for k in range(3)]
        path = write_xlsx(tmp_path / f"{name}.xlsx", (*DECLARATION_COLUMNS, "类别", "特药"), rows)
        import_declaration(engine, SLUG, path, name, clock=clock)
    asyncio.run(drug_list_flow(SLUG))
    first, second = _open(engine, GateKind.DECLARATION_REVIEW)
    decide_gate(engine, first.id, approve=first.items, user_name="manager", clock=clock)
    decide_gate(engine, second.id, reject=second.items, reason="承诺函未盖章", user_name="manager", clock=clock)
    assert _open(engine, GateKind.LIST_APPROVAL) == []  # the window is still open: no list yet
    clock.set(shanghai(2025, 9, 16, 9))
    asyncio.run(drug_list_flow(SLUG))
    (approval,) = _open(engine, GateKind.LIST_APPROVAL)
    decide_gate(engine, approval.id, approve=approval.items, user_name="manager", clock=clock)
    before = table_counts(engine)
    asyncio.run(drug_list_flow(SLUG))
    assert table_counts(engine) == before
    with Session(engine) as session:
        (version,) = session.execute(select(ListVersion).where(ListVersion.kind == ListKind.DRUGS)).scalars()
    assert version.entry_count == 3 and version.number == 1


def test_accounts_and_contracts_flows_exempt_proxy_clinics_and_change_nothing_when_rerun(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    program = make_program(engine, SLUG)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 10, 8, 9))
    enterprise = make_enterprise(engine)
    products = [make_product(engine, enterprise) for _ in range(2)]
    publish_drug_list(engine, program, products, clock=clock)  # type: ignore[arg-type]
    parent = make_institution(engine, kind=InstitutionKind.TOWNSHIP_HEALTH_CENTER)
    clinic = make_institution(engine, kind=InstitutionKind.VILLAGE_CLINIC, proxy_parent_id=parent.id)
    for inst in (parent, clinic):
        make_running_application(engine, program, inst, running_at=shanghai(2025, 9, 30, 9))
    with Session(engine) as session:
        for inst in (parent, clinic):
            session.add(Selection(program_id=program.id or 0, institution_id=inst.id or 0,
                                  product_id=products[0].id or 0, annual_volume=100))
        session.commit()
    asyncio.run(accounts_flow(SLUG))
    asyncio.run(contracts_flow(SLUG))
    before = table_counts(engine)
    asyncio.run(accounts_flow(SLUG))
    asyncio.run(contracts_flow(SLUG))
    assert table_counts(engine) == before
    with Session(engine) as session:
        accounts = {a.institution_id: a.state for a in session.execute(select(PlatformAccount)).scalars()}
        contracts = session.execute(select(Contract.institution_id)).scalars().all()
    assert accounts == {parent.id: AccountState.PENDING, clinic.id: AccountState.EXEMPT}
    assert contracts == [parent.id]  # the upper institution buys for the village clinic


def test_continuous_review_flow_keeps_forming_batches_after_enrollment_closed(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    from tests.factories import make_applications

    program = make_program(engine, SLUG)
    reviewers = make_reviewers(engine, ["沈河区"])
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 12, 3, 9))
    insts = [make_institution(engine, district="沈河区") for _ in range(2)]
    make_applications(engine, program, insts, submitted_at=clock.now())
    asyncio.run(continuous_review_flow(SLUG))
    clock.set(shanghai(2025, 12, 17, 9))  # past the batch's 14-day cut-off
    asyncio.run(continuous_review_flow(SLUG))
    (district,) = _open(engine, GateKind.DISTRICT_REVIEW)
    decide_gate(engine, district.id, approve=district.items, user_name=reviewers["沈河区"], clock=clock)
    asyncio.run(continuous_review_flow(SLUG))
    (city,) = _open(engine, GateKind.CITY_REVIEW)
    decide_gate(engine, city.id, approve=city.items, user_name="manager", clock=clock)
    result = asyncio.run(continuous_review_flow(SLUG))
    assert result["republished_institution_list"] is None  # the batch run already published it
    assert set(result["compliance"]["by_rule"]) >= {"late_delivery", "late_payment", "sale_price", "too_few_drugs"}
    before = table_counts(engine)
    asyncio.run(continuous_review_flow(SLUG))
    assert table_counts(engine) == before
    with Session(engine) as session:
        version = session.execute(select(ListVersion).where(ListVersion.kind == ListKind.INSTITUTIONS)).scalar_one()
    assert version.entry_count == 2


def test_a_list_gate_for_content_that_changed_is_cancelled_and_a_new_one_opens(
        engine: Engine, database_url: str, prefect_api: str, tmp_path: Path) -> None:
    make_program(engine, SLUG)
    make_reviewers(engine, [])
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 8, 20, 10))
    paths = {}
    for n, name in ((1, "甲制药有限公司"), (2, "乙制药有限公司")):
        rows = [product_row(10 * n + k, 生产企业=name, 投标企业=name) for k in range(2)]
        paths[name] = write_xlsx(tmp_path / f"{name}.xlsx", (*DECLARATION_COLUMNS, "类别", "特药"), rows)
    import_declaration(engine, SLUG, paths["甲制药有限公司"], "甲制药有限公司", clock=clock)
    asyncio.run(drug_list_flow(SLUG))
    (first,) = _open(engine, GateKind.DECLARATION_REVIEW)
    decide_gate(engine, first.id, approve=first.items, user_name="manager", clock=clock)
    import_declaration(engine, SLUG, paths["乙制药有限公司"], "乙制药有限公司", clock=clock)
    clock.set(shanghai(2025, 9, 16, 9))
    asyncio.run(drug_list_flow(SLUG))
    (old_list,) = _open(engine, GateKind.LIST_APPROVAL)  # only 甲's products so far
    (second,) = _open(engine, GateKind.DECLARATION_REVIEW)
    decide_gate(engine, second.id, approve=second.items, user_name="manager", clock=clock)
    asyncio.run(drug_list_flow(SLUG))
    (new_list,) = _open(engine, GateKind.LIST_APPROVAL)
    assert new_list.id != old_list.id
    with Session(engine) as session:
        assert session.get(Gate, old_list.id).state == GateState.CANCELLED  # type: ignore[union-attr]


def test_continuous_review_gives_contracts_to_a_batch_that_runs_after_the_signing_window(
        engine: Engine, database_url: str, prefect_api: str) -> None:
    program = make_program(engine, SLUG)
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 12, 15, 9))  # Shenyang's contracts window closed on 2025-11-30
    enterprise = make_enterprise(engine)
    product = make_product(engine, enterprise)
    publish_drug_list(engine, program, [product], clock=clock)  # type: ignore[arg-type]
    pharmacy = make_institution(engine)
    make_running_application(engine, program, pharmacy, running_at=shanghai(2025, 12, 12, 9))
    with Session(engine) as session:
        session.add(Selection(program_id=program.id or 0, institution_id=pharmacy.id or 0,
                              product_id=product.id or 0, annual_volume=40))
        session.commit()
    result = asyncio.run(continuous_review_flow(SLUG))
    assert result["contracts"]["created"] == 1 and result["accounts"] is not None
    with Session(engine) as session:
        (contract,) = session.execute(select(Contract)).scalars().all()
        account = session.execute(select(PlatformAccount)).scalar_one()
    assert (contract.institution_id, contract.year, contract.agreed_volumes) == (pharmacy.id, 2025, {product.drug_code: 40})
    assert account.institution_id == pharmacy.id
    before = table_counts(engine)
    asyncio.run(continuous_review_flow(SLUG))
    assert table_counts(engine) == before


def test_continuous_review_issues_last_quarters_statistics_once_in_the_quarters_first_month(
        engine: Engine, database_url: str, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings
    from models.reports import ReportVersion

    monkeypatch.setenv("SANJIN_HOME", str(tmp_path))
    get_settings.cache_clear()
    make_program(engine, SLUG)
    make_reviewers(engine, [])
    clock = DatabaseClock(engine)
    clock.set(shanghai(2025, 12, 31, 9))
    assert asyncio.run(continuous_review_flow(SLUG))["quarterly_report"] is None  # Q4's last month: not yet
    clock.set(shanghai(2026, 1, 5, 9))
    result = asyncio.run(continuous_review_flow(SLUG))
    assert result["quarterly_report"] == {"period": "2025Q4", "version": 1, "notices": 1}  # to the manager
    before = table_counts(engine)
    assert asyncio.run(continuous_review_flow(SLUG))["quarterly_report"] is None  # once per quarter
    assert table_counts(engine) == before
    with Session(engine) as session:
        assert session.execute(select(ReportVersion.period)).scalars().all() == ["2025Q4"]  # type: ignore[call-overload]
    assert (tmp_path / "out" / "reports" / "shenyang-2025-2025Q4-quarterly-v1.xlsx").exists()
    get_settings.cache_clear()
