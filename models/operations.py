"""What running institutions do: accounts, contracts, selections, orders, payments, and violations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import MONEY, AwareDateTime, EnumString, JSONType
from models.calendar import ProvisionalDue
from models.states import (
    AccountState,
    ContractState,
    EnforcementKind,
    EnforcementState,
    ViolationKind,
)


class PlatformAccount(ProvisionalDue, table=True):
    """The institution's account on the provincial procurement subsystem (省招采子系统)."""

    # Laggards (dashboard, reminders): pending accounts of a program by deadline.
    __table_args__ = (UniqueConstraint("program_id", "institution_id"),
                      Index("ix_platformaccount_program_state_due", "program_id", "state", "due_on"))
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")  # both indexes above lead with it
    institution_id: int = Field(foreign_key="institution.id", index=True)
    state: AccountState = Field(
        default=AccountState.PENDING, sa_column=Column(EnumString(AccountState), nullable=False)
    )
    account_no: str | None = Field(default=None, max_length=64)
    registered_on: date | None = None
    due_on: date | None = None


class Selection(SQLModel, table=True):
    """A drug an institution chose from the list, at its sale price."""

    __table_args__ = (UniqueConstraint("program_id", "institution_id", "product_id"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    sale_price: Decimal | None = Field(default=None, sa_column=Column(MONEY))
    online_price: Decimal | None = Field(default=None, sa_column=Column(MONEY))
    annual_volume: int = 0


class Contract(ProvisionalDue, table=True):
    """The annual purchase agreement (购销协议, 每年一签) between an institution and an enterprise."""

    __table_args__ = (UniqueConstraint("program_id", "institution_id", "enterprise_id", "year"),
                      Index("ix_contract_program_state_due", "program_id", "state", "due_on"))
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    year: int
    state: ContractState = Field(
        default=ContractState.PENDING, sa_column=Column(EnumString(ContractState), nullable=False)
    )
    signed_on: date | None = None
    due_on: date | None = None
    agreed_volumes: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class PurchaseOrder(SQLModel, table=True):
    """An order on the platform; delivery within the program's SLA (72 h in Shenyang)."""

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    quantity: int
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    ordered_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    accepted_on: date | None = None  # delivery acceptance starts the payment clock


class Payment(ProvisionalDue, table=True):
    """What is owed for an accepted delivery: due at the end of the following month (次月底)."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="purchaseorder.id", unique=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    due_on: date
    paid_on: date | None = None


class QuarterlyReport(SQLModel, table=True):
    """The quarterly statistics table (数据统计表, seed 001 att.3) of a program's region."""

    __table_args__ = (UniqueConstraint("program_id", "year", "quarter"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    year: int
    quarter: int
    due_on: date
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))


class Violation(SQLModel, table=True):
    """A rule broken by an institution or an enterprise, found by continuous review."""

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    kind: ViolationKind = Field(sa_column=Column(EnumString(ViolationKind), nullable=False))
    subject_type: str = Field(max_length=32)  # institution / enterprise
    subject_id: int
    detected_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))


class EnforcementAction(SQLModel, table=True):
    """An enforcement step proposed for a violation; a person decides it (interview … disqualification)."""

    id: int | None = Field(default=None, primary_key=True)
    violation_id: int = Field(foreign_key="violation.id", index=True)
    kind: EnforcementKind = Field(sa_column=Column(EnumString(EnforcementKind), nullable=False))
    state: EnforcementState = Field(
        default=EnforcementState.PROPOSED, sa_column=Column(EnumString(EnforcementState), nullable=False)
    )
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    reason: str | None = None
