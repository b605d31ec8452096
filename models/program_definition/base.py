"""What every part of the program schema shares: the strict base model, location paths, small types."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""Every program date is a local date in this zone; the bureaus work on Beijing time."""

Loc = tuple[str | int, ...]
WindowState = Literal["not_yet_open", "open", "closed"]


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
NonNegativeInt = Annotated[int, Field(ge=0)]

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


