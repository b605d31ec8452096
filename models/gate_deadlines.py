"""What happens as a gate's due date nears and passes: who is reminded when, and what its expiry does.

Pure rules (no database): tasks/outbox/reminders.py finds the open gates and writes the letters these
rules call for; tasks/phases/enrollment.py carries the undecided applications of an expired review gate over.
No seed gives a reminder schedule for the bureau's own gates; the numbers are program parameters
(``gates.reminders`` of the program file, models/program_definition/approval.py), all ``# assumed:``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from models.states import GateKind


class ReminderStage(StrEnum):
    """Which letter a gate's deadline calls for today; each is sent once per gate and stage (its period)."""

    BEFORE = "before"  # N working days (or fewer) before the due date: "请于…前处理"
    DUE = "due"  # on the due date itself: "今日到期"
    OVERDUE = "overdue"  # every day after it, to the program manager (escalation), while still open


class OnExpiry(StrEnum):
    """What a gate's due date passing does to it."""

    # 000/001 "申报一批、成熟一批、运行一批": a batch does not wait for one slow district; once the enrollment
    # window has closed, the undecided applications leave the gate (已过期) for the next batch's gate.
    CARRY_OVER = "carry_over"
    # A decision silence cannot stand in for (approving an enterprise's products, publishing the drug list,
    # confirming an alliance city, an enforcement rung, an enterprise's exit): the gate stays decidable,
    # is shown 已逾期 everywhere, and the program manager is reminded every day until someone decides.
    ESCALATE = "escalate"


EXPIRY_RULES: dict[GateKind, OnExpiry] = {
    GateKind.DISTRICT_REVIEW: OnExpiry.CARRY_OVER,
    GateKind.CITY_REVIEW: OnExpiry.CARRY_OVER,
    GateKind.BATCH_APPROVAL: OnExpiry.CARRY_OVER,
    GateKind.DECLARATION_REVIEW: OnExpiry.ESCALATE,
    GateKind.LIST_APPROVAL: OnExpiry.ESCALATE,
    GateKind.ALLIANCE_CONFIRMATION: OnExpiry.ESCALATE,
    GateKind.ENFORCEMENT: OnExpiry.ESCALATE,
    GateKind.ENTERPRISE_EXIT: OnExpiry.ESCALATE,
}


def reminder_stage(today: date, due_on: date, working_days_left: int, before: int) -> ReminderStage | None:
    """The reminder an open gate due on ``due_on`` calls for on ``today``, or None.

    ``working_days_left`` counts working days in (today, due_on]. A gate opened with fewer than ``before``
    working days left gets its early reminder at once (its first day), never a second one.
    """
    if today > due_on:
        return ReminderStage.OVERDUE
    if today == due_on:
        return ReminderStage.DUE
    if working_days_left <= before:
        return ReminderStage.BEFORE
    return None


def days_overdue(today: date, due_on: date) -> int:
    """Calendar days past the due date (0 on or before it): what the manager's escalation letter shows."""
    return max((today - due_on).days, 0)


def district_stalled(overdue_open_gates: int, carried_over: int) -> bool:
    """A district is flagged (red on the overview) while one of its gates is past due and undecided, or while
    applications an expired gate carried over still wait for its decision: either way the district, not
    the applicants, holds them up. A district with only gates still within their deadline is not flagged."""
    return overdue_open_gates > 0 or carried_over > 0
