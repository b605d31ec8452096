"""What every rule's finding query needs: the program, today, now, the calendar and the rule parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from models.program_definition import Rules
from models.workdays import WorkingDays


@dataclass(frozen=True)
class PassContext:
    program_id: int
    rules: Rules
    today: date
    now: datetime
    calendar: WorkingDays

    # Parameters added by issue #14 (seed-less ones are `# assumed:` in the program files).
    @property
    def pattern_count(self) -> int:
        return int(getattr(self.rules, "delivery_pattern_count", 3))

    @property
    def pattern_days(self) -> int:
        return int(getattr(self.rules, "delivery_pattern_days", 90))

    @property
    def selection_grace_days(self) -> int:
        return int(getattr(self.rules, "selection_grace_days", 30))

    @property
    def no_sales_months(self) -> int:
        return int(getattr(self.rules, "no_sales_close_months", 12))

    @property
    def alert_bands(self) -> tuple[Decimal, Decimal, Decimal] | None:
        alerts = getattr(self.rules, "price_alerts", None)
        if alerts is None:
            return (Decimal("0.10"), Decimal("0.20"), Decimal("0.30"))
        return (alerts.blue, alerts.yellow, alerts.red)
