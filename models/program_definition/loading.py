"""Loading a program file: every error with its path, YAML pitfalls refused, the content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from models.program_definition.base import Loc, RuleViolations, _dotted, _int_to_str
from models.program_definition.program import ProgramDefinition, _program_level_problems, _ProgramLevelViolations


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

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date that does not exist (2025-02-30) is a file error at its line, not a ValueError traceback."""
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"不存在的日期 / no such date {node.value!r} ({exc})", node.start_mark) from None


_UniqueKeySafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeySafeLoader.construct_yaml_timestamp)


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
