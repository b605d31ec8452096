"""Column types shared by every table: aware timestamps and enums stored as plain strings.

Timestamps are stored in UTC and always come back tz-aware, on SQLite (which has no time zone
type) as on PostgreSQL. Enums are stored as their string values, not as PostgreSQL ENUM types,
so adding a state never needs a type migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=StrEnum)


class AwareDateTime(TypeDecorator[datetime]):
    """A timestamp that refuses naive values and reads back aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware times only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumString(TypeDecorator[E], Generic[E]):
    """A StrEnum stored as VARCHAR, read back as the enum member."""

    impl = String(40)
    cache_ok = True

    def __init__(self, enum_cls: type[E], length: int = 40) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return str(self.enum_cls(value).value)

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_cls(value)


def utcnow() -> datetime:
    """Wall-clock UTC, for row bookkeeping only; domain time comes from a Clock."""
    return datetime.now(UTC)


MONEY = Numeric(14, 2)
JSONType = JSON

__all__ = ["MONEY", "AwareDateTime", "Decimal", "EnumString", "JSONType", "utcnow"]
