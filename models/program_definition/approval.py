"""The organisation of a program: districts, the approval chain, the batch rule, gate deadlines, the alliance."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from models.program_definition.base import _EMAIL, Loc, NonEmptyStr, PositiveInt, RegionCode, RuleViolations, _Strict


class District(_Strict):
    """A review unit: the bureau whose reviewer sees applications from this area only."""

    name: NonEmptyStr
    code: RegionCode
    city: str | None = None  # prefecture the unit belongs to (Ningxia: county/district → city)


class ApprovalLevel(_Strict):
    """One level of the institution-application approval chain; the list order is the chain order."""

    level: Literal["district", "city"]
    role: Literal["district_reviewer", "program_manager"]
    label: NonEmptyStr
    # district review is per application (000, 001); Shenyang's city approval is per batch (000).
    scope: Literal["application", "batch"]
    due_working_days: PositiveInt  # gate deadline, Chinese working days (调休 included)


_ROLE_OF_LEVEL = {"district": "district_reviewer", "city": "program_manager"}


class BatchRule(_Strict):
    """When a batch of applications is cut (000/001: "申报一批、成熟一批、运行一批")."""

    cutoff_every_days: PositiveInt | None = None
    max_applications: PositiveInt | None = None
    first_cutoff: date | None = None

    @model_validator(mode="after")
    def _some_trigger(self) -> Self:
        if self.cutoff_every_days is None and self.max_applications is None:
            raise RuleViolations(
                [((), "set cutoff_every_days or max_applications (or both): otherwise no batch is ever cut")]
            )
        return self


class GateReminders(_Strict):
    """When the person who may decide a gate is reminded of it (models/gate_deadlines.py applies them).

    No seed gives a schedule for the bureau's own gates; every value is assumed.
    """

    before_working_days: PositiveInt = 2  # assumed: one letter this many working days before the due date
    on_due_day: bool = True  # assumed: one letter on the due date itself
    escalate_daily_to_manager: bool = True  # assumed: every day past the due date, the program manager


class GateDeadlines(_Strict):
    """Deadlines, in working days, of the enterprise-side gates of the drug_list phase, and gate reminders."""

    declaration_review_working_days: PositiveInt
    list_approval_working_days: PositiveInt
    reminders: GateReminders = Field(default_factory=GateReminders)


class Invitee(_Strict):
    city: NonEmptyStr
    bureau: NonEmptyStr
    email: str | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, v: str | None) -> str | None:
        if v is not None and not _EMAIL.match(v):
            raise ValueError(f"{v!r} is not an e-mail address")
        return v


class AllianceSpec(_Strict):
    """Shenyang's 联盟: other cities invited to share its drug list (000 §五(一)1)."""

    lead_city: NonEmptyStr
    invitees: list[Invitee] = Field(min_length=1)
    response_due_working_days: PositiveInt

    @model_validator(mode="after")
    def _invitees_distinct(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        for i, inv in enumerate(self.invitees):
            if inv.city == self.lead_city:
                problems.append((("invitees", i, "city"), f"{inv.city} is the lead city; it cannot invite itself"))
            if inv.city in seen:
                problems.append((("invitees", i, "city"), f"{inv.city} is invited twice"))
            seen.add(inv.city)
        if problems:
            raise RuleViolations(problems)
        return self


