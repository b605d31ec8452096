"""Which cell number formats make a number a date, a time or a duration — the rules python-calamine applies.

A spreadsheet stores 2025-10-15 as the number 45945 and says "date" only through the cell's number format.
The streaming reader (tasks.intake.xlsx_stream) must turn the same cells into dates as calamine did, or an
import would read "45945" where it read "2025-10-15" before: so the built-in format ids and the scan of a
custom format code follow calamine's formats.rs (MIT), checked against the installed python-calamine by
tests/intake/test_xlsx_stream.py.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CellFormat", "builtin_format", "custom_format"]


class CellFormat(Enum):
    OTHER = "other"
    DATETIME = "datetime"
    TIMEDELTA = "timedelta"  # [h]:mm:ss and the like: elapsed time, not a time of day


# ECMA-376 18.8.30: 14–22 dates and times, 45 mm:ss, 47 mmss.0; 46 is [h]:mm:ss.
_BUILTIN_DATETIME = frozenset({"14", "15", "16", "17", "18", "19", "20", "21", "22", "45", "47"})


def builtin_format(fmt_id: str) -> CellFormat:
    if fmt_id in _BUILTIN_DATETIME:
        return CellFormat.DATETIME
    return CellFormat.TIMEDELTA if fmt_id == "46" else CellFormat.OTHER


_DATE_LETTERS = frozenset("dmhysDMHYS")


def custom_format(code: str) -> CellFormat:
    """Scan the first section of a format code: a d/m/h/y/s outside quotes, brackets and escapes is a date or time;
    an elapsed-time bracket ([h], [mm], [s]) is a duration; an "A" opens an AM/PM marker (A/P, AM/PM)."""
    escaped = quoted = False
    brackets = 0
    prev = " "
    hms = ampm = False
    for ch in code:
        if escaped:
            escaped = False
        elif ch in "_\\*":  # the next character is a literal (an escape, a width, a fill)
            escaped = True
        elif quoted:
            if ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == ";":
            return CellFormat.OTHER  # only the first section counts
        elif ch == "[":
            brackets += 1
        elif ch == "]" and brackets == 1 and hms:
            return CellFormat.TIMEDELTA
        elif ch == "]":
            brackets = max(brackets - 1, 0)
        elif brackets == 0 and not ampm and ch in "aA":
            ampm = True
        elif brackets == 0 and (ch in "pmPM/" if ampm else ch in _DATE_LETTERS):
            return CellFormat.DATETIME
        elif not (hms and ch.lower() == prev.lower()):
            hms = prev == "[" and ch in "mhsMHS"
        prev = ch
    return CellFormat.OTHER
