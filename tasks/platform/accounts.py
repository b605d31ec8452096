"""Phase 4, platform accounts (平台账户注册): the rows the rules require, and the registrations that fill them.

No gate: reconcile_accounts gives every running institution its account row and counts the
laggards; the import of the provincial platform's account export (and register_account, its
one-row CLI form) moves rows forward. A proxy-procured (代采) clinic never registers an account:
its upper institution buys and settles for it (seed 000 §三(四), §四(一)), so its row is ``exempt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, select

from core.db import transaction
from models.calendar import NO_DUE, due_columns
from models.clock import Clock, local_date
from models.program_definition import PhaseName
from models.states import AccountState, ApplicationState
from models.transitions import ACCOUNT
from models.workdays import Deadline, fixed_deadline
from tasks.intake.spreadsheets import RowError, RowWarning
from tasks.phases.enrollment import LATE_BATCH_ACCOUNT_WORKING_DAYS
from tasks.platform.context import (
    ACC,
    APP,
    BATCH,
    BULK,
    INST,
    SYSTEM,
    Ctx,
    chunks,
    flush_audit,
    insert_audited,
    program_context,
    role_of,
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
    row_error,
    row_warning,
    running_institution,
)
from tasks.platform.laggards import Laggard, account_laggards, sorted_laggards

__all__ = [
    "ACCOUNT_COLUMNS",
    "AccountsReport",
    "import_platform_accounts",
    "reconcile_accounts",
    "register_account",
]

# Documented columns of the file; other columns are ignored (platform exports carry more).
ACCOUNT_COLUMNS: tuple[str, ...] = ("机构医保编码", "平台账号", "注册日期")


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


# --------------------------------------------------------------------------- reconciling


def _account_due(ctx: Ctx, started: date) -> Deadline:
    """The accounts window's close, or 20 working days for a batch that ran after it closed.

    Same rule as tasks/phases/enrollment.py, but from the day the institution started running, so a
    backfilled row gets the deadline it would have had.
    """
    spec = ctx.defn.phase(PhaseName.ACCOUNTS)
    if spec is not None and spec.window.closes is not None and started <= spec.window.closes:
        return fixed_deadline(spec.window.closes)
    start = max(started, spec.window.opens) if spec is not None else started
    return ctx.wdays.deadline(start, LATE_BATCH_ACCOUNT_WORKING_DAYS)


def _ensure_accounts(ctx: Ctx) -> int:
    """Give every running institution lacking one its account row: exempt if proxy-procured."""
    missing = ctx.session.execute(
        select(INST.c.id, INST.c.proxy_parent_id, BATCH.c.running_at)
        .select_from(APP.join(INST, INST.c.id == APP.c.institution_id)
                     .outerjoin(BATCH, BATCH.c.id == APP.c.batch_id)
                     .outerjoin(ACC, and_(ACC.c.institution_id == INST.c.id, ACC.c.program_id == ctx.program_id)))
        .where(APP.c.program_id == ctx.program_id, APP.c.state == ApplicationState.RUNNING, ACC.c.id.is_(None))
    ).tuples()
    due_by_run: dict[datetime | None, Deadline] = {}  # a batch's institutions share one deadline
    rows: dict[int, dict[str, Any]] = {}
    for inst_id, parent_id, running_at in missing:
        due: dict[str, Any] = NO_DUE
        if parent_id is None:
            if running_at not in due_by_run:
                started = local_date(running_at) if running_at is not None else ctx.today
                due_by_run[running_at] = _account_due(ctx, started)
            due = due_columns(due_by_run[running_at])
        state = AccountState.EXEMPT if parent_id is not None else AccountState.PENDING
        rows[int(inst_id)] = {"program_id": ctx.program_id, "institution_id": int(inst_id), "state": state, **due}
    return insert_audited(ctx, ACC, list(rows.values()), ["program_id", "institution_id"],
                          entity=ACCOUNT.entity, action="create", data=["institution_id", "due_on"])


def reconcile_accounts(engine: Engine, slug: str, *, clock: Clock) -> AccountsReport:
    """Make sure every running institution has its account row, then count and list laggards.

    Enrollment creates the rows when a batch runs; this repairs any that are missing (a crash, an
    institution reinstated by hand) and is what the accounts flow calls on every tick.
    """
    with transaction(engine) as session:
        ctx = program_context(session, slug, clock)
        created = _ensure_accounts(ctx)
        flush_audit(ctx)
        counts = dict.fromkeys(AccountState, 0)
        for state, n in session.execute(select(ACC.c.state, func.count()).where(
                ACC.c.program_id == ctx.program_id).group_by(ACC.c.state)):
            counts[AccountState(state)] = int(n)
        proxied = [int(i) for i in session.execute(
            select(ACC.c.institution_id).join(INST, INST.c.id == ACC.c.institution_id)
            .where(ACC.c.program_id == ctx.program_id, ACC.c.state == AccountState.PENDING,
                   INST.c.proxy_parent_id.is_not(None))).scalars()]
        lag = sorted_laggards(account_laggards(ctx))
        return AccountsReport(created=created, counts=counts, overdue=sum(g.overdue for g in lag),
                              due_soon=sum(not g.overdue for g in lag), laggards=lag,
                              proxy_with_pending_account=sorted(proxied))


# --------------------------------------------------------------------------- the platform's account export


@dataclass(frozen=True)
class _AccountLine:
    row: int
    code: str
    account_no: str
    registered_on: date


def _apply_accounts(ctx: Ctx, lines: list[_AccountLine], actor: str) -> Applied:
    """Move pending accounts to registered; (changed, unchanged, errors, warnings), nothing written on error.

    A row for a proxy-procured or exempt institution is a warning, not an error: the platform may
    list the upper institution's account against its clinics, and the file is otherwise good.
    """
    _ensure_accounts(ctx)
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    insts = institutions_by_code(ctx, [ln.code for ln in lines])
    running = running_status(ctx, [i.id for i in insts.values()])
    accounts: dict[int, Any] = {}
    ids = sorted({i.id for i in insts.values()})
    for chunk in chunks(ids):
        for r in ctx.session.execute(select(ACC.c.id, ACC.c.institution_id, ACC.c.state, ACC.c.account_no,
                                            ACC.c.registered_on)
                                     .where(ACC.c.program_id == ctx.program_id, ACC.c.institution_id.in_(chunk))
                                     .with_for_update()):
            accounts[int(r.institution_id)] = r
    holders: dict[str, int] = {}  # account number → institution, for "one account, two institutions"
    numbers = {ln.account_no for ln in lines}
    taken = select(ACC.c.account_no, ACC.c.institution_id).where(ACC.c.program_id == ctx.program_id,
                                                                 ACC.c.account_no.is_not(None))
    batches = [taken] if len(numbers) > BULK else [taken.where(ACC.c.account_no.in_(c))
                                                   for c in chunks(sorted(numbers))]
    for query in batches:
        holders.update((no, int(inst)) for no, inst in ctx.session.execute(query).tuples() if no in numbers)

    seen: dict[str, _AccountLine] = {}
    no_owner: dict[str, _AccountLine] = {}
    todo: list[tuple[_AccountLine, Any]] = []
    unchanged = 0
    for ln in lines:
        inst = running_institution(ctx, ln.row, ln.code, insts, running, errors)
        if inst is None:
            continue
        if (first := seen.get(ln.code)) is not None:
            if (first.account_no, first.registered_on) != (ln.account_no, ln.registered_on):
                errors.append(row_error(ln.row, "机构医保编码", ln.code, "account.conflicting_rows",
                                        f"与第{first.row}行是同一机构，但账号或注册日期不同",
                                        f"same institution as row {first.row} with another account or date"))
            continue
        seen[ln.code] = ln
        other = no_owner.get(ln.account_no)
        holder = holders.get(ln.account_no)
        if (other is not None and other.code != ln.code) or (holder is not None and holder != inst.id):
            errors.append(row_error(ln.row, "平台账号", ln.account_no, "account.taken",
                                    "该平台账号已属于另一机构" + (f"（第{other.row}行）" if other else ""),
                                    "this platform account belongs to another institution"))
            continue
        no_owner[ln.account_no] = ln
        account = accounts.get(inst.id)
        state = AccountState(account.state) if account is not None else None
        if inst.proxy_parent_id is not None or state == AccountState.EXEMPT:
            warnings.append(row_warning(ln.row, "机构医保编码", ln.code, "account.exempt",
                                        f"“{inst.name}”由上级机构代采，无需注册平台账号，本行已忽略",
                                        "proxy-procured by its upper institution: no account needed, row ignored"))
            continue
        if account is None:  # pragma: no cover - _ensure_accounts just created it
            errors.append(row_error(ln.row, "机构医保编码", ln.code, "account.missing", "没有账户记录", "no account row"))
            continue
        if state == AccountState.REGISTERED:
            if account.account_no == ln.account_no:
                unchanged += 1
            else:
                warnings.append(row_warning(ln.row, "平台账号", ln.account_no, "account.already_registered",
                                            f"已登记账号 {account.account_no}（{account.registered_on}），本行已忽略",
                                            f"already registered as {account.account_no}: row ignored"))
            continue
        todo.append((ln, account))
    if errors:
        return 0, unchanged, errors, warnings
    params = []
    for ln, account in todo:
        _, record = ACCOUNT.apply(int(account.id), AccountState(account.state), "register", actor=actor,
                                  role=role_of(actor), at=ctx.now, program_id=ctx.program_id,
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


def _account_line(ctx: Ctx, cells: Cells) -> _AccountLine | None:
    code = cells.take("机构医保编码", parse_code)
    account_no = cells.take("平台账号", parse_text(64))
    day = cells.take("注册日期", parse_date)
    if day is not None and (future := not_future(ctx, cells.number, "注册日期", day)) is not None:
        cells.errors.append(future)
    if cells.errors or code is None or account_no is None or day is None:
        return None
    return _AccountLine(cells.number, code, account_no, day)


def import_platform_accounts(engine: Engine, slug: str, path: Path, *, clock: Clock,
                             actor: str = SYSTEM) -> PlatformImportResult:
    """Import the provincial platform's account export (机构医保编码, 平台账号, 注册日期).

    All-or-nothing: every bad row is reported in one ImportRejected and nothing is written. Errors:
    malformed cells, an unknown code, an institution not running in the program, one account for
    two institutions, conflicting rows. Warnings (row ignored): a proxy-procured/exempt institution,
    an account already registered under another number. Re-importing changes nothing.
    """
    return import_platform(engine, slug, path, "platform_accounts", ACCOUNT_COLUMNS, _account_line,
                           _apply_accounts, clock=clock, actor=actor)


def register_account(engine: Engine, slug: str, insurance_code: str, account_no: str, registered_on: date, *,
                     clock: Clock, actor: str = SYSTEM) -> PlatformImportResult:
    """Record one registration by hand (the CLI); the same checks as a file row, RecordRejected on error."""
    return one_record(engine, slug, ACCOUNT_COLUMNS, (insurance_code, account_no, registered_on.isoformat()),
                      _account_line, _apply_accounts, clock=clock, actor=actor)
