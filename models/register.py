"""The register of designated institutions (定点医药机构名册): the denominator of coverage.

Each import is a version of the program's register, named by its import date (`as_of`); coverage on a date
reads the latest version imported on or before it (models/coverage.py says how the share is counted).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import EnumString
from models.states import InstitutionKind
from models.validators import field_error


class DesignationStatus(StrEnum):
    """定点状态: only an institution in force (正常) counts as designated."""

    ACTIVE = "active"  # 正常
    SUSPENDED = "suspended"  # 暂停
    TERMINATED = "terminated"  # 解除 (终止, 取消, 注销)


DESIGNATION_STATUS_LABELS: dict[DesignationStatus, str] = {
    DesignationStatus.ACTIVE: "正常", DesignationStatus.SUSPENDED: "暂停", DesignationStatus.TERMINATED: "解除",
}
_STATUS_BY_TEXT: dict[str, DesignationStatus] = {
    **{label: status for status, label in DESIGNATION_STATUS_LABELS.items()},
    **{status.value: status for status in DesignationStatus},
    # Wordings of the bureaus' own registers for the same states.
    "有效": DesignationStatus.ACTIVE, "定点": DesignationStatus.ACTIVE, "在用": DesignationStatus.ACTIVE,
    "暂停定点": DesignationStatus.SUSPENDED, "中止": DesignationStatus.SUSPENDED,
    "终止": DesignationStatus.TERMINATED, "取消": DesignationStatus.TERMINATED, "注销": DesignationStatus.TERMINATED,
    "解除定点": DesignationStatus.TERMINATED, "终止定点": DesignationStatus.TERMINATED,
}


def parse_status(value: str, field: str = "定点状态") -> DesignationStatus:
    """The register's 定点状态 (正常 / 暂停 / 解除 and their usual synonyms)."""
    text = "".join(value.split())
    status = _STATUS_BY_TEXT.get(text) or _STATUS_BY_TEXT.get(text.lower())
    if status is None:
        allowed = "、".join(DESIGNATION_STATUS_LABELS.values())
        raise field_error(field, value, "status.unknown", f"{field}“{text}”无效，应为：{allowed}",
                          f"unknown designation status; expected one of: {allowed}")
    return status


class RegisterEntry(SQLModel, table=True):
    """One institution of a program's register as imported on `as_of` (a version is all rows of one date)."""

    # Coverage reads one version of one program, grouped by district and kind.
    __table_args__ = (UniqueConstraint("program_id", "as_of", "insurance_code"),
                      Index("ix_registerentry_program_as_of_district", "program_id", "as_of", "district"))
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")  # both indexes lead with it
    as_of: date  # the import date: the version
    insurance_code: str = Field(max_length=12)  # 机构医保编码
    name: str = Field(max_length=200)  # 单位名称
    district: str = Field(max_length=32)  # 所属区县
    kind: InstitutionKind = Field(sa_column=Column(EnumString(InstitutionKind), nullable=False))  # 机构类别
    status: DesignationStatus = Field(sa_column=Column(EnumString(DesignationStatus), nullable=False))  # 定点状态
    designated_on: date  # 定点日期
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")
