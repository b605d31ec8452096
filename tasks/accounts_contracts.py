"""Phases 4 and 5: platform accounts (平台账户注册) and annual purchase contracts (购销协议, 每年一签).

Neither phase has a gate: the bureau's work is to know who is behind and to remind them, so the
core of this module is two reconcilers (make the rows the rules require exist, count, list the
laggards) and the importers of the provincial platform's exports that move rows forward.

Two rules of seed 000 §四 shape everything here:
- a proxy-procured (代采) clinic never registers an account and never signs a contract: its upper
  institution buys and settles for it (§三(四), §四(一)(二)). Its account row is ``exempt``; the
  drugs it selected count in its upper institution's contracts; it never appears among laggards;
- contracts are annual, one per institution and enterprise, stating the agreed annual volume of
  each selected drug (§四(二); seed 003: next year's volume not below the previous year's).

Every function runs in one transaction with bulk statements (one query per table, one
executemany per write, audit rows of bulk creations written by the database itself), never an
ORM round trip per row: 100,000 institutions reconcile in seconds. Writers lock the program row,
so a flow tick and an import never interleave. Every state change has its audit row in the same
transaction. Imports are all-or-nothing per file and report every bad row at once, like
tasks/imports.py, whose RowError/RowWarning/ImportRejected they share.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    Engine,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    type_coerce,
)
from sqlmodel import Session, SQLModel

from models.audit import AuditEvent
from models.base import AwareDateTime
from models.catalog import Enterprise, Product
from models.clock import Clock, local_date
from models.enrollment import Application, Batch, Institution
from models.operations import Contract, PlatformAccount, Selection
from models.program import ImportRecord, Program
from models.program_definition import PhaseName, ProgramDefinition
from models.states import AccountState, ApplicationState, ContractState, EnterpriseState, ListKind, Role
from models.transitions import ACCOUNT, CONTRACT, AuditRecord
from models.validators import (
    FieldError,
    field_error,
    validate_drug_code,
    validate_insurance_institution_code,
    validate_price,
    validate_required_text,
)
from models.workdays import WorkingDays
from sanjin.db import transaction
from tasks.calendar import working_days_for
from tasks.enrollment import LATE_BATCH_ACCOUNT_WORKING_DAYS
from tasks.lists import latest_version, version_entries
from tasks.programs import get_program
from tasks.spreadsheets import (
    ImportRejected,
    RowError,
    RowWarning,
    Sheet,
    lost_digits_error,
    normalize_header,
    parse_upload,
    read_upload,
)
from tasks.store import insert_ignoring_conflicts, insert_rows, write_audit

__all__ = [
    "ACCOUNT_COLUMNS",
    "CONTRACT_COLUMNS",
    "LATE_CONTRACT_WORKING_DAYS",
    "SELECTION_COLUMNS",
    "AccountsReport",
    "ContractsReport",
    "Laggard",
    "PlatformImportResult",
    "RecordRejected",
    "SelectionRow",
    "SelectionsResult",
    "import_platform_accounts",
    "import_platform_contracts",
    "import_selections",
    "laggards",
    "reconcile_accounts",
    "reconcile_contracts",
    "record_selections",
    "register_account",
    "sign_contract",
]

# Documented columns of the files; other columns are ignored (platform exports carry more).
ACCOUNT_COLUMNS: tuple[str, ...] = ("机构医保编码", "平台账号", "注册日期")
CONTRACT_COLUMNS: tuple[str, ...] = ("机构医保编码", "企业名称", "年度", "签订日期")
SELECTION_COLUMNS: tuple[str, ...] = ("机构医保编码", "药品统一编码", "销售价格(元)", "年采购量")

# A contract created after the contracts window closed (a late batch, a new year in continuous
# review) gets this long to be signed. Assumed: no seed gives one; it matches the late-batch
# account deadline of tasks/enrollment.py and 004's "20 working days".
LATE_CONTRACT_WORKING_DAYS = 20

_CHUNK = 500  # IN-list size, far below both databases' bind-parameter limits
_BULK = 2000  # above this many keys, one query for the whole program beats IN lists
_SYSTEM = "system"
_SEP = "\x1f"  # joins enterprise names in SQL; never part of a name

T = TypeVar("T")
What = Literal["account", "contract"]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Laggard:
    """An institution behind on its account or its contracts, for reminders and the dashboard.

    ``days_late`` counts working days (调休 included) after ``due_on``; it is 0 when not yet late,
    and also for a deadline that fell on the weekend just past, so ``overdue`` says which.
    A contract laggard is one per institution: ``enterprises`` names the unsigned counterparts
    and ``due_on`` is the earliest of their deadlines (one reminder, not one per enterprise).
    """

    institution_id: int
    name: str
    district: str
    insurance_code: str
    what: What
    due_on: date
    days_late: int
    email: str | None
    overdue: bool = False
    working_days_left: int = 0
    enterprises: tuple[str, ...] = ()


@dataclass
class AccountsReport:
    """Accounts of one program: rows created now, counts per state, laggards (late or due soon)."""

    created: int
    counts: dict[AccountState, int]
    overdue: int
    due_soon: int
    laggards: list[Laggard]
    # Pending accounts of institutions that became proxy-procured later; never reminded (the
    # ACCOUNT machine has no pending → exempt move, so a person should look at them).
    proxy_with_pending_account: list[int] = field(default_factory=list)


@dataclass
class ContractsReport:
    """Contracts of one program: the contract year, what was created or refreshed, counts, laggards."""

    year: int
    due_on: date  # the deadline given to contracts created today
    created: int
    volumes_updated: int
    counts: dict[ContractState, int]  # contracts of `year`
    overdue: int
    due_soon: int
    laggards: list[Laggard]
    # Proxy-procured institutions with selections whose upper institution is not running in the
    # program: nobody can sign for those drugs (the parent must enrol first).
    proxy_selections_without_buyer: list[int] = field(default_factory=list)


@dataclass
class PlatformImportResult:
    """What an accounts/contracts import did; ``already_imported``: these exact bytes came before."""

    rows: int
    changed: int
    unchanged: int = 0
    warnings: list[RowWarning] = field(default_factory=list)
    import_id: int | None = None
    already_imported: bool = False


@dataclass(frozen=True)
class SelectionRow:
    """One drug an institution selects; ``row`` is the spreadsheet row (0 when not from a file)."""

    insurance_code: str
    drug_code: str
    sale_price: Decimal | None
    annual_volume: int
    row: int = 0


@dataclass
class SelectionsResult:
    rows: int
    created: int
    updated: int
    unchanged: int
    import_id: int | None = None


class RecordRejected(ValueError):
    """A single record from the CLI (register_account, sign_contract) was refused; nothing changed."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(f"{e.column} “{e.value}”: {e.message}" for e in self.errors))


# --------------------------------------------------------------------------- shared plumbing


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


ACC, CON, SEL = _table(PlatformAccount), _table(Contract), _table(Selection)
INST, APP, BATCH = _table(Institution), _table(Application), _table(Batch)
ENT, PROD = _table(Enterprise), _table(Product)
AUD, PROGRAM = _table(AuditEvent), _table(Program)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _role(actor: str) -> Role:
    """Imports and CLI records are a bureau person's act; reconcilers are the system's."""
    return Role.SYSTEM if actor == _SYSTEM else Role.PROGRAM_MANAGER


@dataclass
class _Ctx:
    session: Session
    program_id: int
    slug: str
    defn: ProgramDefinition
    wdays: WorkingDays
    today: date
    now: datetime
    audit: list[AuditRecord] = field(default_factory=list)


def _write_audit(ctx: _Ctx) -> None:
    """The collected audit rows, in one Core statement (tasks.store.write_audit)."""
    if ctx.audit:
        write_audit(ctx.session, ctx.audit)
        ctx.audit.clear()


def _context(session: Session, slug: str, clock: Clock, *, lock: bool = True) -> _Ctx:
    """The program and today's calendar; writers lock the program row so two runs never interleave.

    Two reconcilers (a flow tick and an import) on one program would otherwise race on the same
    natural keys and audit each other's rows; other programs are not blocked.
    """
    program, defn = get_program(session, slug)
    assert program.id is not None
    if lock:
        session.execute(select(PROGRAM.c.id).where(PROGRAM.c.id == program.id).with_for_update())
    return _Ctx(session, program.id, slug, defn, working_days_for(defn), clock.today(), clock.now())


def _insert_audited(ctx: _Ctx, t: Table, rows: Sequence[dict[str, Any]], key: Sequence[str], *, entity: str,
                    action: str, data: Sequence[str], actor: str = _SYSTEM) -> int:
    """Insert rows skipping natural-key conflicts, plus one audit row per row really inserted; how many.

    The database writes the audit rows itself (INSERT … SELECT over the new ids): building and
    binding 200,000 audit rows in Python costs more than the inserts, and RETURNING through
    psycopg's multi-row statements costs more still. The program row lock taken by _context makes
    "ids above the previous maximum" exactly this call's rows.
    """
    if not rows:
        return 0
    before = int(ctx.session.execute(select(func.max(t.c.id))).scalar() or 0)
    postgres = ctx.session.get_bind().dialect.name == "postgresql"
    insert_rows(ctx.session, t, rows, conflict_key=key)  # one statement on PostgreSQL too (tasks.store)
    new = (t.c.id > before, t.c.program_id == ctx.program_id)
    build = func.json_build_object if postgres else func.json_object
    pairs: list[Any] = []
    for name in data:
        pairs += [literal_column(f"'{name}'"), t.c[name]]
    payload = build(*pairs)
    ctx.session.execute(AUD.insert().from_select(
        ["program_id", "entity", "entity_id", "action", "from_state", "to_state", "actor", "role", "reason", "data",
         "at"],
        select(t.c.program_id, literal(entity), cast(t.c.id, String), literal(action), null(),
               t.c.state if "state" in t.c else null(), literal(actor[:64]), literal(_role(actor).value), null(),
               payload, literal(ctx.now, AwareDateTime())).where(*new)))
    return int(ctx.session.execute(select(func.count()).select_from(t).where(*new)).scalar_one())


def _running_filter(program_id: int) -> Any:
    """Institution ids with a RUNNING application in the program, as a subquery."""
    return select(APP.c.institution_id).where(APP.c.program_id == program_id,
                                              APP.c.state == ApplicationState.RUNNING)


def _running_status(ctx: _Ctx, institution_ids: Sequence[int]) -> set[int]:
    """Which of these institutions run in the program.

    Many ids: one query for the whole program. Chunked IN lists would each scan the
    (program_id, state) index, i.e. the whole program once per 500 ids.
    """
    query = _running_filter(ctx.program_id)
    wanted = set(institution_ids)
    if len(wanted) > _BULK:
        return {int(i) for i in ctx.session.execute(query).scalars() if int(i) in wanted}
    running: set[int] = set()
    for chunk in _chunks(sorted(wanted)):
        running.update(int(i) for i in ctx.session.execute(query.where(APP.c.institution_id.in_(chunk))).scalars())
    return running


def _horizon(ctx: _Ctx, working_days: int) -> date:
    """The last date with at most `working_days` working days after today: the reminder horizon."""
    day = ctx.today
    for _ in range(working_days + 1):
        day = ctx.wdays.next_working_day(day)
    return day - timedelta(days=1)


# --------------------------------------------------------------------------- laggards


@dataclass
class _Lateness:
    """Working-day distances from today, cached per due date (100,000 rows share a few dates)."""

    ctx: _Ctx
    cache: dict[date, tuple[bool, int, int]] = field(default_factory=dict)

    def of(self, due: date) -> tuple[bool, int, int]:
        """(overdue, working days late, working days left)."""
        if due not in self.cache:
            today = self.ctx.today
            if today > due:
                self.cache[due] = (True, self.ctx.wdays.working_days_between(due, today), 0)
            else:
                self.cache[due] = (False, 0, self.ctx.wdays.working_days_between(today, due))
        return self.cache[due]


def _account_laggards(ctx: _Ctx) -> list[Laggard]:
    """Pending accounts of running, non-proxy institutions, late or within the reminder horizon."""
    horizon = _horizon(ctx, ctx.defn.rules.account_reminder_working_days_before_close)
    rows = ctx.session.execute(
        select(ACC.c.due_on, INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code, INST.c.email)
        .join(INST, INST.c.id == ACC.c.institution_id)
        .where(ACC.c.program_id == ctx.program_id, ACC.c.state == AccountState.PENDING,
               INST.c.proxy_parent_id.is_(None), ACC.c.due_on.is_not(None), ACC.c.due_on <= horizon,
               INST.c.id.in_(_running_filter(ctx.program_id)))
    ).all()
    late = _Lateness(ctx)
    out: list[Laggard] = []
    for r in rows:
        overdue, days_late, left = late.of(r.due_on)
        out.append(Laggard(int(r.id), r.name, r.district, r.insurance_code, "account", r.due_on, days_late,
                           r.email, overdue, left))
    return out


def _contract_laggards(ctx: _Ctx) -> list[Laggard]:
    """Unsigned contracts of running, non-proxy institutions, late or within the reminder horizon."""
    horizon = _horizon(ctx, ctx.defn.rules.contract_reminder_working_days_before_close)
    dialect = ctx.session.get_bind().dialect.name
    # One row per institution, grouped by the database: 100,000 laggards must not cost seconds.
    names = (func.string_agg(ENT.c.name, _SEP) if dialect == "postgresql" else func.group_concat(ENT.c.name, _SEP))
    rows = ctx.session.execute(
        select(INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code, INST.c.email,
               func.min(CON.c.due_on).label("due_on"), names.label("enterprises"))
        .join(INST, INST.c.id == CON.c.institution_id)
        .join(ENT, ENT.c.id == CON.c.enterprise_id)
        .where(CON.c.program_id == ctx.program_id, CON.c.state == ContractState.PENDING,
               INST.c.proxy_parent_id.is_(None), CON.c.due_on.is_not(None), CON.c.due_on <= horizon,
               INST.c.id.in_(_running_filter(ctx.program_id)))
        .group_by(INST.c.id, INST.c.name, INST.c.district, INST.c.insurance_code, INST.c.email)
    ).tuples()
    late = _Lateness(ctx)
    out: list[Laggard] = []
    for inst_id, name, district, code, email, due, enterprises in rows:
        overdue, days_late, left = late.of(due)
        out.append(Laggard(int(inst_id), name, district, code, "contract", due, days_late, email, overdue, left,
                           tuple(sorted(set(enterprises.split(_SEP))))))
    return out


def _sorted(items: list[Laggard]) -> list[Laggard]:
    """Most late first; then those already past a weekend deadline; then the nearest deadline."""
    return sorted(items, key=lambda g: (-g.days_late, not g.overdue, g.due_on, g.working_days_left, g.what,
                                        g.district, g.insurance_code))


def laggards(engine: Engine, slug: str, *, clock: Clock) -> list[Laggard]:
    """Who to remind or escalate: pending accounts and unsigned contracts past due or due soon.

    "Soon" is the program's ``account_reminder_working_days_before_close`` /
    ``contract_reminder_working_days_before_close``. Exempt (proxy-procured) institutions never
    appear, nor institutions no longer running (suspended, exited): nobody reminds them.
    """
    with transaction(engine) as session:
        ctx = _context(session, slug, clock, lock=False)
        return _sorted(_account_laggards(ctx) + _contract_laggards(ctx))


# --------------------------------------------------------------------------- accounts


def _account_due(ctx: _Ctx, started: date) -> date:
    """The accounts window's close, or 20 working days for a batch that ran after it closed.

    Same rule as tasks/enrollment.py, but from the day the institution started running, so a
    backfilled row gets the deadline it would have had.
    """
    spec = ctx.defn.phase(PhaseName.ACCOUNTS)
    if spec is not None and spec.window.closes is not None and started <= spec.window.closes:
        return spec.window.closes
    start = max(started, spec.window.opens) if spec is not None else started
    return ctx.wdays.add_working_days(start, LATE_BATCH_ACCOUNT_WORKING_DAYS)


def _ensure_accounts(ctx: _Ctx) -> int:
    """Give every running institution lacking one its account row: exempt if proxy-procured."""
    missing = ctx.session.execute(
        select(INST.c.id, INST.c.proxy_parent_id, BATCH.c.running_at)
        .select_from(APP.join(INST, INST.c.id == APP.c.institution_id)
                     .outerjoin(BATCH, BATCH.c.id == APP.c.batch_id)
                     .outerjoin(ACC, and_(ACC.c.institution_id == INST.c.id, ACC.c.program_id == ctx.program_id)))
        .where(APP.c.program_id == ctx.program_id, APP.c.state == ApplicationState.RUNNING, ACC.c.id.is_(None))
    ).tuples()
    due_by_run: dict[datetime | None, date] = {}  # a batch's institutions share one deadline
    rows: dict[int, dict[str, Any]] = {}
    for inst_id, parent_id, running_at in missing:
        if parent_id is not None:
            state, due = AccountState.EXEMPT, None
        else:
            if running_at not in due_by_run:
                started = local_date(running_at) if running_at is not None else ctx.today
                due_by_run[running_at] = _account_due(ctx, started)
            state, due = AccountState.PENDING, due_by_run[running_at]
        rows[int(inst_id)] = {"program_id": ctx.program_id, "institution_id": int(inst_id), "state": state,
                              "due_on": due}
    return _insert_audited(ctx, ACC, list(rows.values()), ["program_id", "institution_id"],
                           entity=ACCOUNT.entity, action="create", data=["institution_id", "due_on"])


def reconcile_accounts(engine: Engine, slug: str, *, clock: Clock) -> AccountsReport:
    """Make sure every running institution has its account row, then count and list laggards.

    Enrollment creates the rows when a batch runs; this repairs any that are missing (a crash, an
    institution reinstated by hand) and is what the accounts flow calls on every tick.
    """
    with transaction(engine) as session:
        ctx = _context(session, slug, clock)
        created = _ensure_accounts(ctx)
        _write_audit(ctx)
        counts = dict.fromkeys(AccountState, 0)
        for state, n in session.execute(select(ACC.c.state, func.count()).where(
                ACC.c.program_id == ctx.program_id).group_by(ACC.c.state)):
            counts[AccountState(state)] = int(n)
        proxied = [int(i) for i in session.execute(
            select(ACC.c.institution_id).join(INST, INST.c.id == ACC.c.institution_id)
            .where(ACC.c.program_id == ctx.program_id, ACC.c.state == AccountState.PENDING,
                   INST.c.proxy_parent_id.is_not(None))).scalars()]
        lag = _sorted(_account_laggards(ctx))
        return AccountsReport(created=created, counts=counts, overdue=sum(g.overdue for g in lag),
                              due_soon=sum(not g.overdue for g in lag), laggards=lag,
                              proxy_with_pending_account=sorted(proxied))


# --------------------------------------------------------------------------- contracts


def _contract_terms(ctx: _Ctx) -> tuple[int, date]:
    """(year, due date) of contracts created today.

    Inside (or before) the contracts window: the window's year and its close. After it closed, or
    in an open-ended window, contracts are for the current calendar year (每年一签) and due
    LATE_CONTRACT_WORKING_DAYS after today — a deadline already past at creation would help nobody.
    """
    spec = ctx.defn.phase(PhaseName.CONTRACTS)
    if spec is None:
        return ctx.today.year, ctx.wdays.add_working_days(ctx.today, LATE_CONTRACT_WORKING_DAYS)
    window = spec.window
    year = window.opens.year if ctx.today < window.opens else ctx.today.year
    if window.closes is not None and ctx.today <= window.closes:
        return year, window.closes
    return year, ctx.wdays.add_working_days(max(ctx.today, window.opens), LATE_CONTRACT_WORKING_DAYS)


def _desired_contracts(ctx: _Ctx, year: int) -> tuple[dict[tuple[int, int], dict[str, int]], set[int]]:
    """(buyer, enterprise) → {drug code: agreed annual volume}, and proxy institutions nobody buys for.

    A proxy-procured institution's selections are bought by its upper institution (000 §三(四)), so
    they add to the upper institution's volumes. Seed 003: next year's agreed volume is not below
    the previous year's, so a drug still selected keeps at least last year's signed volume.
    """
    parents: dict[int, int | None] = {
        int(r.id): r.proxy_parent_id for r in ctx.session.execute(
            select(INST.c.id, INST.c.proxy_parent_id).where(INST.c.id.in_(_running_filter(ctx.program_id))))}
    selected = ctx.session.execute(
        select(SEL.c.institution_id, PROD.c.enterprise_id, PROD.c.drug_code, SEL.c.annual_volume)
        .join(PROD, PROD.c.id == SEL.c.product_id).join(ENT, ENT.c.id == PROD.c.enterprise_id)
        .where(SEL.c.program_id == ctx.program_id, ENT.c.state == EnterpriseState.ACTIVE))
    desired: dict[tuple[int, int], dict[str, int]] = {}
    orphans: set[int] = set()
    for inst_id, enterprise_id, drug_code, volume in selected:
        if inst_id not in parents:
            continue  # not running: suspended, exited or never approved
        parent = parents[inst_id]
        if parent is not None and (parent not in parents or parents[parent] is not None):
            orphans.add(int(inst_id))
            continue
        buyer = int(inst_id) if parent is None else int(parent)
        volumes = desired.setdefault((buyer, int(enterprise_id)), {})
        volumes[drug_code] = volumes.get(drug_code, 0) + int(volume)
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
    due_on: date
    created: int
    updated: int
    orphans: set[int]


def _ensure_contracts(ctx: _Ctx) -> _ContractSync:
    """Create this year's missing contracts and refresh the volumes of unsigned ones.

    A signed contract is never touched; a pending one follows the selections until it is signed.
    A pending contract whose selections disappeared is left alone: terminating it is a decision.
    """
    year, due = _contract_terms(ctx)
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
    new_rows = [{"program_id": ctx.program_id, "institution_id": inst, "enterprise_id": ent, "year": year,
                 "state": ContractState.PENDING, "due_on": due, "agreed_volumes": volumes}
                for (inst, ent), volumes in desired.items() if (inst, ent) not in existing]
    created = _insert_audited(ctx, CON, new_rows, ["program_id", "institution_id", "enterprise_id", "year"],
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
                from_state=ContractState.PENDING.value, to_state=ContractState.PENDING.value, actor=_SYSTEM,
                role=Role.SYSTEM, at=ctx.now, program_id=ctx.program_id, data={"before": before, "after": volumes}))
    return _ContractSync(year, due, created, len(changes), orphans)


def reconcile_contracts(engine: Engine, slug: str, *, clock: Clock) -> ContractsReport:
    """One pending contract per running non-proxy institution and enterprise it selected from.

    Idempotent: the natural key (program, institution, enterprise, year) is unique and re-running
    with unchanged selections writes nothing. Contracts are annual, so in a new calendar year of
    continuous review the next year's contracts appear (每年一签, 000 §四(二)).
    """
    with transaction(engine) as session:
        ctx = _context(session, slug, clock)
        sync = _ensure_contracts(ctx)
        _write_audit(ctx)
        counts = dict.fromkeys(ContractState, 0)
        for state, n in session.execute(select(CON.c.state, func.count()).where(
                CON.c.program_id == ctx.program_id, CON.c.year == sync.year).group_by(CON.c.state)):
            counts[ContractState(state)] = int(n)
        lag = _sorted(_contract_laggards(ctx))
        return ContractsReport(year=sync.year, due_on=sync.due_on, created=sync.created,
                               volumes_updated=sync.updated, counts=counts, overdue=sum(g.overdue for g in lag),
                               due_soon=sum(not g.overdue for g in lag), laggards=lag,
                               proxy_selections_without_buyer=sorted(sync.orphans))


# --------------------------------------------------------------------------- reading files


def _err(row: int, column: str, value: str, rule: str, zh: str, en: str) -> RowError:
    return RowError(row, column, value, f"{zh} / {en}", rule)


def _warn(row: int, column: str, value: str, rule: str, zh: str, en: str) -> RowWarning:
    return RowWarning(row, column, value, f"{zh} / {en}", rule)


def _read_sheet(path: Path) -> tuple[bytes, Sheet]:
    data = read_upload(path)
    return data, parse_upload(data, path.name)


def _columns(sheet: Sheet, filename: str, wanted: Sequence[str]) -> dict[str, int]:
    """Where each documented column is; any order, extra columns ignored, missing ones an error."""
    found = [normalize_header(h) for h in sheet.header]
    problems = [c for c in wanted if c not in found]
    twice = [c for c in wanted if found.count(c) > 1]
    if problems or twice:
        detail = "；".join(
            ([f"缺少列 missing: {'、'.join(problems)}"] if problems else [])
            + ([f"列重复 duplicated: {'、'.join(twice)}"] if twice else []))
        raise ImportRejected(filename, [RowError(
            sheet.header_row, "表头", "、".join(sheet.header),
            f"表头不正确：{detail}。应包含：{'、'.join(wanted)} / wrong header row: {detail}; "
            f"required columns: {', '.join(wanted)}", "header.mismatch")])
    return {c: found.index(c) for c in wanted}


class _Cells:
    """The documented cells of one data row, with its parse errors collected, not raised."""

    def __init__(self, sheet: Sheet, number: int, cells: Sequence[str], columns: dict[str, int]) -> None:
        self.number = number
        self.errors: list[RowError] = []
        self._cells, self._columns, self._lossy = cells, columns, sheet.lossy

    def raw(self, column: str) -> str:
        i = self._columns[column]
        return self._cells[i] if i < len(self._cells) else ""

    def take(self, column: str, parse: Callable[[str, str], T]) -> T | None:
        raw = self.raw(column)
        if (self.number, self._columns[column]) in self._lossy:
            self.errors.append(lost_digits_error(self.number, column, raw))
            return None
        try:
            return parse(raw, column)
        except FieldError as exc:
            self.errors.append(RowError(self.number, column, raw, exc.message, exc.rule))
            return None


def _clean(value: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))


# A time of day after the date is ignored: an Excel date-time cell reads "2025-10-15 14:30:00".
_DATE = re.compile(r"(?:(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{4})(\d{2})(\d{2}))(?:T?\d{1,2}:\d{2}(?::\d{2})?)?")


def _parse_date(raw: str, column: str) -> date:
    """YYYY-MM-DD as documented; also 2025/10/8 and 2025年10月8日, which Excel and people write."""
    text = _clean(raw)
    if not text:
        raise field_error(column, raw, "date.empty", f"{column}不能为空", f"{column} is required")
    m = _DATE.fullmatch(text)
    try:
        if m is None:
            raise ValueError
        y, mo, d = (m[1], m[2], m[3]) if m[1] else (m[4], m[5], m[6])
        return date(int(y), int(mo), int(d))
    except ValueError:
        raise field_error(column, raw, "date.invalid", f"{column}应为日期，格式 YYYY-MM-DD（如 2025-10-15）",
                    "must be a date YYYY-MM-DD, e.g. 2025-10-15") from None


def _parse_code(raw: str, column: str) -> str:
    return validate_insurance_institution_code(raw, column)


def _parse_text(max_len: int) -> Callable[[str, str], str]:
    return lambda raw, column: validate_required_text(raw, column, max_len)


def _parse_year(raw: str, column: str) -> int:
    m = re.fullmatch(r"(\d{4})(?:\.0+)?年?(?:度)?", _clean(raw))
    if m is None or not 2000 <= int(m[1]) <= 2100:
        raise field_error(column, raw, "year.invalid", f"{column}应为四位年份，如 2025", "must be a four-digit year, e.g. 2025")
    return int(m[1])


def _parse_volume(raw: str, column: str) -> int:
    text = _clean(raw).replace(",", "")
    if not text:
        raise field_error(column, raw, "int.empty", f"{column}不能为空", f"{column} is required")
    m = re.fullmatch(r"(\d+)(?:\.0+)?", text)
    if m is None:
        raise field_error(column, raw, "int.invalid", f"{column}应为不小于0的整数", "must be a whole number ≥ 0")
    return int(m[1])


def _not_future(ctx: _Ctx, row: int, column: str, day: date) -> RowError | None:
    if day <= ctx.today:
        return None
    return _err(row, column, day.isoformat(), "date.future", f"{column}晚于今天（{ctx.today.isoformat()}）",
                f"is after today ({ctx.today.isoformat()})")


def _previous_import(ctx: _Ctx, kind: str, digest: str) -> PlatformImportResult | None:
    t = _table(ImportRecord)
    row = ctx.session.execute(select(t.c.id, t.c.rows).where(
        t.c.kind == kind, t.c.program_id == ctx.program_id, t.c.sha256 == digest)).first()
    if row is None:
        return None
    return PlatformImportResult(rows=int(row.rows), changed=0, import_id=int(row.id), already_imported=True)


def _record_import(ctx: _Ctx, kind: str, digest: str, filename: str, rows: int, created: int,
                   actor: str) -> int | None:
    t = _table(ImportRecord)
    insert_ignoring_conflicts(ctx.session, ImportRecord, [{
        "kind": kind, "program_id": ctx.program_id, "sha256": digest, "filename": filename[:300], "rows": rows,
        "created": created, "imported_by": actor[:64], "imported_at": ctx.now}], ["kind", "program_id", "sha256"])
    found = ctx.session.execute(select(t.c.id).where(
        t.c.kind == kind, t.c.program_id == ctx.program_id, t.c.sha256 == digest)).scalar()
    return int(found) if found is not None else None


@dataclass(frozen=True)
class _Inst:
    id: int
    name: str
    proxy_parent_id: int | None
    special_designated: bool


def _institutions_by_code(ctx: _Ctx, codes: Sequence[str]) -> dict[str, _Inst]:
    out: dict[str, _Inst] = {}
    for chunk in _chunks(sorted(set(codes))):
        for r in ctx.session.execute(select(INST.c.id, INST.c.insurance_code, INST.c.name, INST.c.proxy_parent_id,
                                            INST.c.special_designated).where(INST.c.insurance_code.in_(chunk))):
            out[r.insurance_code] = _Inst(int(r.id), r.name, r.proxy_parent_id, bool(r.special_designated))
    return out


def _running_institution(ctx: _Ctx, row: int, code: str, insts: dict[str, _Inst], running: set[int],
                         errors: list[RowError]) -> _Inst | None:
    """The row's institution, or None after recording why it cannot be used.

    An unknown code or an institution not running in this program means the file is wrong (or
    early), not the system: an error, never a warning.
    """
    column = "机构医保编码"
    inst = insts.get(code)
    if inst is None:
        errors.append(_err(row, column, code, "institution.unknown", "系统中没有该医保编码的机构",
                           "no institution with this insurance code"))
        return None
    if inst.id not in running:
        errors.append(_err(row, column, code, "institution.not_running",
                           f"“{inst.name}”不是本项目（{ctx.slug}）正在运行的“三进”机构",
                           f"{inst.name} is not a running institution of {ctx.slug}"))
        return None
    return inst


L = TypeVar("L")
Applied = tuple[int, int, list[RowError], list[RowWarning]]  # changed, unchanged, errors, warnings


def _import_platform(engine: Engine, slug: str, path: Path, kind: str, columns: Sequence[str],
                     parse: Callable[[_Ctx, _Cells], L | None], apply: Callable[[_Ctx, list[L], str], Applied], *,
                     clock: Clock, actor: str) -> PlatformImportResult:
    """Read, parse every row, apply all-or-nothing, audit, and remember the file's bytes.

    The platform exports only ever move rows forward, so the same bytes again are skipped whole.
    """
    data, sheet = _read_sheet(path)
    digest = hashlib.sha256(data).hexdigest()
    with transaction(engine) as session:
        ctx = _context(session, slug, clock)
        if (previous := _previous_import(ctx, kind, digest)) is not None:
            return previous
        where = _columns(sheet, path.name, columns)
        errors: list[RowError] = []
        lines: list[L] = []
        for r in sheet.rows:
            cells = _Cells(sheet, r.number, r.cells, where)
            line = parse(ctx, cells)
            errors.extend(cells.errors)
            if line is not None:
                lines.append(line)
        if not sheet.rows:
            errors.append(_err(sheet.header_row, "表头", "", "file.no_rows", "文件中没有数据行", "the file has no rows"))
        changed, unchanged, more, warnings = apply(ctx, lines, actor)
        errors.extend(more)
        if errors:
            raise ImportRejected(path.name, errors)
        _write_audit(ctx)
        import_id = _record_import(ctx, kind, digest, path.name, len(sheet.rows), changed, actor)
        return PlatformImportResult(rows=len(sheet.rows), changed=changed, unchanged=unchanged, warnings=warnings,
                                    import_id=import_id)


def _one_record(engine: Engine, slug: str, columns: Sequence[str], values: Sequence[str],
                parse: Callable[[_Ctx, _Cells], L | None], apply: Callable[[_Ctx, list[L], str], Applied], *,
                clock: Clock, actor: str) -> PlatformImportResult:
    """A CLI record goes through the very checks of a file row, so the two can never disagree."""
    with transaction(engine) as session:
        ctx = _context(session, slug, clock)
        cells = _Cells(Sheet(tuple(columns), 0, []), 0, values, {c: i for i, c in enumerate(columns)})
        line = parse(ctx, cells)
        if line is None:
            raise RecordRejected(cells.errors)
        changed, unchanged, errors, warnings = apply(ctx, [line], actor)
        if errors:
            raise RecordRejected(errors)
        _write_audit(ctx)
        return PlatformImportResult(rows=1, changed=changed, unchanged=unchanged, warnings=warnings)


# --------------------------------------------------------------------------- account imports


@dataclass(frozen=True)
class _AccountLine:
    row: int
    code: str
    account_no: str
    registered_on: date


def _apply_accounts(ctx: _Ctx, lines: list[_AccountLine], actor: str) -> Applied:
    """Move pending accounts to registered; (changed, unchanged, errors, warnings), nothing written on error.

    A row for a proxy-procured or exempt institution is a warning, not an error: the platform may
    list the upper institution's account against its clinics, and the file is otherwise good.
    """
    _ensure_accounts(ctx)
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    insts = _institutions_by_code(ctx, [ln.code for ln in lines])
    running = _running_status(ctx, [i.id for i in insts.values()])
    accounts: dict[int, Any] = {}
    ids = sorted({i.id for i in insts.values()})
    for chunk in _chunks(ids):
        for r in ctx.session.execute(select(ACC.c.id, ACC.c.institution_id, ACC.c.state, ACC.c.account_no,
                                            ACC.c.registered_on)
                                     .where(ACC.c.program_id == ctx.program_id, ACC.c.institution_id.in_(chunk))
                                     .with_for_update()):
            accounts[int(r.institution_id)] = r
    holders: dict[str, int] = {}  # account number → institution, for "one account, two institutions"
    numbers = {ln.account_no for ln in lines}
    taken = select(ACC.c.account_no, ACC.c.institution_id).where(ACC.c.program_id == ctx.program_id,
                                                                 ACC.c.account_no.is_not(None))
    batches = [taken] if len(numbers) > _BULK else [taken.where(ACC.c.account_no.in_(c))
                                                    for c in _chunks(sorted(numbers))]
    for query in batches:
        holders.update((no, int(inst)) for no, inst in ctx.session.execute(query).tuples() if no in numbers)

    seen: dict[str, _AccountLine] = {}
    no_owner: dict[str, _AccountLine] = {}
    todo: list[tuple[_AccountLine, Any]] = []
    unchanged = 0
    for ln in lines:
        inst = _running_institution(ctx, ln.row, ln.code, insts, running, errors)
        if inst is None:
            continue
        if (first := seen.get(ln.code)) is not None:
            if (first.account_no, first.registered_on) != (ln.account_no, ln.registered_on):
                errors.append(_err(ln.row, "机构医保编码", ln.code, "account.conflicting_rows",
                                   f"与第{first.row}行是同一机构，但账号或注册日期不同",
                                   f"same institution as row {first.row} with another account or date"))
            continue
        seen[ln.code] = ln
        other = no_owner.get(ln.account_no)
        holder = holders.get(ln.account_no)
        if (other is not None and other.code != ln.code) or (holder is not None and holder != inst.id):
            errors.append(_err(ln.row, "平台账号", ln.account_no, "account.taken",
                               "该平台账号已属于另一机构" + (f"（第{other.row}行）" if other else ""),
                               "this platform account belongs to another institution"))
            continue
        no_owner[ln.account_no] = ln
        account = accounts.get(inst.id)
        state = AccountState(account.state) if account is not None else None
        if inst.proxy_parent_id is not None or state == AccountState.EXEMPT:
            warnings.append(_warn(ln.row, "机构医保编码", ln.code, "account.exempt",
                                  f"“{inst.name}”由上级机构代采，无需注册平台账号，本行已忽略",
                                  "proxy-procured by its upper institution: no account needed, row ignored"))
            continue
        if account is None:  # pragma: no cover - _ensure_accounts just created it
            errors.append(_err(ln.row, "机构医保编码", ln.code, "account.missing", "没有账户记录", "no account row"))
            continue
        if state == AccountState.REGISTERED:
            if account.account_no == ln.account_no:
                unchanged += 1
            else:
                warnings.append(_warn(ln.row, "平台账号", ln.account_no, "account.already_registered",
                                      f"已登记账号 {account.account_no}（{account.registered_on}），本行已忽略",
                                      f"already registered as {account.account_no}: row ignored"))
            continue
        todo.append((ln, account))
    if errors:
        return 0, unchanged, errors, warnings
    params = []
    for ln, account in todo:
        _, record = ACCOUNT.apply(int(account.id), AccountState(account.state), "register", actor=actor,
                                  role=_role(actor), at=ctx.now, program_id=ctx.program_id,
                                  data={"account_no": ln.account_no, "registered_on": ln.registered_on.isoformat(),
                                        "row": ln.row})
        ctx.audit.append(record)
        params.append({"b_id": int(account.id), "b_no": ln.account_no, "b_on": ln.registered_on})
    if params:
        ctx.session.execute(
            ACC.update().where(ACC.c.id == bindparam("b_id"), ACC.c.state == AccountState.PENDING)
            .values(state=AccountState.REGISTERED, account_no=bindparam("b_no"), registered_on=bindparam("b_on")),
            params)
    return len(params), unchanged, errors, warnings


def _account_line(ctx: _Ctx, cells: _Cells) -> _AccountLine | None:
    code = cells.take("机构医保编码", _parse_code)
    account_no = cells.take("平台账号", _parse_text(64))
    day = cells.take("注册日期", _parse_date)
    if day is not None and (future := _not_future(ctx, cells.number, "注册日期", day)) is not None:
        cells.errors.append(future)
    if cells.errors or code is None or account_no is None or day is None:
        return None
    return _AccountLine(cells.number, code, account_no, day)


def import_platform_accounts(engine: Engine, slug: str, path: Path, *, clock: Clock,
                             actor: str = _SYSTEM) -> PlatformImportResult:
    """Import the provincial platform's account export (机构医保编码, 平台账号, 注册日期).

    All-or-nothing: every bad row is reported in one ImportRejected and nothing is written. Errors:
    malformed cells, an unknown code, an institution not running in the program, one account for
    two institutions, conflicting rows. Warnings (row ignored): a proxy-procured/exempt institution,
    an account already registered under another number. Re-importing changes nothing.
    """
    return _import_platform(engine, slug, path, "platform_accounts", ACCOUNT_COLUMNS, _account_line,
                            _apply_accounts, clock=clock, actor=actor)


def register_account(engine: Engine, slug: str, insurance_code: str, account_no: str, registered_on: date, *,
                     clock: Clock, actor: str = _SYSTEM) -> PlatformImportResult:
    """Record one registration by hand (the CLI); the same checks as a file row, RecordRejected on error."""
    return _one_record(engine, slug, ACCOUNT_COLUMNS, (insurance_code, account_no, registered_on.isoformat()),
                       _account_line, _apply_accounts, clock=clock, actor=actor)


# --------------------------------------------------------------------------- contract imports


@dataclass(frozen=True)
class _ContractLine:
    row: int
    code: str
    enterprise: str
    year: int
    signed_on: date


def _apply_contracts(ctx: _Ctx, lines: list[_ContractLine], actor: str) -> Applied:
    """Move pending contracts to signed; (changed, unchanged, errors, warnings), nothing written on error."""
    _ensure_contracts(ctx)
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    insts = _institutions_by_code(ctx, [ln.code for ln in lines])
    running = _running_status(ctx, [i.id for i in insts.values()])
    enterprises: dict[str, int] = {}
    for names in _chunks(sorted({ln.enterprise for ln in lines})):
        enterprises.update((r.name, int(r.id)) for r in ctx.session.execute(
            select(ENT.c.id, ENT.c.name).where(ENT.c.name.in_(names))))
    contracts: dict[tuple[int, int, int], Any] = {}
    for chunk in _chunks(sorted({i.id for i in insts.values()})):
        for r in ctx.session.execute(select(CON.c.id, CON.c.institution_id, CON.c.enterprise_id, CON.c.year,
                                            CON.c.state, CON.c.signed_on)
                                     .where(CON.c.program_id == ctx.program_id, CON.c.institution_id.in_(chunk))
                                     .with_for_update()):
            contracts[(int(r.institution_id), int(r.enterprise_id), int(r.year))] = r

    seen: dict[tuple[str, str, int], _ContractLine] = {}
    todo: list[tuple[_ContractLine, Any]] = []
    unchanged = 0
    for ln in lines:
        inst = _running_institution(ctx, ln.row, ln.code, insts, running, errors)
        enterprise_id = enterprises.get(ln.enterprise)
        if enterprise_id is None:
            errors.append(_err(ln.row, "企业名称", ln.enterprise, "enterprise.unknown", "系统中没有该名称的企业",
                               "no enterprise with this name"))
        if inst is None or enterprise_id is None:
            continue
        key = (ln.code, ln.enterprise, ln.year)
        if (first := seen.get(key)) is not None:
            if first.signed_on != ln.signed_on:
                errors.append(_err(ln.row, "签订日期", ln.signed_on.isoformat(), "contract.conflicting_rows",
                                   f"与第{first.row}行是同一协议，但签订日期不同",
                                   f"same contract as row {first.row} with another date"))
            continue
        seen[key] = ln
        if inst.proxy_parent_id is not None:
            warnings.append(_warn(ln.row, "机构医保编码", ln.code, "contract.proxy",
                                  f"“{inst.name}”由上级机构代采，不单独签订购销协议，本行已忽略",
                                  "proxy-procured: its upper institution signs, row ignored"))
            continue
        contract = contracts.get((inst.id, enterprise_id, ln.year))
        if contract is None:
            errors.append(_err(ln.row, "企业名称", ln.enterprise, "contract.unknown",
                               f"“{inst.name}”与该企业没有{ln.year}年度的购销协议（该机构未选用该企业的药品）",
                               f"no {ln.year} contract between this institution and enterprise "
                               "(it selected none of the enterprise's drugs)"))
            continue
        state = ContractState(contract.state)
        if state == ContractState.SIGNED:
            if contract.signed_on == ln.signed_on:
                unchanged += 1
            else:
                warnings.append(_warn(ln.row, "签订日期", ln.signed_on.isoformat(), "contract.already_signed",
                                      f"该协议已于 {contract.signed_on} 登记签订，本行已忽略",
                                      f"already recorded as signed on {contract.signed_on}: row ignored"))
            continue
        if state == ContractState.TERMINATED:
            warnings.append(_warn(ln.row, "企业名称", ln.enterprise, "contract.terminated",
                                  "该协议已终止，不能登记签订，本行已忽略", "the contract was terminated: row ignored"))
            continue
        todo.append((ln, contract))
    if errors:
        return 0, unchanged, errors, warnings
    params = []
    for ln, contract in todo:
        _, record = CONTRACT.apply(int(contract.id), ContractState(contract.state), "sign", actor=actor,
                                   role=_role(actor), at=ctx.now, program_id=ctx.program_id,
                                   data={"signed_on": ln.signed_on.isoformat(), "row": ln.row})
        ctx.audit.append(record)
        params.append({"b_id": int(contract.id), "b_on": ln.signed_on})
    if params:
        ctx.session.execute(
            CON.update().where(CON.c.id == bindparam("b_id"), CON.c.state == ContractState.PENDING)
            .values(state=ContractState.SIGNED, signed_on=bindparam("b_on")), params)
    return len(params), unchanged, errors, warnings


def _contract_line(ctx: _Ctx, cells: _Cells) -> _ContractLine | None:
    code = cells.take("机构医保编码", _parse_code)
    enterprise = cells.take("企业名称", _parse_text(200))
    year = cells.take("年度", _parse_year)
    day = cells.take("签订日期", _parse_date)
    if day is not None and (future := _not_future(ctx, cells.number, "签订日期", day)) is not None:
        cells.errors.append(future)
    if cells.errors or code is None or enterprise is None or year is None or day is None:
        return None
    return _ContractLine(cells.number, code, enterprise, year, day)


def import_platform_contracts(engine: Engine, slug: str, path: Path, *, clock: Clock,
                              actor: str = _SYSTEM) -> PlatformImportResult:
    """Import the platform's contract export (机构医保编码, 企业名称, 年度, 签订日期): pending → signed.

    Same rules as the account import. Missing contracts are created first (as reconcile_contracts
    would), so a file may arrive before the flow's next tick; a row naming a contract that cannot
    exist (no selection from that enterprise) is an error.
    """
    return _import_platform(engine, slug, path, "platform_contracts", CONTRACT_COLUMNS, _contract_line,
                            _apply_contracts, clock=clock, actor=actor)


def sign_contract(engine: Engine, slug: str, insurance_code: str, enterprise_name: str, year: int,
                  signed_on: date, *, clock: Clock, actor: str = _SYSTEM) -> PlatformImportResult:
    """Record one signed contract by hand (the CLI); the same checks as a file row."""
    return _one_record(engine, slug, CONTRACT_COLUMNS,
                       (insurance_code, enterprise_name, str(year), signed_on.isoformat()),
                       _contract_line, _apply_contracts, clock=clock, actor=actor)


# --------------------------------------------------------------------------- selections


@dataclass(frozen=True)
class _Offer:
    """A drug of the published list as an institution may select it."""

    product_id: int
    name: str
    special: bool


def _published_offers(ctx: _Ctx, codes: Sequence[str]) -> dict[str, _Offer] | None:
    """The latest published drug list's entries for `codes`, with their product; None if unpublished.

    The list is keyed by drug code; when two enterprises declared one code the product is the one
    whose bidder, manufacturer and winning price match the published entry.
    """
    version = latest_version(ctx.session, ctx.program_id, ListKind.DRUGS)
    if version is None or version.id is None:
        return None
    entries = version_entries(ctx.session, version.id)
    wanted = sorted({c for c in codes if c in entries})
    products: dict[str, list[Any]] = {}
    for chunk in _chunks(wanted):
        for r in ctx.session.execute(select(PROD.c.id, PROD.c.drug_code, PROD.c.bidder, PROD.c.manufacturer,
                                            PROD.c.winning_price).where(PROD.c.drug_code.in_(chunk))
                                     .order_by(PROD.c.id)):
            products.setdefault(r.drug_code, []).append(r)
    offers: dict[str, _Offer] = {}
    for code, candidates in products.items():
        entry = entries[code]

        def matches(r: Any, entry: dict[str, Any] = entry) -> bool:
            return (r.bidder == entry.get("投标企业") and r.manufacturer == entry.get("生产企业")
                    and f"{r.winning_price:.2f}" == entry.get("中选价(元)"))

        chosen = next((r for r in candidates if matches(r)), candidates[0])
        offers[code] = _Offer(int(chosen.id), str(entry.get("产品名称", code)), entry.get("特药") == "是")
    return offers


def _record(ctx: _Ctx, rows: Sequence[SelectionRow], actor: str) -> tuple[SelectionsResult, list[RowError]]:
    """Validate every row against the list and the institution, then upsert; nothing written on error."""
    errors: list[RowError] = []
    offers = _published_offers(ctx, [r.drug_code for r in rows])
    if offers is None:
        return SelectionsResult(len(rows), 0, 0, 0), [_err(
            0, "药品统一编码", "", "drug_list.unpublished", "本项目尚未公布“三进”药品清单，暂不能选用药品",
            "the program's drug list is not published yet: nothing can be selected")]
    insts = _institutions_by_code(ctx, [r.insurance_code for r in rows])
    running = _running_status(ctx, [i.id for i in insts.values()])
    need_designation = ctx.defn.rules.special_drugs_need_designation
    seen: dict[tuple[str, str], int] = {}
    good: list[tuple[SelectionRow, _Inst, _Offer]] = []
    for r in rows:
        inst = _running_institution(ctx, r.row, r.insurance_code, insts, running, errors)
        offer = offers.get(r.drug_code)
        if offer is None:
            errors.append(_err(r.row, "药品统一编码", r.drug_code, "selection.not_on_list",
                               "该药品不在本项目最新公布的“三进”药品清单中",
                               "this drug is not on the program's published drug list"))
        if r.annual_volume < 0:
            errors.append(_err(r.row, "年采购量", str(r.annual_volume), "int.negative", "年采购量不能为负数",
                               "the annual volume cannot be negative"))
        if r.sale_price is not None and r.sale_price <= 0:
            errors.append(_err(r.row, "销售价格(元)", str(r.sale_price), "price.not_positive", "销售价格应大于0",
                               "the sale price must be above zero"))
        if inst is None or offer is None:
            continue
        if offer.special and need_designation and not inst.special_designated:
            errors.append(_err(r.row, "药品统一编码", r.drug_code, "selection.special_needs_designation",
                               f"“{offer.name}”是特药，只有特药定点机构可以选用，“{inst.name}”不是特药定点机构",
                               f"{r.drug_code} is a special drug: only special-drug-designated institutions may "
                               f"select it, and {r.insurance_code} is not one"))
            continue
        if (first := seen.get((r.insurance_code, r.drug_code))) is not None:
            errors.append(_err(r.row, "药品统一编码", r.drug_code, "selection.duplicate",
                               f"与第{first}行是同一机构的同一药品", f"the same institution and drug as row {first}"))
            continue
        seen[(r.insurance_code, r.drug_code)] = r.row
        good.append((r, inst, offer))
    if errors:
        return SelectionsResult(len(rows), 0, 0, 0), errors

    existing: dict[tuple[int, int], Any] = {}
    for chunk in _chunks(sorted({inst.id for _, inst, _ in good})):
        for s in ctx.session.execute(select(SEL.c.id, SEL.c.institution_id, SEL.c.product_id, SEL.c.sale_price,
                                            SEL.c.annual_volume)
                                     .where(SEL.c.program_id == ctx.program_id, SEL.c.institution_id.in_(chunk))):
            existing[(int(s.institution_id), int(s.product_id))] = s
    new_rows: list[dict[str, Any]] = []
    updates: list[tuple[Any, SelectionRow, str]] = []
    unchanged = 0
    for r, inst, offer in good:
        current = existing.get((inst.id, offer.product_id))
        if current is None:
            new_rows.append({"program_id": ctx.program_id, "institution_id": inst.id, "product_id": offer.product_id,
                             "sale_price": r.sale_price, "annual_volume": r.annual_volume})
        elif (current.sale_price, int(current.annual_volume)) != (r.sale_price, r.annual_volume):
            updates.append((current, r, r.drug_code))
        else:
            unchanged += 1
    created = _insert_audited(ctx, SEL, new_rows, ["program_id", "institution_id", "product_id"],
                              entity="selection", action="select", actor=actor,
                              data=["institution_id", "product_id", "sale_price", "annual_volume"])
    if updates:
        ctx.session.execute(
            SEL.update().where(SEL.c.id == bindparam("b_id"))
            .values(sale_price=bindparam("b_price"), annual_volume=bindparam("b_volume")),
            [{"b_id": int(cur.id), "b_price": r.sale_price, "b_volume": r.annual_volume} for cur, r, _ in updates])
        for cur, r, code in updates:
            ctx.audit.append(AuditRecord(
                entity="selection", entity_id=int(cur.id), action="update", from_state=None, to_state=None,
                actor=actor, role=_role(actor), at=ctx.now, program_id=ctx.program_id,
                data={"drug_code": code, "row": r.row,
                      "before": {"sale_price": None if cur.sale_price is None else str(cur.sale_price),
                                 "annual_volume": int(cur.annual_volume)},
                      "after": {"sale_price": None if r.sale_price is None else str(r.sale_price),
                                "annual_volume": r.annual_volume}}))
    return SelectionsResult(len(rows), created, len(updates), unchanged), []


def record_selections(engine: Engine, slug: str, rows: list[SelectionRow], *, clock: Clock,
                      actor: str = _SYSTEM, source: str = "selections") -> SelectionsResult:
    """Record institutions' drug selections, all or nothing; ImportRejected lists every bad row.

    Only drugs on the latest published drug list may be selected, and special drugs (特药 = 是)
    only by special-designated institutions where the program requires it (000 §三(三)). A row
    for an already selected drug updates its price and volume. Pending contracts pick the change
    up on the next reconcile_contracts.
    """
    with transaction(engine) as session:
        ctx = _context(session, slug, clock)
        result, errors = _record(ctx, rows, actor)
        if errors:
            raise ImportRejected(source, errors)
        _write_audit(ctx)
        return result


def _price(raw: str, column: str) -> Decimal:
    return validate_price(raw, column)


def import_selections(engine: Engine, slug: str, path: Path, *, clock: Clock,
                      actor: str = _SYSTEM) -> SelectionsResult:
    """Import a selections file (机构医保编码, 药品统一编码, 销售价格(元), 年采购量), all or nothing.

    Unlike the platform exports, the same bytes are applied again rather than skipped: selections
    are values, not forward-only states, and re-sending an older file is a deliberate correction.
    """
    data, sheet = _read_sheet(path)
    columns = _columns(sheet, path.name, SELECTION_COLUMNS)
    errors: list[RowError] = []
    rows: list[SelectionRow] = []
    for r in sheet.rows:
        cells = _Cells(sheet, r.number, r.cells, columns)
        code = cells.take("机构医保编码", _parse_code)
        drug = cells.take("药品统一编码", validate_drug_code)
        price = cells.take("销售价格(元)", _price)
        volume = cells.take("年采购量", _parse_volume)
        errors.extend(cells.errors)
        if not cells.errors and code is not None and drug is not None and price is not None and volume is not None:
            rows.append(SelectionRow(code, drug, price, volume, r.number))
    if not sheet.rows:
        errors.append(_err(sheet.header_row, "表头", "", "file.no_rows", "文件中没有数据行", "the file has no rows"))
    with transaction(engine) as session:
        ctx = _context(session, slug, clock)
        result, more = _record(ctx, rows, actor)
        errors.extend(more)
        if errors:
            raise ImportRejected(path.name, errors)
        _write_audit(ctx)
        result.rows = len(sheet.rows)
        result.import_id = _record_import(ctx, "selections", hashlib.sha256(data).hexdigest(), path.name,
                                          len(sheet.rows), result.created, actor)
        return result
