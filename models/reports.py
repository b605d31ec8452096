"""Issued reports kept as versions: what a bureau handed upward, exactly as it was sent, and when.

A report (the quarterly statistics of seed 001 att. 3, the year-end summary) is issued for a program and a
period; issuing it again after late data (an order imported after the quarter was reported) makes version 2 and
keeps version 1, so what was sent can always be shown again. The version's identity is the hash of its figures,
not of the file bytes (an XLSX carries its creation time): the same figures issued twice are one version.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime, EnumString, JSONType


class ReportKind(StrEnum):
    QUARTERLY = "quarterly"  # 集采药品“三进”相关数据统计表 (001 att. 3), period 2026Q1
    SUMMARY = "summary"  # 年度执行情况总结 (001 §四: 2026-12-31), period 2026


class ReportVersion(SQLModel, table=True):
    """One issued version of a program's report for a period; its files are stored with it."""

    __table_args__ = (UniqueConstraint("program_id", "kind", "period", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")  # the unique constraint's index leads with it
    kind: ReportKind = Field(sa_column=Column(EnumString(ReportKind), nullable=False))
    period: str = Field(max_length=16)  # 2026Q1 / 2026
    version: int
    content_hash: str = Field(max_length=64)  # sha256 of the figures (figures_hash)
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    # The files as issued (a quarterly workbook is ~10 kB): the outbox attaches them from here, so a
    # notice can be sent from any machine, and a lost var/ directory loses nothing.
    xlsx: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    file_stem: str = Field(max_length=120)  # <slug>-2026Q1-quarterly-v2: the names the files are written under
    generated_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    generated_by: str = Field(max_length=64)  # a person's name, or "system" for the schedule
    data_as_of: date  # the day whose data it counts (the clock's date when it was generated)


def figures_hash(figures: dict[str, Any]) -> str:
    """A version's identity: the same figures (in any key order) always give the same hash."""
    canonical = json.dumps(figures, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


__all__ = ["ReportKind", "ReportVersion", "figures_hash"]
