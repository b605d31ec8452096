"""Entering the State Council's schedule of a year, and recomputing every provisional deadline it settles.

Entering is one transaction: the year's days, its audit row, and each provisional date recomputed with the
new schedule (an audit row per changed row, written by the database from the rows themselves), so a crash
leaves either the old provisional dates or the settled ones, never a mix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, String, and_, delete, func, insert, literal, select, update
from sqlalchemy import Table as CoreTable
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from core.bulk import table_of, write_audit
from core.db import transaction
from models.calendar import CalendarDay, CalendarYear
from models.clock import Clock
from models.enrollment import Gate
from models.holiday_notice import HolidayNotice
from models.operations import Contract, Payment, PlatformAccount, PurchaseOrder
from models.program import Program, User
from models.program_definition import ProgramDefinition
from models.states import Role
from models.transitions import AuditRecord
from models.workdays import WorkingDays, package_years
from tasks.calendar.working_days import entered_overrides

# Every stored deadline that may be provisional, with the audit trail's name for its row.
DUE_TABLES: tuple[tuple[type[Any], str], ...] = (
    (Gate, "gate"), (PlatformAccount, "platform_account"), (Contract, "contract"), (Payment, "payment"))


class CalendarEntryError(ValueError):
    """Entering a schedule was refused (an unknown person, not a manager); nothing was written."""


@dataclass
class EntryReport:
    year: int
    already_entered: bool = False
    replaced: bool = False
    recomputed: dict[str, int] = field(default_factory=dict)  # audit entity → rows whose date changed or settled


def _program_rows(table: CoreTable, program_id: int) -> Any:
    if "program_id" in table.c:
        return table.c.program_id == program_id
    orders = table_of(PurchaseOrder)
    return table.c.order_id.in_(select(orders.c.id).where(orders.c.program_id == program_id))


ENTRY_REASON = "录入法定节假日安排后重新计算期限"
SETTLE_REASON = "日历已有该年安排，暂定期限改为正式期限"


def recompute_provisional(session: Session, *, actor: str, role: Role, at: datetime,
                          program_id: int | None = None, reason: str = ENTRY_REASON) -> dict[str, int]:
    """Recompute every provisional deadline with the calendar as it now stands; audit each changed row."""
    done: dict[str, int] = {}
    query = select(Program.id, Program.definition)  # type: ignore[call-overload]
    if program_id is not None:
        query = query.where(Program.id == program_id)
    programs = {int(pid): ProgramDefinition.model_validate(d) for pid, d in session.execute(query).all()}
    # Recomputed provisionally whatever each program's policy: a date still spanning another unknown year stays
    # 暂定 rather than failing the whole entry (a strict program never stored one; one that became strict may).
    overrides = entered_overrides(session)
    calendars: dict[int, WorkingDays] = {pid: WorkingDays(overrides, unknown_year="provisional") for pid in programs}
    audit = table_of_audit()
    for model, entity in DUE_TABLES:
        table = table_of(model)
        for pid, wdays in calendars.items():
            bases = session.execute(
                select(table.c.due_from, table.c.due_working_days, table.c.due_on).distinct()
                .where(table.c.due_on_provisional, _program_rows(table, pid))).all()
            for start, n, old in bases:
                new = wdays.deadline(start, int(n))
                if new.day == old and new.provisional:
                    continue  # still waiting for another year's schedule, and the same date: nothing to record
                rows = and_(table.c.due_on_provisional, _program_rows(table, pid), table.c.due_from == start,
                            table.c.due_working_days == n, table.c.due_on == old)
                data = {"from": old.isoformat(), "to": new.day.isoformat(), "provisional": new.provisional}
                session.execute(insert(audit).from_select(
                    ["program_id", "entity", "entity_id", "action", "actor", "role", "reason", "data", "at"],
                    select(literal(pid, Integer), literal(entity, String), func.cast(table.c.id, String),
                           literal("deadline_recomputed", String), literal(actor[:64], String),
                           literal(role.value, String), literal(reason, String),
                           literal(data, audit.c.data.type), literal(at, audit.c.at.type)).where(rows)))
                changed = session.execute(update(table).where(rows).values(
                    due_on=new.day, due_on_provisional=new.provisional,
                    due_from=start if new.provisional else None,
                    due_working_days=n if new.provisional else None))
                done[entity] = done.get(entity, 0) + int(getattr(changed, "rowcount", 0) or 0)
    return done


def settle_provisional(engine: Engine, program: str, *, clock: Clock) -> dict[str, int]:
    """The daily pass's safety net: settle provisional dates whose year is now known without an entry.

    Two ways a year becomes known behind the entry's back: an upgraded calendar package that ships it, and a
    pass that computed a date before an entry committed and wrote it after (its row missed the entry's
    recomputation). Either way the row says 暂定 for a date that is no longer provisional; this recomputes it,
    audited as the system's, and does nothing (one cheap query per table) when every such row still waits.
    """
    with transaction(engine) as session:
        query = select(Program.id).where(Program.slug == program)  # type: ignore[call-overload]
        program_id = session.execute(query).scalar_one_or_none()
        if program_id is None:
            return {}
        return recompute_provisional(session, actor="system", role=Role.SYSTEM, at=clock.now(),
                                     program_id=int(program_id), reason=SETTLE_REASON)


def table_of_audit() -> CoreTable:
    from models.audit import AuditEvent

    return table_of(AuditEvent)


def enter_schedule(engine: Engine, notice: HolidayNotice, text: str, *, user_name: str,
                   clock: Clock) -> EntryReport:
    """Store a year's official schedule (replacing an earlier entry of the same year) and settle its dates."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    report = EntryReport(notice.year)
    with transaction(engine) as session:
        user = session.exec(sqlmodel_select(User).where(User.name == user_name)).first()
        if user is None or not user.active:
            raise CalendarEntryError(f"没有名为“{user_name}”的在用账户 / no active user named {user_name!r}")
        if user.role not in (Role.PROGRAM_MANAGER, Role.SYSTEM):
            raise CalendarEntryError("只有项目管理员可以录入节假日安排 / only a program manager may enter the "
                                     "holiday schedule")
        previous = session.get(CalendarYear, notice.year)
        if previous is not None and previous.text_sha256 == digest:
            report.already_entered = True
            return report
        now = clock.now()
        if previous is not None:
            report.replaced = True
            session.execute(delete(CalendarDay).where(CalendarDay.year == notice.year))  # type: ignore[arg-type]
            session.delete(previous)
            session.flush()
        title = f"国务院办公厅关于{notice.year}年部分节假日安排的通知"
        session.add(CalendarYear(year=notice.year, title=title, text_sha256=digest, entered_at=now,
                                 entered_by=user.name))
        days = [{"day": d, "year": notice.year, "working": False, "festival": name}
                for d, name in notice.rest_days.items()]
        days += [{"day": d, "year": notice.year, "working": True, "festival": name}
                 for d, name in notice.workdays.items()]
        session.flush()
        session.execute(insert(table_of(CalendarDay)), days)
        write_audit(session, [AuditRecord(
            entity="calendar", entity_id=notice.year, action="enter_schedule", from_state=None, to_state=None,
            actor=user.name, role=user.role, at=now, reason=title, program_id=None,
            data={"rest_days": len(notice.rest_days), "workdays": len(notice.workdays), "replaced": report.replaced,
                  "sha256": digest})])
        report.recomputed = recompute_provisional(session, actor=user.name, role=user.role, at=now)
    return report


@dataclass(frozen=True)
class YearStatus:
    year: int
    standing: str  # package | entered | provisional
    entered_at: datetime | None = None
    entered_by: str | None = None
    provisional_dates: int = 0  # stored deadlines still waiting for this year's schedule


STANDING_LABELS = {"package": "官方（chinesecalendar 软件包）", "entered": "官方（本局录入）",
                   "provisional": "暂定（未公布，按法定节日计算）"}


def calendar_status(engine: Engine, today: date) -> list[YearStatus]:
    """Last year to two years ahead, plus every entered year: where each year's schedule comes from."""
    with Session(engine) as session:
        entered = {int(r.year): r for r in session.execute(select(CalendarYear)).scalars()}
        overrides = entered_overrides(session)
        waiting: dict[int, int] = {}
        for model, _entity in DUE_TABLES:
            table = table_of(model)
            for due, n in session.execute(select(table.c.due_on, func.count()).where(table.c.due_on_provisional)
                                          .group_by(table.c.due_on)).all():
                waiting[due.year] = waiting.get(due.year, 0) + int(n)
    out = []
    for year in sorted(set(range(today.year - 1, today.year + 3)) | set(entered) | set(waiting)):
        row = entered.get(year)
        if row is not None:
            out.append(YearStatus(year, "entered", row.entered_at, row.entered_by, waiting.get(year, 0)))
        elif year in package_years() or year in overrides.years:
            out.append(YearStatus(year, "package" if year in package_years() else "entered",
                                  provisional_dates=waiting.get(year, 0)))
        else:
            out.append(YearStatus(year, "provisional", provisional_dates=waiting.get(year, 0)))
    return out


def unofficial_year_to_warn(db: Session | Connection, today: date, warn_from: tuple[int, int]) -> int | None:
    """This year if it is not official; next year from `warn_from` (MM, DD) on, while it is not; else None."""
    overrides = entered_overrides(db)
    official = set(package_years()) | set(overrides.years)
    if today.year not in official:
        return today.year
    if (today.month, today.day) >= warn_from and today.year + 1 not in official:
        return today.year + 1
    return None


def calendar_warning(db: Session | Connection, today: date, warn_from: tuple[int, int]) -> str | None:
    """The warning staff see while a year they work in, or next year from `warn_from` on, is not official."""
    year = unofficial_year_to_warn(db, today, warn_from)
    if year is None:
        return None
    return (f"{year}年法定节假日安排尚未录入：涉及{year}年的期限按周末和法定节日暂定计算，标注“暂定”；国务院办公厅公布后请用 "
            f"`sanjin calendar import 通知.txt` 录入，暂定期限将自动重新计算。 / The {year} holiday schedule has not been "
            f"entered: deadlines in {year} are provisional until it is (sanjin calendar import NOTICE.txt).")


__all__ = ["DUE_TABLES", "STANDING_LABELS", "CalendarEntryError", "EntryReport", "YearStatus", "calendar_status",
           "calendar_warning", "enter_schedule", "recompute_provisional", "settle_provisional", "unofficial_year_to_warn"]
