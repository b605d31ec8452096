"""The phases of a program and their date windows (closed intervals of Asia/Shanghai dates)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Self

from pydantic import model_validator

from models.labels import PHASE_LABELS
from models.phase_names import PhaseName as PhaseName  # re-exported: its home since the CLI needs it alone
from models.program_definition.base import SHANGHAI, RuleViolations, WindowState, _Strict

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


