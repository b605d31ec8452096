"""A whole program definition and the checks that span its parts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Literal, Self

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from models.program_definition.approval import (
    _ROLE_OF_LEVEL,
    AllianceSpec,
    ApprovalLevel,
    BatchRule,
    District,
    GateDeadlines,
)
from models.program_definition.base import (
    _SLUG,
    Loc,
    NonEmptyStr,
    RegionCode,
    RuleViolations,
    _int_to_str,
    _region_prefix,
    _Strict,
)
from models.program_definition.letters import Issuer
from models.program_definition.phases import _PHASE_ORDER, PhaseName, PhaseSpec
from models.program_definition.rules import Rules


def _program_level_problems(
    phases: Sequence[tuple[object, object]],
    alliance_present: bool,
    region_code: object,
    districts: Sequence[tuple[object, object]],
) -> list[tuple[Loc, str]]:
    """Checks that span several fields, written once for typed *and* raw input.

    Pydantic skips a model's own validator as soon as any field fails, so a file with an unknown
    phase name would hide a missing alliance section until the next round trip.  The loader
    therefore also runs this function on the raw YAML data when field validation failed; the
    inputs are loose (``object``) so the same code serves both paths.

    ``phases``: (name, enabled) per entry; ``districts``: (name, code) per entry.
    """
    problems: list[tuple[Loc, str]] = []

    first_at: dict[str, int] = {}
    for i, (name, _enabled) in enumerate(phases):
        if not isinstance(name, str):
            continue
        if name in first_at:
            problems.append(
                (("phases", i, "name"), f"phase {name!r} appears twice (first at phases[{first_at[name]}])")
            )
        else:
            first_at[name] = i

    alliance_enabled = any(name == PhaseName.ALLIANCE and enabled is not False for name, enabled in phases)
    if alliance_enabled and not alliance_present:
        problems.append(
            (
                ("alliance",),
                "an enabled 'alliance' phase needs an alliance section (lead_city, invitees, ...)",
            )
        )
    if alliance_present and not alliance_enabled:
        problems.append((("alliance",), "alliance section given but no enabled 'alliance' phase uses it"))

    prefix = (
        _region_prefix(region_code) if isinstance(region_code, str) and re.fullmatch(r"\d{6}", region_code) else None
    )
    seen_names: dict[str, int] = {}
    seen_codes: dict[str, int] = {}
    for i, (name, code) in enumerate(districts):
        if isinstance(name, str):
            if name in seen_names:
                problems.append(
                    (
                        ("districts", i, "name"),
                        f"district {name!r} is listed twice (first at districts[{seen_names[name]}])",
                    )
                )
            else:
                seen_names[name] = i
        if isinstance(code, str) and re.fullmatch(r"\d{6}", code):
            if code in seen_codes:
                problems.append(
                    (
                        ("districts", i, "code"),
                        f"code {code} is used twice (first at districts[{seen_codes[code]}])",
                    )
                )
            else:
                seen_codes[code] = i
            if prefix is not None and not code.startswith(prefix):
                problems.append(
                    (("districts", i, "code"), f"code {code} is outside the program's region {region_code}")
                )
    return problems



def _legacy_calendar_policy(value: object) -> object:
    # Definitions stored before issue 12 said "fail" (now "strict") or "warn" (a Monday–Friday guess, now the
    # provisional calendar): a program loaded then must keep loading after the upgrade.
    return {"fail": "strict", "warn": "provisional"}.get(value, value) if isinstance(value, str) else value

class ProgramDefinition(_Strict):
    """One region's 三进 program, as read from ``deploy/programs/<slug>.yaml``."""

    slug: str
    name: NonEmptyStr
    region: NonEmptyStr
    region_code: RegionCode
    year_label: Annotated[str, BeforeValidator(_int_to_str), StringConstraints(min_length=1)]
    timezone: Literal["Asia/Shanghai"]
    # A year without an official schedule: "provisional" dates (weekends and statutory holidays, marked 暂定,
    # recomputed when the schedule is entered) or "strict" (the computation needing it fails alone). SPEC.
    calendar_unknown_year: Annotated[Literal["provisional", "strict"],
                                     BeforeValidator(_legacy_calendar_policy)] = "provisional"
    phases: list[PhaseSpec] = Field(min_length=1)
    alliance: AllianceSpec | None = None
    districts: list[District] = Field(min_length=1)
    approval_chain: list[ApprovalLevel]
    batching: BatchRule
    gates: GateDeadlines
    rules: Rules
    # Who signs the letters (issue #19). Optional so a definition stored before it keeps loading; every
    # shipped program file gives it, and letters without it are signed by the region's 医疗保障局.
    issuer: Issuer | None = None
    sources: list[NonEmptyStr] = Field(min_length=1)

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(
                f"{v!r} is not a slug: use lowercase letters, digits and single hyphens, e.g. 'shenyang-2025'"
            )
        return v

    @field_validator("approval_chain")
    @classmethod
    def _chain_shape(cls, chain: list[ApprovalLevel]) -> list[ApprovalLevel]:
        if not chain:
            raise RuleViolations([((), "the approval chain needs at least one level")])
        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        for i, level in enumerate(chain):
            if level.level in seen:
                problems.append(((i, "level"), f"level {level.level!r} appears twice"))
            seen.add(level.level)
            if level.level == "district" and "city" in seen:
                problems.append(((i, "level"), "the district level must come before the city level"))
            if level.role != _ROLE_OF_LEVEL[level.level]:
                problems.append(((i, "role"), f"the {level.level} level is decided by {_ROLE_OF_LEVEL[level.level]!r}"))
            if level.level == "district" and level.scope != "application":
                problems.append(((i, "scope"), "district review is per application: a reviewer sees one institution"))
        if problems:
            raise RuleViolations(problems)
        return chain

    @model_validator(mode="after")
    def _whole_program(self) -> Self:
        problems = _program_level_problems(
            [(p.name, p.enabled) for p in self.phases],
            self.alliance is not None,
            self.region_code,
            [(d.name, d.code) for d in self.districts],
        )
        if problems:
            raise _ProgramLevelViolations(problems)
        return self

    def phase(self, name: PhaseName | str) -> PhaseSpec | None:
        """The phase of that name, enabled or not; None if the program does not define it."""
        for p in self.phases:
            if p.name == name:
                return p
        return None

    def timeline(self, *, include_disabled: bool = False) -> list[PhaseSpec]:
        """Phases by opening date, ties in SPEC order; disabled ones are left out as they never run."""
        chosen = [p for p in self.phases if include_disabled or p.enabled]
        return sorted(chosen, key=lambda p: (p.window.opens, _PHASE_ORDER[p.name]))

    def open_phases_on(self, d: date) -> list[PhaseName]:
        """Enabled phases whose window contains ``d``; several at once is normal (000: 8-10..8-15)."""
        return [p.name for p in self.timeline() if p.window.contains(d)]


class _ProgramLevelViolations(RuleViolations):
    """Marks problems found by :meth:`ProgramDefinition._whole_program` so the raw fallback can skip them."""


