"""Gate reminders: the person who may decide an open gate is told before and on its due date; past it, the
program's managers are told every day until someone decides (models/gate_deadlines.py holds the rules).

Keys name the gate, the stage and the due date (``gate_waiting:<gate>:before:<due>:<user>``), so a run
repeated the same day, or on the next day of the same stage, writes nothing; the managers' letter is one
per manager and day (``gate_overdue:<program>:<day>:<user>``). Open gates are few (hundreds at most), so
they and the deciders are read with two queries and matched here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.bulk import table_of
from models.enrollment import Gate
from models.gate_deadlines import ReminderStage, days_overdue, reminder_stage
from models.gate_decisions import decided_count
from models.program import User
from models.program_definition import ProgramDefinition
from models.states import GateState, Role
from models.workdays import WorkingDays
from tasks.outbox.enqueue import NoticeDraft

GATE, USR = table_of(Gate), table_of(User)
GATE_WAITING, GATE_OVERDUE = "gate_waiting", "gate_overdue"


@dataclass(frozen=True)
class _Person:
    id: int
    label: str  # display name, else the login name: what a letter's salutation shows
    role: str
    districts: frozenset[str]
    email: str | None


@dataclass(frozen=True)
class GateReminders:
    """What one run calls for: (idempotency key, draft) pairs per kind, and the gates nobody may decide."""

    drafts: dict[str, list[tuple[str, NoticeDraft]]]
    without_decider: list[str]


def _people(session: Session, slug: str) -> list[_Person]:
    """Active reviewers and managers; a manager bound to programs (program_slugs) only for those."""
    rows = session.execute(
        select(USR.c.id, USR.c.name, USR.c.display_name, USR.c.role, USR.c.districts, USR.c.email,
               USR.c.program_slugs)
        .where(USR.c.active.is_(True), USR.c.role.in_([Role.DISTRICT_REVIEWER.value, Role.PROGRAM_MANAGER.value]))
        .order_by(USR.c.id)).tuples()
    return [_Person(int(i), display or name, str(role), frozenset(districts or ()), email)
            for i, name, display, role, districts, email, slugs in rows if not slugs or slug in slugs]


def _deciders(people: list[_Person], role: str, district: str | None) -> list[_Person]:
    """Who may decide a gate: its role, and for a district's gate that district (tasks.gates.rows.check_decider)."""
    return [p for p in people if p.role == role and (district is None or district in p.districts)]


def gate_reminders(session: Session, *, program_id: int, slug: str, program_name: str, defn: ProgramDefinition,
                   wdays: WorkingDays, today: date) -> GateReminders:
    """The gate reminders due today for one program (drafts only; the caller skips keys already sent)."""
    rules = defn.gates.reminders
    people = _people(session, slug)
    gates = session.execute(
        select(GATE.c.id, GATE.c.title, GATE.c.district, GATE.c.decider_role, GATE.c.due_on,
               GATE.c.due_on_provisional, GATE.c["items"], GATE.c.decision)
        .where(GATE.c.program_id == program_id, GATE.c.state == GateState.OPEN.value)
        .order_by(GATE.c.due_on, GATE.c.id)).tuples()
    drafts: dict[str, list[tuple[str, NoticeDraft]]] = defaultdict(list)
    overdue: list[dict[str, Any]] = []
    without: list[str] = []

    def draft(key: str, kind: str, person: _Person, context: dict[str, Any]) -> tuple[str, NoticeDraft]:
        return key, NoticeDraft(key=key, kind=kind, recipient_type="user", recipient_id=person.id,
                                recipient_name=person.label, email=person.email, program_id=program_id,
                                context={"program_name": program_name, **context})

    for gate_id, title, district, role, due_on, provisional, items, decision in gates:
        undecided = len(items) - decided_count(decision)
        deciders = _deciders(people, str(role), district)
        if not deciders:
            without.append(title)
        stage = reminder_stage(today, due_on, wdays.working_days_between(today, due_on), rules.before_working_days)
        if stage is ReminderStage.OVERDUE:
            overdue.append({"title": title, "item_count": undecided, "due_on": due_on.isoformat(),
                            "due_provisional": bool(provisional), "days_overdue": days_overdue(today, due_on),
                            "deciders": "、".join(p.label for p in deciders) or "（无人可决定：请添加审核人员）"})
            continue
        if stage is None or (stage is ReminderStage.DUE and not rules.on_due_day):
            continue
        context = {"gate_title": title, "item_count": undecided, "due_on": due_on.isoformat(),
                   "due_provisional": bool(provisional), "stage": stage.value}
        drafts[GATE_WAITING] += [
            draft(f"gate_waiting:{gate_id}:{stage.value}:{due_on}:{p.id}", GATE_WAITING, p,
                  {**context, "reviewer_name": p.label})
            for p in deciders]
    if overdue and rules.escalate_daily_to_manager:
        drafts[GATE_OVERDUE] += [
            draft(f"gate_overdue:{program_id}:{today}:{m.id}", GATE_OVERDUE, m,
                  {"manager_name": m.label, "items": overdue})
            for m in people if m.role == Role.PROGRAM_MANAGER.value]
    return GateReminders(dict(drafts), without)
