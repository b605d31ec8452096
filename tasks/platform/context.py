"""The plumbing phases 4 and 5 share (accounts, contracts, selections), so every writer there works alike.

Every function of tasks.platform.accounts, tasks.platform.contracts, tasks.platform.selections and tasks.platform.laggards runs in one
transaction with bulk statements (one query per table, one executemany per write, audit rows of
bulk creations written by the database itself), never an ORM round trip per row: 100,000
institutions reconcile in seconds. Writers lock the program row (program_context), so a flow tick
and an import never interleave. Every state change has its audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import String, Table, cast, func, literal, literal_column, null, select
from sqlmodel import Session

from core.bulk import insert_rows, table_of, write_audit
from models.audit import AuditEvent
from models.base import AwareDateTime
from models.catalog import Enterprise, Product
from models.clock import Clock
from models.enrollment import Application, Batch, Institution
from models.operations import Contract, PlatformAccount, PurchaseOrder, Selection
from models.program import Program
from models.program_definition import ProgramDefinition
from models.states import ApplicationState, Role
from models.transitions import AuditRecord
from models.workdays import WorkingDays
from tasks.calendar import working_days_for
from tasks.programs import get_program, lock_program

__all__ = [
    "ACC",
    "APP",
    "AUD",
    "BATCH",
    "BULK",
    "CON",
    "ENT",
    "INST",
    "PROD",
    "PROGRAM",
    "SEL",
    "SYSTEM",
    "Ctx",
    "chunks",
    "flush_audit",
    "insert_audited",
    "program_context",
    "role_of",
    "running_filter",
    "running_status",
]

_CHUNK = 500  # IN-list size, far below both databases' bind-parameter limits
BULK = 2000  # above this many keys, one query for the whole program beats IN lists
SYSTEM = "system"

T = TypeVar("T")


ACC, CON, SEL = table_of(PlatformAccount), table_of(Contract), table_of(Selection)
INST, APP, BATCH = table_of(Institution), table_of(Application), table_of(Batch)
ENT, PROD, ORD = table_of(Enterprise), table_of(Product), table_of(PurchaseOrder)
AUD, PROGRAM = table_of(AuditEvent), table_of(Program)


def chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def role_of(actor: str) -> Role:
    """Imports and CLI records are a bureau person's act; reconcilers are the system's."""
    return Role.SYSTEM if actor == SYSTEM else Role.PROGRAM_MANAGER


@dataclass
class Ctx:
    """One transaction's program, calendar and clock, and the audit rows flush_audit will write."""

    session: Session
    program_id: int
    slug: str
    defn: ProgramDefinition
    wdays: WorkingDays
    today: date
    now: datetime
    audit: list[AuditRecord] = field(default_factory=list)


def flush_audit(ctx: Ctx) -> None:
    """The collected audit rows, in one Core statement (core.bulk.write_audit)."""
    if ctx.audit:
        write_audit(ctx.session, ctx.audit)
        ctx.audit.clear()


def program_context(session: Session, slug: str, clock: Clock, *, lock: bool = True) -> Ctx:
    """The program and today's calendar; writers lock the program row so two runs never interleave.

    Two reconcilers (a flow tick and an import) on one program would otherwise race on the same
    natural keys and audit each other's rows; other programs are not blocked.
    """
    program, defn = get_program(session, slug)
    assert program.id is not None
    if lock:  # a no-op UPDATE, not FOR UPDATE: SQLite ignores FOR UPDATE, but takes its write lock for an UPDATE
        lock_program(session, program.id, slug=slug, what="platform reconciliation")
    return Ctx(session, program.id, slug, defn, working_days_for(session, defn), clock.today(), clock.now())


def insert_audited(ctx: Ctx, t: Table, rows: Sequence[dict[str, Any]], key: Sequence[str], *, entity: str,
                   action: str, data: Sequence[str], actor: str = SYSTEM) -> int:
    """Insert rows skipping natural-key conflicts, plus one audit row per row really inserted; how many.

    The database writes the audit rows itself (INSERT … SELECT over the new ids): building and
    binding 200,000 audit rows in Python costs more than the inserts, and RETURNING through
    psycopg's multi-row statements costs more still. The program row lock taken by program_context
    makes "ids above the previous maximum" exactly this call's rows.
    """
    if not rows:
        return 0
    before = int(ctx.session.execute(select(func.max(t.c.id))).scalar() or 0)
    postgres = ctx.session.get_bind().dialect.name == "postgresql"
    insert_rows(ctx.session, t, rows, conflict_key=key)  # one statement on PostgreSQL too (core.bulk)
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
               t.c.state if "state" in t.c else null(), literal(actor[:64]), literal(role_of(actor).value), null(),
               payload, literal(ctx.now, AwareDateTime())).where(*new)))
    return int(ctx.session.execute(select(func.count()).select_from(t).where(*new)).scalar_one())


def running_filter(program_id: int) -> Any:
    """Institution ids with a RUNNING application in the program, as a subquery."""
    return select(APP.c.institution_id).where(APP.c.program_id == program_id,
                                              APP.c.state == ApplicationState.RUNNING)


def running_status(ctx: Ctx, institution_ids: Sequence[int]) -> set[int]:
    """Which of these institutions run in the program.

    Many ids: one query for the whole program. Chunked IN lists would each scan the
    (program_id, state) index, i.e. the whole program once per 500 ids.
    """
    query = running_filter(ctx.program_id)
    wanted = set(institution_ids)
    if len(wanted) > BULK:
        return {int(i) for i in ctx.session.execute(query).scalars() if int(i) in wanted}
    running: set[int] = set()
    for chunk in chunks(sorted(wanted)):
        running.update(int(i) for i in ctx.session.execute(query.where(APP.c.institution_id.in_(chunk))).scalars())
    return running
