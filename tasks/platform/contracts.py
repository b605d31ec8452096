"""Phase 5, annual purchase contracts (购销协议, 每年一签): the rows the rules require, and their signatures.

Contracts are annual, one per institution and enterprise, stating the agreed annual volume of each
selected drug (seed 000 §四(二); seed 003: next year's volume not below the previous year's). A
proxy-procured (代采) clinic never signs one: the drugs it selected count in its upper
institution's contracts (§三(四), §四(二)). No gate: reconcile_contracts creates and refreshes
pending contracts and counts the laggards; the import of the platform's contract export (and
sign_contract, its one-row CLI form) moves them to signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, Text, bindparam, cast, func, select, type_coerce

from core.db import transaction
from models.calendar import due_columns
from models.clock import SHANGHAI, Clock
from models.program_definition import PhaseName
from models.states import ContractState, EnterpriseState, Role
from models.transitions import CONTRACT, AuditRecord
from models.workdays import Deadline, fixed_deadline
from tasks.intake.spreadsheets import RowError, RowWarning
from tasks.platform.context import (
    CON,
    ENT,
    INST,
    ORD,
    PROD,
    SEL,
    SYSTEM,
    Ctx,
    chunks,
    flush_audit,
    insert_audited,
    program_context,
    role_of,
    running_filter,
    running_status,
)
from tasks.platform.files import (
    Applied,
    Cells,
    PlatformImportResult,
    import_platform,
    institutions_by_code,
    not_future,
    one_record,
    parse_code,
    parse_date,
    parse_text,
    parse_year,
    row_error,
    row_warning,
    running_institution,
)
from tasks.platform.laggards import Laggard, contract_laggards, sorted_laggards

__all__ = [
    "CONTRACT_COLUMNS",
    "LATE_CONTRACT_WORKING_DAYS",
    "ContractsReport",
    "import_platform_contracts",
    "reconcile_contracts",
    "sign_contract",
]

# Documented columns of the file; other columns are ignored (platform exports carry more).
CONTRACT_COLUMNS: tuple[str, ...] = ("机构医保编码", "企业名称", "年度", "签订日期")

# A contract created after the contracts window closed (a late batch, a new year in continuous
# review) gets this long to be signed. Assumed: no seed gives one; it matches the late-batch
# account deadline of tasks/phases/enrollment.py and 004's "20 working days".
LATE_CONTRACT_WORKING_DAYS = 20


@dataclass
class ContractsReport:
    """Contracts of one program: the contract year, what was created or refreshed, counts, laggards."""

    year: int
    due_on: date | None  # the deadline given to contracts created today (None: none was created)
    due_provisional: bool  # that deadline counts through a year with no official schedule yet (暂定)
    created: int
    volumes_updated: int
    counts: dict[ContractState, int]  # contracts of `year`
    overdue: int
    due_soon: int
    laggards: list[Laggard]
    # Proxy-procured institutions with selections whose upper institution is not running in the
    # program: nobody can sign for those drugs (the parent must enrol first).
    proxy_selections_without_buyer: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- reconciling


def _contract_year(ctx: Ctx) -> int:
    """The year of contracts created today: the window's year before it opens, else the calendar year (每年一签)."""
    spec = ctx.defn.phase(PhaseName.CONTRACTS)
    if spec is None:
        return ctx.today.year
    return spec.window.opens.year if ctx.today < spec.window.opens else ctx.today.year


def _contract_due(ctx: Ctx) -> Deadline:
    """The due date of contracts created today.

    Inside (or before) the contracts window: its close. After it closed, or in an open-ended window,
    LATE_CONTRACT_WORKING_DAYS after today — a deadline already past at creation would help nobody.
    Computed only when a contract is created: a strict program's unknown year then stops nothing else.
    """
    spec = ctx.defn.phase(PhaseName.CONTRACTS)
    if spec is None:
        return ctx.wdays.deadline(ctx.today, LATE_CONTRACT_WORKING_DAYS)
    window = spec.window
    if window.closes is not None and ctx.today <= window.closes:
        return fixed_deadline(window.closes)
    return ctx.wdays.deadline(max(ctx.today, window.opens), LATE_CONTRACT_WORKING_DAYS)


def _purchase_base(ctx: Ctx, year: int, parents: dict[int, int | None]) -> dict[tuple[int, int], int]:
    """(buyer, product) → quantity ordered in `year - 1`: the base of seed 003's agreed volume.

    One aggregate query; a proxy-procured clinic's orders count for its upper institution.
    """
    start = datetime(year - 1, 1, 1, tzinfo=SHANGHAI)
    end = datetime(year, 1, 1, tzinfo=SHANGHAI)
    base: dict[tuple[int, int], int] = {}
    for inst_id, product_id, quantity in ctx.session.execute(
            select(ORD.c.institution_id, ORD.c.product_id, func.sum(ORD.c.quantity))
            .where(ORD.c.program_id == ctx.program_id, ORD.c.ordered_at >= start, ORD.c.ordered_at < end)
            .group_by(ORD.c.institution_id, ORD.c.product_id)).tuples():
        if int(inst_id) not in parents:
            continue
        parent = parents[int(inst_id)]
        key = (int(inst_id) if parent is None else int(parent), int(product_id))
        base[key] = base.get(key, 0) + int(quantity or 0)
    return base


def agreed_volume(base: int, winners: int | None, shares: dict[int, Decimal] | None) -> int | None:
    """Seed 003 §四(一)1: the base × the share for the drug's number of winners (1 → 50 %, 2 → 60 %, 3 → 70 %).

    None when the rule does not apply (no rule, no winner count, no share for it, or no purchases last year).
    """
    if not shares or winners is None or base <= 0:
        return None
    share = shares.get(winners)
    if share is None:  # 003 names 1, 2 and 3 winners only; other counts keep the selections' volume
        return None
    return int((Decimal(base) * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _desired_contracts(ctx: Ctx, year: int) -> tuple[dict[tuple[int, int], dict[str, int]], set[int]]:
    """(buyer, enterprise) → {drug code: agreed annual volume}, and proxy institutions nobody buys for.

    A proxy-procured institution's selections are bought by its upper institution (000 §三(四)), so
    they add to the upper institution's volumes. Where the program uses seed 003's rule, a drug with a
    winner count and purchases last year has base × share as its volume instead of the selections'.
    Seed 003: next year's agreed volume is not below the previous year's, so a drug still selected
    keeps at least last year's signed volume.
    """
    selected = ctx.session.execute(
        select(SEL.c.institution_id, PROD.c.enterprise_id, PROD.c.drug_code, SEL.c.annual_volume, PROD.c.id,
               PROD.c.winner_count)
        .join(PROD, PROD.c.id == SEL.c.product_id).join(ENT, ENT.c.id == PROD.c.enterprise_id)
        .where(SEL.c.program_id == ctx.program_id, ENT.c.state == EnterpriseState.ACTIVE, SEL.c.ended_on.is_(None))
    ).all()
    # Every running institution and its upper one, read only when someone selected: the contracts step runs
    # right after enrollment too, when nothing is selected yet (100,000 rows read for nothing, ~0.35 s).
    parents: dict[int, int | None] = {
        int(r.id): r.proxy_parent_id for r in ctx.session.execute(
            select(INST.c.id, INST.c.proxy_parent_id).where(INST.c.id.in_(running_filter(ctx.program_id))))
    } if selected else {}
    desired: dict[tuple[int, int], dict[str, int]] = {}
    products: dict[tuple[int, int, str], tuple[int, int | None]] = {}
    orphans: set[int] = set()
    for inst_id, enterprise_id, drug_code, volume, product_id, winners in selected:
        if inst_id not in parents:
            continue  # not running: suspended, exited or never approved
        parent = parents[inst_id]
        if parent is not None and (parent not in parents or parents[parent] is not None):
            orphans.add(int(inst_id))
            continue
        buyer = int(inst_id) if parent is None else int(parent)
        volumes = desired.setdefault((buyer, int(enterprise_id)), {})
        volumes[drug_code] = volumes.get(drug_code, 0) + int(volume)
        products[(buyer, int(enterprise_id), drug_code)] = (int(product_id), winners)
    shares = ctx.defn.rules.agreed_volume_share_by_winners
    if shares and products:
        base = _purchase_base(ctx, year, parents)
        for (buyer, enterprise_id, code), (product_id, winners) in products.items():
            volume = agreed_volume(base.get((buyer, product_id), 0), winners, dict(shares))
            if volume is not None:
                desired[(buyer, enterprise_id)][code] = volume
    previous = ctx.session.execute(
        select(CON.c.institution_id, CON.c.enterprise_id, CON.c.agreed_volumes)
        .where(CON.c.program_id == ctx.program_id, CON.c.year == year - 1, CON.c.state == ContractState.SIGNED))
    for inst_id, enterprise_id, agreed in previous:
        current = desired.get((int(inst_id), int(enterprise_id)))
        if current is not None:
            for code, volume in (agreed or {}).items():
                if code in current:
                    current[code] = max(current[code], int(volume))
    return {key: dict(sorted(v.items())) for key, v in desired.items()}, orphans


@dataclass
class _ContractSync:
    year: int
    due: Deadline | None  # None when no contract was created
    created: int
    updated: int
    orphans: set[int]


def _ensure_contracts(ctx: Ctx) -> _ContractSync:
    """Create this year's missing contracts and refresh the volumes of unsigned ones.

    A signed contract is never touched; a pending one follows the selections until it is signed.
    A pending contract whose selections disappeared is left alone: terminating it is a decision.
    """
    year = _contract_year(ctx)
    desired, orphans = _desired_contracts(ctx, year)
    # Volumes are compared as the JSON text they were stored as (json.dumps, as SQLAlchemy writes
    # them): parsing 200,000 documents on every tick would cost seconds. Any other spelling falls
    # back to a parsed comparison, so a mismatch of form never rewrites a contract.
    existing: dict[tuple[int, int], tuple[int, bool, str | None]] = {
        (int(inst), int(ent)): (int(cid), state == ContractState.PENDING.value, text)
        for cid, inst, ent, state, text in ctx.session.execute(
            select(CON.c.id, CON.c.institution_id, CON.c.enterprise_id, type_coerce(CON.c.state, String),
                   cast(CON.c.agreed_volumes, Text))
            .where(CON.c.program_id == ctx.program_id, CON.c.year == year)).tuples()}
    missing = [(key, volumes) for key, volumes in desired.items() if key not in existing]
    due = _contract_due(ctx) if missing else None
    new_rows = [{"program_id": ctx.program_id, "institution_id": inst, "enterprise_id": ent, "year": year,
                 "state": ContractState.PENDING, **due_columns(due), "agreed_volumes": volumes}
                for (inst, ent), volumes in missing if due is not None]
    created = insert_audited(ctx, CON, new_rows, ["program_id", "institution_id", "enterprise_id", "year"],
                             entity=CONTRACT.entity, action="create",
                             data=["institution_id", "enterprise_id", "year", "due_on"])
    changes: list[tuple[int, Any, dict[str, int]]] = []
    for key, (cid, pending, text) in existing.items():
        volumes = desired.get(key)
        if volumes is None or not pending or text == json.dumps(volumes):
            continue
        before = json.loads(text) if text else {}
        if before != volumes:
            changes.append((cid, before, volumes))
    if changes:
        ctx.session.execute(
            CON.update().where(CON.c.id == bindparam("b_id"), CON.c.state == ContractState.PENDING)
            .values(agreed_volumes=bindparam("b_volumes")),
            [{"b_id": cid, "b_volumes": volumes} for cid, _, volumes in changes])
        for cid, before, volumes in changes:
            ctx.audit.append(AuditRecord(
                entity=CONTRACT.entity, entity_id=cid, action="update_volumes",
                from_state=ContractState.PENDING.value, to_state=ContractState.PENDING.value, actor=SYSTEM,
                role=Role.SYSTEM, at=ctx.now, program_id=ctx.program_id, data={"before": before, "after": volumes}))
    return _ContractSync(year, due, created, len(changes), orphans)


def reconcile_contracts(engine: Engine, slug: str, *, clock: Clock) -> ContractsReport:
    """One pending contract per running non-proxy institution and enterprise it selected from.

    Idempotent: the natural key (program, institution, enterprise, year) is unique and re-running
    with unchanged selections writes nothing. Contracts are annual, so in a new calendar year of
    continuous review the next year's contracts appear (每年一签, 000 §四(二)).
    """
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        sync = _ensure_contracts(ctx)
        flush_audit(ctx)
        counts = dict.fromkeys(ContractState, 0)
        for state, n in session.execute(select(CON.c.state, func.count()).where(
                CON.c.program_id == ctx.program_id, CON.c.year == sync.year).group_by(CON.c.state)):
            counts[ContractState(state)] = int(n)
        lag = sorted_laggards(contract_laggards(ctx))
        return ContractsReport(year=sync.year, due_on=sync.due.day if sync.due else None,
                               due_provisional=bool(sync.due and sync.due.provisional), created=sync.created,
                               volumes_updated=sync.updated, counts=counts, overdue=sum(g.overdue for g in lag),
                               due_soon=sum(not g.overdue for g in lag), laggards=lag,
                               proxy_selections_without_buyer=sorted(sync.orphans))


# --------------------------------------------------------------------------- the platform's contract export


@dataclass(frozen=True)
class _ContractLine:
    row: int
    code: str
    enterprise: str
    year: int
    signed_on: date


def _apply_contracts(ctx: Ctx, lines: list[_ContractLine], actor: str) -> Applied:
    """Move pending contracts to signed; (changed, unchanged, errors, warnings), nothing written on error."""
    _ensure_contracts(ctx)
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    insts = institutions_by_code(ctx, [ln.code for ln in lines])
    running = running_status(ctx, [i.id for i in insts.values()])
    enterprises: dict[str, int] = {}
    for names in chunks(sorted({ln.enterprise for ln in lines})):
        enterprises.update((r.name, int(r.id)) for r in ctx.session.execute(
            select(ENT.c.id, ENT.c.name).where(ENT.c.name.in_(names))))
    contracts: dict[tuple[int, int, int], Any] = {}
    for chunk in chunks(sorted({i.id for i in insts.values()})):
        for r in ctx.session.execute(select(CON.c.id, CON.c.institution_id, CON.c.enterprise_id, CON.c.year,
                                            CON.c.state, CON.c.signed_on)
                                     .where(CON.c.program_id == ctx.program_id, CON.c.institution_id.in_(chunk))
                                     .with_for_update()):
            contracts[(int(r.institution_id), int(r.enterprise_id), int(r.year))] = r

    seen: dict[tuple[str, str, int], _ContractLine] = {}
    todo: list[tuple[_ContractLine, Any]] = []
    unchanged = 0
    for ln in lines:
        inst = running_institution(ctx, ln.row, ln.code, insts, running, errors)
        enterprise_id = enterprises.get(ln.enterprise)
        if enterprise_id is None:
            errors.append(row_error(ln.row, "企业名称", ln.enterprise, "enterprise.unknown", "系统中没有该名称的企业",
                                    "no enterprise with this name"))
        if inst is None or enterprise_id is None:
            continue
        key = (ln.code, ln.enterprise, ln.year)
        if (first := seen.get(key)) is not None:
            if first.signed_on != ln.signed_on:
                errors.append(row_error(ln.row, "签订日期", ln.signed_on.isoformat(), "contract.conflicting_rows",
                                        f"与第{first.row}行是同一协议，但签订日期不同",
                                        f"same contract as row {first.row} with another date"))
            continue
        seen[key] = ln
        if inst.proxy_parent_id is not None:
            warnings.append(row_warning(ln.row, "机构医保编码", ln.code, "contract.proxy",
                                        f"“{inst.name}”由上级机构代采，不单独签订购销协议，本行已忽略",
                                        "proxy-procured: its upper institution signs, row ignored"))
            continue
        contract = contracts.get((inst.id, enterprise_id, ln.year))
        if contract is None:
            errors.append(row_error(ln.row, "企业名称", ln.enterprise, "contract.unknown",
                                    f"“{inst.name}”与该企业没有{ln.year}年度的购销协议（该机构未选用该企业的药品）",
                                    f"no {ln.year} contract between this institution and enterprise "
                                    "(it selected none of the enterprise's drugs)"))
            continue
        state = ContractState(contract.state)
        if state == ContractState.SIGNED:
            if contract.signed_on == ln.signed_on:
                unchanged += 1
            else:
                warnings.append(row_warning(ln.row, "签订日期", ln.signed_on.isoformat(), "contract.already_signed",
                                            f"该协议已于 {contract.signed_on} 登记签订，本行已忽略",
                                            f"already recorded as signed on {contract.signed_on}: row ignored"))
            continue
        if state == ContractState.TERMINATED:
            warnings.append(row_warning(ln.row, "企业名称", ln.enterprise, "contract.terminated",
                                        "该协议已终止，不能登记签订，本行已忽略", "the contract was terminated: row ignored"))
            continue
        todo.append((ln, contract))
    if errors:
        return 0, unchanged, errors, warnings
    params = []
    for ln, contract in todo:
        _, record = CONTRACT.apply(int(contract.id), ContractState(contract.state), "sign", actor=actor,
                                   role=role_of(actor), at=ctx.now, program_id=ctx.program_id,
                                   data={"signed_on": ln.signed_on.isoformat(), "row": ln.row})
        ctx.audit.append(record)
        params.append({"b_id": int(contract.id), "b_on": ln.signed_on})
    if params:
        ctx.session.execute(
            CON.update().where(CON.c.id == bindparam("b_id"), CON.c.state == ContractState.PENDING)
            .values(state=ContractState.SIGNED, signed_on=bindparam("b_on")), params)
    return len(params), unchanged, errors, warnings


def _contract_line(ctx: Ctx, cells: Cells) -> _ContractLine | None:
    code = cells.take("机构医保编码", parse_code)
    enterprise = cells.take("企业名称", parse_text(200))
    year = cells.take("年度", parse_year)
    day = cells.take("签订日期", parse_date)
    if day is not None and (future := not_future(ctx, cells.number, "签订日期", day)) is not None:
        cells.errors.append(future)
    if cells.errors or code is None or enterprise is None or year is None or day is None:
        return None
    return _ContractLine(cells.number, code, enterprise, year, day)


def import_platform_contracts(engine: Engine, slug: str, path: Path, *, clock: Clock,
                              actor: str = SYSTEM) -> PlatformImportResult:
    """Import the platform's contract export (机构医保编码, 企业名称, 年度, 签订日期): pending → signed.

    Same rules as the account import (tasks.platform.accounts). Missing contracts are created first (as
    reconcile_contracts would), so a file may arrive before the flow's next tick; a row naming a
    contract that cannot exist (no selection from that enterprise) is an error.
    """
    return import_platform(engine, slug, path, "platform_contracts", CONTRACT_COLUMNS, _contract_line,
                           _apply_contracts, clock=clock, actor=actor)


def sign_contract(engine: Engine, slug: str, insurance_code: str, enterprise_name: str, year: int,
                  signed_on: date, *, clock: Clock, actor: str = SYSTEM) -> PlatformImportResult:
    """Record one signed contract by hand (the CLI); the same checks as a file row."""
    return one_record(engine, slug, CONTRACT_COLUMNS,
                      (insurance_code, enterprise_name, str(year), signed_on.isoformat()),
                      _contract_line, _apply_contracts, clock=clock, actor=actor)
