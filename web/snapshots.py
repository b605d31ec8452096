"""The overview's figures, computed once per change of the data and shared by every viewer.

At 100,000 institutions the overview's counts (phase funnels, coverage by district and kind,
laggards by kind, open violations by rule and district) scan hundreds of thousands of rows: measured 0.3–0.5 s on SQLite even with their
indexes, for a page that must answer in 100 ms. The figures only change when the program's data
does, so the web process keeps the last computation per program with a *change token*, read in one
cheap query on every view: the newest id of every table whose rows move the figures. Every state
change writes an audit row in its transaction (the house rule) and every new row gets a new id, so
the token moves with the data; the clock's day and the program file's hash are in the key too.
Updates that add no row and no audit row (none in the product today) are caught by the TTL.

The token is read before the figures, so a change committed during a computation makes the next
view compute again instead of keeping a stale result. One computation per program at a time:
concurrent viewers wait for it rather than repeat it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, Table, func, select
from sqlmodel import Session, SQLModel

from models.audit import AuditEvent
from models.catalog import ListVersion
from models.clock import Clock
from models.enrollment import Application, Batch, Gate, Institution
from models.operations import Contract, Payment, PlatformAccount, PurchaseOrder
from models.program import AllianceInvitation
from models.progress import ProgramSnapshot
from models.register import RegisterEntry
from tasks.compliance.views import open_counts
from tasks.gates.districts import DistrictGates, district_gates
from tasks.programs import get_program
from tasks.reports.coverage_report import CoverageReport, Past, coverage_history, coverage_report
from tasks.reports.progress import funnel_counts, snapshots
from tasks.status import (
    Coverage,
    LaggardPage,
    ProgramStatus,
    coverage,
    laggard_counts_by_district,
    laggard_page,
    program_status,
    summed,
)

log = logging.getLogger(__name__)

# Tables whose new rows change the overview; their updates write audit rows (AuditEvent is first).
WATCHED: tuple[Any, ...] = (AuditEvent, Application, Institution, Batch, Gate, ListVersion, PlatformAccount, Contract,
                            Payment, PurchaseOrder, AllianceInvitation, RegisterEntry, ProgramSnapshot)
TTL_SECONDS = 60.0
OVERVIEW_LAGGARDS = 20
TREND_WEEKS = 4  # the projection's rate: the last four weeks, as `sanjin report coverage` by default
TREND_HISTORY = 8  # points four weeks apart before the last four weeks: the line over about the last nine months


def _table(model: Any) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


@dataclass(frozen=True)
class Overview:
    status: ProgramStatus
    coverage: Coverage
    laggards: LaggardPage
    laggards_by_district: dict[str, dict[str, dict[str, int]]]  # district → kind → overdue / due_soon
    violations: dict[tuple[str, str | None], int]  # open violations by (rule code, district); None: no district
    coverage_trend: CoverageReport  # coverage over time (weekly, then every four weeks back) and each target's projection
    districts: list[DistrictGates]  # each district's gates: open, past due, expired, carried over (stalled first)
    funnel: dict[str, int]  # institutions at each stage now, and non-empty batches by state (tasks/reports/progress)
    trend: list[tuple[date, dict[str, int]]]  # the daily snapshots up to today, today's counts last
    computed_at: datetime
    seconds: float  # how long the computation took (shown on the page, and in the benchmark)


def change_token(session: Session) -> tuple[int, ...]:
    """max(id) of every watched table, in one statement (each is one primary-key index lookup)."""
    columns = [select(func.max(_table(m).c.id)).scalar_subquery() for m in WATCHED]
    return tuple(int(v or 0) for v in session.execute(select(*columns)).one())


class OverviewCache:
    def __init__(self, ttl_seconds: float = TTL_SECONDS) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[tuple[Any, ...], float, Overview]] = {}
        self._locks: dict[str, threading.Lock] = {}
        # The coverage line's past points, per program for a day and a register version (they do not move with
        # today's data): the overview's recomputation then costs no more than before the line was drawn.
        self._history: dict[str, tuple[tuple[Any, ...], Past]] = {}
        self._guard = threading.Lock()
        self._refreshing: set[str] = set()  # programs whose expired entry a thread is recomputing
        self.computed = 0  # computations so far (tests and the benchmark read it)

    def clear(self) -> None:
        """Forget every program's figures (the next view computes them again)."""
        with self._guard:  # the coverage line's past stays: it is keyed by what can move it (day, register)
            self._entries.clear()

    def _lock(self, slug: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(slug, threading.Lock())

    def get(self, engine: Engine, slug: str, clock: Clock, *, simulated: bool) -> Overview:
        """The program's figures as of now; raises tasks.programs.UnknownProgram for an unknown slug."""
        today = clock.today()
        with Session(engine) as session:
            program, _ = get_program(session, slug)
            key = (program.content_hash, today, simulated, change_token(session))
        entry = self._entries.get(slug)
        if entry is not None and entry[0] == key:
            if time.monotonic() - entry[1] >= self.ttl:  # unchanged data, only old: refreshed behind this view
                self._refresh_later(engine, slug, clock, simulated, key)
            return entry[2]
        return self._compute(engine, slug, clock, simulated, key, program.content_hash, today)

    def _refresh_later(self, engine: Engine, slug: str, clock: Clock, simulated: bool, key: tuple[Any, ...]) -> None:
        """Recompute an expired entry in a thread while views keep the one they have.

        The TTL only guards against changes the token cannot see (none in the product today), so a view
        need not wait for it: under load a recomputation takes seconds (3.6 s CPU at 100,000 institutions),
        and every laggards page and download that fell on an expired entry paid it before its first byte
        (the whole-list CSV's 5.2 s to its first byte, issue #19). A change the token sees still makes the
        next view compute and wait, as before.
        """
        with self._guard:
            if slug in self._refreshing:
                return
            self._refreshing.add(slug)

        def refresh() -> None:
            try:
                self._compute(engine, slug, clock, simulated, key, key[0], key[1])
            except Exception:  # the next view computes (and shows the error) itself
                log.exception("background refresh of the overview of %s failed", slug)
            finally:
                with self._guard:
                    self._refreshing.discard(slug)

        threading.Thread(target=refresh, name=f"overview-{slug}", daemon=True).start()

    def _compute(self, engine: Engine, slug: str, clock: Clock, simulated: bool, key: tuple[Any, ...],
                 content_hash: str, today: date) -> Overview:
        with self._lock(slug):
            entry = self._entries.get(slug)
            if entry is not None and entry[0] == key and time.monotonic() - entry[1] < self.ttl:
                return entry[2]  # computed meanwhile by another view or the refresh
            history_key = (content_hash, today, key[-1][-1])  # the newest register row: a new version
            kept = self._history.get(slug)
            if kept is None or kept[0] != history_key:
                kept = (history_key, coverage_history(engine, slug, today, weeks=TREND_WEEKS, history=TREND_HISTORY))
                self._history[slug] = kept
            overview = compute_overview(engine, slug, clock, today, simulated=simulated, past=kept[1])
            self._entries[slug] = (key, time.monotonic(), overview)
            self.computed += 1
            return overview


def compute_overview(engine: Engine, slug: str, clock: Clock, today: date, *, simulated: bool,
                     past: Past | None = None) -> Overview:
    start = time.perf_counter()
    status = program_status(engine, slug, clock=clock, simulated=simulated, outbox=False)
    with Session(engine) as session:
        program, defn = get_program(session, slug)
        assert program.id is not None
        cover = coverage(session, program.id)
        by_district = laggard_counts_by_district(session, program.id, defn, today)
        late = laggard_page(session, program.id, defn, today, limit=OVERVIEW_LAGGARDS, counts=summed(by_district))
        districts = district_gates(session, program.id, defn, today)
        funnel = funnel_counts(session, program.id)
        trend = [(day, counts) for day, counts in snapshots(session, program.id, until=today) if day < today]
        trend.append((today, funnel))  # today as it stands, whether or not the day's snapshot is taken yet
    # A pass that opens or closes violations writes audit rows (one per rule and state,
    # tasks/compliance/violation_audit.py): the token sees them.
    violations = {(rule.value, district): n for (rule, district), n in open_counts(engine, program.id).items()}
    coverage_trend = coverage_report(engine, slug, clock=clock, weeks=TREND_WEEKS, history=TREND_HISTORY, past=past,
                                     now=cover)
    return Overview(status, cover, late, by_district, violations, coverage_trend, districts, funnel, trend, datetime.now(UTC),
                    time.perf_counter() - start)
