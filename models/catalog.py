"""Enterprises, their products, declarations and the published list versions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import MONEY, AwareDateTime, EnumString, JSONType
from models.states import DeclarationState, EnterpriseState, ListKind


class Enterprise(SQLModel, table=True):
    """A manufacturer / winning enterprise (生产企业/中选企业)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    uscc: str | None = Field(default=None, max_length=18, unique=True)
    contact_name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    state: EnterpriseState = Field(
        default=EnterpriseState.ACTIVE, sa_column=Column(EnumString(EnterpriseState), nullable=False)
    )
    barred_until: date | None = None


class Product(SQLModel, table=True):
    """One row of the enterprise product table (品种明细表, seed 002 att.2) plus its category."""

    __table_args__ = (UniqueConstraint("enterprise_id", "drug_code"),)
    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    drug_code: str = Field(max_length=32, index=True)  # 药品统一编码
    name: str = Field(max_length=200)  # 产品名称
    dosage_form: str = Field(max_length=64)  # 剂型
    spec: str = Field(max_length=100)  # 规格
    conversion_ratio: str = Field(max_length=32)  # 转换比
    min_unit: str = Field(max_length=16)  # 最小制剂单位
    package_unit: str = Field(max_length=16)  # 最小包装单位
    package_material: str = Field(max_length=64)  # 包装材质
    manufacturer: str = Field(max_length=200)  # 生产企业
    bidder: str = Field(max_length=200)  # 投标企业
    winning_price: Decimal = Field(sa_column=Column(MONEY, nullable=False))  # 中选价(元)
    approval_number: str = Field(max_length=32)  # 批准文号
    category: str | None = Field(default=None, max_length=32)  # 心脑血管, 消化系统, ...
    is_special: bool = False  # 特药: only special-designated institutions may select it (seed 000)
    # 中选企业数: how many enterprises won this drug's procurement; sets the agreed-volume share (seed 003 §四(一)1).
    winner_count: int | None = None


class EnterpriseDeclaration(SQLModel, table=True):
    """An enterprise's declaration of products for a program's list, with its commitment letter."""

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    state: DeclarationState = Field(
        default=DeclarationState.SUBMITTED, sa_column=Column(EnumString(DeclarationState), nullable=False)
    )
    commitment_signed: bool = True  # 承诺函: supply at ≤ winning price, incl. tax and delivery
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    reason: str | None = None
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")
    submitted_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    decided_by: str | None = Field(default=None, max_length=64)


class DeclarationItem(SQLModel, table=True):
    """A product named in a declaration."""

    __table_args__ = (UniqueConstraint("declaration_id", "product_id"),)
    id: int | None = Field(default=None, primary_key=True)
    declaration_id: int = Field(foreign_key="enterprisedeclaration.id", index=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    recommended: bool = False


class ListVersion(SQLModel, table=True):
    """One published version of a public list; a new one only when the content hash changes."""

    __table_args__ = (UniqueConstraint("program_id", "kind", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    kind: ListKind = Field(sa_column=Column(EnumString(ListKind), nullable=False))
    number: int
    content_hash: str = Field(max_length=64)
    entry_count: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    diff: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    reason: str | None = Field(default=None, max_length=200)
    published_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    published_by: str = Field(default="system", max_length=64)


class ListEntry(SQLModel, table=True):
    """One line of a list version; `key` is stable across versions (drug code, institution code)."""

    __table_args__ = (UniqueConstraint("version_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="listversion.id")  # indexed by the unique (version_id, key)
    key: str = Field(max_length=64)
    data: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))


def list_gate_key(slug: str, digest: str) -> str:
    """The natural key of the drug list's approval gate for a candidate with content hash `digest`."""
    return f"{slug}:drug_list:list_approval:{digest[:16]}"
