"""Program definitions: the data that makes one region's 三进 program differ from another's.

Every date, deadline and policy number of a program lives in a human-edited YAML file under
``deploy/programs/`` (SPEC: "dates are data, never code").  The people who edit those files are
bureau staff, not programmers, so the schema is strict (``extra="forbid"`` everywhere: a misspelt
key is an error, not a silently ignored line) and the loader reports *every* problem of a file at
once, each with a dotted path such as ``phases[2].window.closes``, instead of making the editor
fix one error per round trip.

Seed documents cited in comments (see ``shared/seeds``): 000 Shenyang 2025, 001 Ningxia 2025,
002 Jiangxi 2025, 003 Yingkou 2019 national VBP, 004 a province's sunshine-procurement opinion.

The only I/O in this module is :func:`load_program_file`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "PHASE_LABELS",
    "SHANGHAI",
    "AllianceSpec",
    "ApprovalLevel",
    "BatchRule",
    "CoverageTarget",
    "District",
    "GateDeadlines",
    "Invitee",
    "MarkupRules",
    "MinDrugCount",
    "PhaseName",
    "PhaseSpec",
    "ProgramDefinition",
    "ProgramFileError",
    "RuleViolations",
    "Rules",
    "Window",
    "WindowState",
    "load_program_file",
    "program_content_hash",
    "validate_program",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""Every program date is a local date in this zone; the bureaus work on Beijing time."""

Loc = tuple[str | int, ...]
WindowState = Literal["not_yet_open", "open", "closed"]


# --------------------------------------------------------------------------- helpers


def _dotted(loc: Iterable[str | int]) -> str:
    """Render a pydantic location as the path an editor searches for in the YAML file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class RuleViolations(ValueError):
    """Cross-field problems, each with its own location relative to the validated object.

    Pydantic gives an error raised inside a validator the validator's location only; a plain
    ``ValueError`` from the program-level validator would therefore point at the file root.  This
    exception carries a location per problem so :func:`validate_program` can report
    ``districts[3].name`` instead of "somewhere in the file".
    """

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems: list[tuple[Loc, str]] = list(problems)
        super().__init__("; ".join(f"{_dotted(loc) or '<root>'}: {msg}" for loc, msg in self.problems))


def _int_to_str(value: object) -> object:
    """Accept unquoted numbers in YAML (``code: 210102``, ``year_label: 2025``).

    Editors will not remember to quote codes.  GB/T 2260 codes never start with 0 (provinces are
    11..82), so turning the integer back into text loses nothing.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


RegionCode = Annotated[str, BeforeValidator(_int_to_str), StringConstraints(pattern=r"^\d{6}$")]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Share = Annotated[Decimal, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(gt=0)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _region_prefix(region_code: str) -> str:
    """The significant prefix of a GB/T 2260 code: ``210100`` → ``2101``, ``640000`` → ``64``."""
    if region_code.endswith("0000"):
        return region_code[:2]
    if region_code.endswith("00"):
        return region_code[:4]
    return region_code


class _Strict(BaseModel):
    """Base for every schema model: unknown keys are errors and loaded definitions are immutable.

    Frozen because a program definition is shared by every flow of a run; a task mutating it would
    change the rules for the others.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- phases & windows


class PhaseName(StrEnum):
    """The six phases of SPEC's phase table; a program enables the ones it runs."""

    ALLIANCE = "alliance"
    DRUG_LIST = "drug_list"
    ENROLLMENT = "enrollment"
    ACCOUNTS = "accounts"
    CONTRACTS = "contracts"
    CONTINUOUS_REVIEW = "continuous_review"


PHASE_LABELS: dict[PhaseName, str] = {
    PhaseName.ALLIANCE: "联盟邀请（牵头省内各市联盟）",
    PhaseName.DRUG_LIST: "征集“三进”集采药品清单",
    PhaseName.ENROLLMENT: "组织医药机构参加",
    PhaseName.ACCOUNTS: "平台账户注册",
    PhaseName.CONTRACTS: "购销协议签订",
    PhaseName.CONTINUOUS_REVIEW: "持续推进",
}

_PHASE_ORDER = {name: i for i, name in enumerate(PhaseName)}


def _local_date(d: date) -> date:
    """Reduce a moment to its Asia/Shanghai date; a naive datetime is refused as ambiguous.

    A server in UTC would otherwise shut a window eight hours early.
    """
    if isinstance(d, datetime):
        if d.tzinfo is None or d.utcoffset() is None:
            raise TypeError("a naive datetime is ambiguous; pass an aware datetime or a date")
        return d.astimezone(SHANGHAI).date()
    return d


class Window(_Strict):
    """A closed interval of Asia/Shanghai local dates: from 00:00 of ``opens`` to the end of ``closes``.

    Closed at both ends because the seeds write windows as "8月7日－8月15日": both days are
    working days of the window.  ``closes=None`` means open-ended (e.g. 持续推进, 长期推进).
    """

    opens: date
    closes: date | None = None

    @model_validator(mode="after")
    def _closes_not_before_opens(self) -> Self:
        if self.closes is not None and self.closes < self.opens:
            raise RuleViolations([(("closes",), f"closes {self.closes} is before opens {self.opens}")])
        return self

    def contains(self, d: date) -> bool:
        """True from the opening day through the closing day, both included."""
        local = _local_date(d)
        return self.opens <= local and (self.closes is None or local <= self.closes)

    def state_on(self, d: date) -> WindowState:
        local = _local_date(d)
        if local < self.opens:
            return "not_yet_open"
        if self.closes is not None and local > self.closes:
            return "closed"
        return "open"

    def opens_at(self) -> datetime:
        """The first instant of the window, for schedulers that work with instants."""
        return datetime.combine(self.opens, time.min, tzinfo=SHANGHAI)

    def closes_at(self) -> datetime | None:
        """The last instant of the window (23:59:59.999999 local), or None when open-ended."""
        if self.closes is None:
            return None
        return datetime.combine(self.closes, time.max, tzinfo=SHANGHAI)


class PhaseSpec(_Strict):
    name: PhaseName
    window: Window
    label: str | None = None  # overrides PHASE_LABELS for this program's wording
    enabled: bool = True
    # At window close, items nobody decided stay pending for a later batch rather than being
    # rejected: the seeds' "申报一批、成熟一批、运行一批" never drops an applicant for the bureau's delay.
    carry_over_undecided: bool = True

    @property
    def display_label(self) -> str:
        return self.label or PHASE_LABELS[self.name]


# --------------------------------------------------------------------------- organisation


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


class GateDeadlines(_Strict):
    """Deadlines, in working days, of the enterprise-side gates of the drug_list phase."""

    declaration_review_working_days: PositiveInt
    list_approval_working_days: PositiveInt


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


# --------------------------------------------------------------------------- rules


class MinDrugCount(_Strict):
    """Minimum number of 集采 drugs (by generic name) an institution must stock.

    ``use_committed_count``: the count the institution wrote in its commitment letter (001 att.2,
    002 att.1 "种类达__种及以上") is enforced; a per-kind floor, where set, is the least it may
    commit.  ``None`` for a kind means the seed sets no floor for it.
    """

    private_tertiary: PositiveInt | None = None
    private_other: PositiveInt | None = None
    pharmacy: PositiveInt | None = None
    use_committed_count: bool = False


class MarkupRules(_Strict):
    """Sale-price caps as a fraction over the winning price (中选价); 0 means "at most the winning price"."""

    public_max: Share = Decimal(0)  # 零差率: public institutions sell at the winning price (000, 001, 002)
    private_max: Share = Decimal(0)  # private medical: not above the winning price (001, 002)
    pharmacy_max: Share
    # Higher cap for a pharmacy whose price level is within the 量价比较指数 (002: 15 %); None = no such cap.
    pharmacy_max_with_index: Share | None = None

    @model_validator(mode="after")
    def _index_cap_not_lower(self) -> Self:
        if self.pharmacy_max_with_index is not None and self.pharmacy_max_with_index < self.pharmacy_max:
            raise RuleViolations(
                [
                    (
                        ("pharmacy_max_with_index",),
                        "must not be lower than pharmacy_max (it is the relaxed cap)",
                    )
                ]
            )
        return self


class CoverageTarget(_Strict):
    by: date
    share: Annotated[Decimal, Field(gt=0, le=1)]


def _default_focus_categories() -> list[str]:
    return ["心脑血管", "消化系统", "呼吸系统", "内分泌及代谢"]


def _default_agreed_volume() -> dict[int, Decimal]:
    return {1: Decimal("0.5"), 2: Decimal("0.6"), 3: Decimal("0.7")}


class Rules(_Strict):
    """Every parameter of SPEC's "Rules" table.

    Defaults are the value SPEC gives as the common baseline; the region files state every value
    explicitly and mark the ones their seed is silent on as ``# assumed``.
    """

    focus_categories: list[NonEmptyStr] = Field(default_factory=_default_focus_categories)  # 000, 001, 002
    commit_at_or_below_winning_price: bool = True  # enterprise supplies at ≤ 中选价 (001, 002)
    delivery_sla_hours: PositiveInt = 72  # 000: within 72 h of the order (003: 24 h distributor capability)
    delivery_refusal_removes_enterprise: bool = True  # 000; 001/002 after an interview first
    payment_due: Literal["next_month_end"] = "next_month_end"  # 次月底 after acceptance (000, 001, 002)
    # Seeds say payment "不应超过…次月底"; rolling a non-working month end forward would exceed it.
    payment_due_roll_forward_to_working_day: bool = False
    overdue_interview_after_months: PositiveInt = 2  # 000: overdue > 2 months → 约谈
    min_participation_years: PositiveInt = 1  # 001, 002: 不少于一年
    min_drug_count: MinDrugCount = Field(default_factory=MinDrugCount)  # 002 floors; 001 committed count
    recommended_share_min: Share | None = None  # 002: ≥ 60 % from the recommended list
    has_recommended_list: bool = False  # 002: 《“三进”推荐配备药品品种》
    markup: MarkupRules = Field(default_factory=lambda: MarkupRules(pharmacy_max=Decimal(0)))  # 000-002
    online_price_equals_offline: bool = False  # 002: online price = offline price
    coverage_targets: list[CoverageTarget] = Field(default_factory=list)  # 002: 80 % 2025, 90 % 2026
    quarterly_report_due: Literal["first_month_of_quarter"] | None = None  # 001: 每季度第一个月
    enterprise_exit_allowed: bool = True  # 001: 协议期满可申请退出
    contract_period: Literal["annual"] = "annual"  # 000, 003: 每年一签
    # 003: agreed volume = share of the base by number of winners; next year ≥ first year.
    agreed_volume_share_by_winners: dict[PositiveInt, Annotated[Decimal, Field(gt=0, le=1)]] = Field(
        default_factory=_default_agreed_volume
    )
    price_report_working_days: PositiveInt = 20  # 004: report a new national lowest price in 20 wd
    bad_record_ban_years: PositiveInt = 2  # 004: 不良记录 → barred for two years
    account_reminder_working_days_before_close: PositiveInt = 5  # assumed (no seed gives one)
    contract_reminder_working_days_before_close: PositiveInt = 5  # assumed (no seed gives one)
    special_drugs_need_designation: bool = False  # 000: special drugs only for 特药定点 institutions
    enterprise_admission: Literal["window", "rolling"] = "window"  # 002: 即申即纳 = rolling

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.recommended_share_min is not None and not self.has_recommended_list:
            problems.append(
                (
                    ("recommended_share_min",),
                    "is set but has_recommended_list is false: there is no list to share",
                )
            )
        previous: CoverageTarget | None = None
        for i, target in enumerate(self.coverage_targets):
            if previous is not None:
                if target.by <= previous.by:
                    problems.append(
                        (("coverage_targets", i, "by"), "targets must be in strictly increasing date order")
                    )
                elif target.share < previous.share:
                    problems.append((("coverage_targets", i, "share"), "a later target cannot ask for less coverage"))
            previous = target
        if problems:
            raise RuleViolations(problems)
        return self


# --------------------------------------------------------------------------- program


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
    calendar_unknown_year: Literal["provisional", "strict"] = "provisional"
    phases: list[PhaseSpec] = Field(min_length=1)
    alliance: AllianceSpec | None = None
    districts: list[District] = Field(min_length=1)
    approval_chain: list[ApprovalLevel]
    batching: BatchRule
    gates: GateDeadlines
    rules: Rules
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


# --------------------------------------------------------------------------- loading


class ProgramFileError(Exception):
    """A program file that cannot be used, with every problem found in it.

    ``errors`` is a list of (path, message); path is dotted with list indices
    (``phases[2].window.closes``), empty for problems of the file as a whole.
    """

    def __init__(self, file: Path | str, errors: Sequence[tuple[str, str]]) -> None:
        self.file = Path(file)
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__(self.file.name)

    def __reduce__(self) -> tuple[type[ProgramFileError], tuple[Path, list[tuple[str, str]]]]:
        return (type(self), (self.file, self.errors))

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.file.name}: {count} error{'s' if count != 1 else ''} in program file {self.file}"
        lines = [f"{self.file.name}: {path or '<file>'}: {msg}" for path, msg in self.errors]
        return "\n".join([head, *lines])


def _error_entries(exc: ValidationError) -> tuple[list[tuple[str, str]], bool]:
    """Flatten pydantic errors into (path, message); second value: did the program-level check run."""
    entries: list[tuple[str, str]] = []
    program_level_ran = False
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, RuleViolations):
            program_level_ran |= isinstance(cause, _ProgramLevelViolations)
            entries.extend((_dotted(loc + sub), msg) for sub, msg in cause.problems)
            continue
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        entries.append((_dotted(loc), msg))
    return entries, program_level_ran


def _raw_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _raw_get(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, Mapping) else None


def _raw_program_level_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Best-effort program-level checks on raw data, for when field errors kept pydantic from them."""
    phases = [(_raw_get(p, "name"), _raw_get(p, "enabled")) for p in _raw_list(data.get("phases"))]
    districts = [(_raw_get(d, "name"), _int_to_str(_raw_get(d, "code"))) for d in _raw_list(data.get("districts"))]
    problems = _program_level_problems(
        phases, data.get("alliance") is not None, _int_to_str(data.get("region_code")), districts
    )
    return [(_dotted(loc), msg) for loc, msg in problems]


def validate_program(data: object, *, source: Path | str = "<program>") -> ProgramDefinition:
    """Validate already-parsed data, raising :class:`ProgramFileError` with ALL problems.

    Separate from :func:`load_program_file` so definitions kept elsewhere (a database row, a test
    fixture) get the same complete error report.
    """
    try:
        return ProgramDefinition.model_validate(data)
    except ValidationError as exc:
        entries, program_level_ran = _error_entries(exc)
        if not program_level_ran and isinstance(data, Mapping):
            entries.extend(e for e in _raw_program_level_problems(data) if e not in entries)
        raise ProgramFileError(source, entries) from None


class _UniqueKeySafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys.

    Plain ``safe_load`` keeps the last of two equal keys silently; in a hand-edited file that
    is almost always a copy-paste slip that would change a date without anyone noticing.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys with their position
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    detail = f"{problem} ({context})" if context else str(problem)
    return f"YAML syntax error{where}: {detail}"


def load_program_file(path: Path) -> ProgramDefinition:
    """Read and validate one program file; every problem in it is reported in one ProgramFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramFileError(path, [("", f"cannot read the file: {exc}")]) from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeySafeLoader)  # a SafeLoader subclass: still safe
    except yaml.YAMLError as exc:
        raise ProgramFileError(path, [("", _yaml_error_message(exc))]) from exc
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise ProgramFileError(path, [("", f"expected a mapping of program keys at the top, found {found}")])
    return validate_program(data, source=path)


def _canonical(value: object) -> object:
    """JSON fallback: dates as ISO text, decimals without trailing zeros (0.60 and 0.6 are one value)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__}")


def program_content_hash(defn: ProgramDefinition) -> str:
    """sha256 of the definition's meaning, not its file: comments and key order do not change it.

    Lets the loader skip re-importing an unchanged file and record which version of the rules a
    decision was taken under.
    """
    payload = json.dumps(
        defn.model_dump(mode="python"),
        default=_canonical,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(("sanjin.program/v1\n" + payload).encode("utf-8")).hexdigest()
