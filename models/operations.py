"""What running institutions do: accounts, contracts, selections, orders, deliveries, payments, prices, violations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import MONEY, AwareDateTime, EnumString, JSONType
from models.calendar import ProvisionalDue
from models.compliance.codes import SubjectType, ViolationRule, ViolationState
from models.states import (
    AccountState,
    ContractState,
    EnforcementKind,
    EnforcementState,
)


class PlatformAccount(ProvisionalDue, table=True):
    """The institution's account on the provincial procurement subsystem (省招采子系统)."""

    # Laggards (dashboard, reminders): pending accounts of a program by deadline.
    __table_args__ = (UniqueConstraint("program_id", "institution_id"),
                      Index("ix_platformaccount_program_state_due", "program_id", "state", "due_on"))
    id: int | None = Field(default=None, primary_key=True)
    # Neither is a foreign key (migration 0026): accounts are opened 100,000 at a time by an INSERT … SELECT from
    # the batch's own institutions, and programs and institutions are never deleted; PostgreSQL's two per-row
    # checks doubled that insert.
    program_id: int  # both indexes above lead with it
    institution_id: int = Field(index=True)
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
    # The day the selection ended (its enterprise left the list or lost its qualification); None while it holds.
    ended_on: date | None = None


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
    """An order line on the platform (采购订单); complete within the program's SLA (72 h in Shenyang, seed 000)."""

    # The compliance pass reads a program's orders by product (no sales, price alerts) and by enterprise (pattern).
    __table_args__ = (UniqueConstraint("program_id", "order_no"),
                      Index("ix_purchaseorder_product_ordered", "product_id", "ordered_at"))
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")  # the unique (program_id, order_no) leads with it
    order_no: str = Field(max_length=64)  # 订单编号
    institution_id: int = Field(foreign_key="institution.id", index=True)
    product_id: int = Field(foreign_key="product.id")  # indexed by ix_purchaseorder_product_ordered
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)  # the product's enterprise, who must deliver
    distributor: str = Field(max_length=200)  # 配送企业
    quantity: int  # 采购数量
    unit_price: Decimal = Field(sa_column=Column(MONEY, nullable=False))  # 采购单价(元)
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))  # quantity × unit price
    ordered_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))  # 下单时间
    # When the order was complete is derived by each compliance pass from its deliveries, into a temporary table
    # (tasks/compliance/derive.py): stored here, the first pass rewrote every order row (9 of 48 s on PostgreSQL).
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")


class Delivery(SQLModel, table=True):
    """One delivery of an order and its acceptance (配送验收); an order may arrive in several."""

    __table_args__ = (UniqueConstraint("order_id", "arrived_at"),)
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="purchaseorder.id")  # the unique (order_id, arrived_at) leads with it
    arrived_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))  # 送达时间
    accepted_on: date  # 验收日期: starts the payment clock (次月底)
    quantity: int  # 验收数量
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")


class Settlement(SQLModel, table=True):
    """A payment made for an order (货款结算); partial payments add up."""

    # Platform exports carry no payment serial: the same amount paid for the same order on the same day is
    # taken to be one payment, so overlapping exports do not count it twice.
    __table_args__ = (UniqueConstraint("order_id", "paid_on", "amount"),)
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="purchaseorder.id")
    paid_on: date  # 付款日期
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))  # 付款金额(元)
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")


class Payment(ProvisionalDue, table=True):
    """What is owed for one accepted delivery: due at the end of the following month (次月底).

    Written by the compliance pass from deliveries and settlements; `paid_on` is the day the order's payments
    covered it (oldest payable first). Rows without a delivery are payables recorded by hand. A delivery paid on
    time by its order's one settlement has none (read by no one; `ComplianceMark.delivery_id`).

    No foreign keys (migration 0023): these are derived rows, written by one `INSERT … SELECT` that reads every
    reference from the rows it names, and orders, deliveries and institutions are never deleted. The three
    per-row checks were 9.2 of 14 s of that insert at 100,000 payables on PostgreSQL.
    """

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(index=True)  # purchaseorder.id
    delivery_id: int | None = Field(default=None, unique=True)  # delivery.id (at most one payable per delivery)
    institution_id: int = Field(index=True)  # institution.id
    amount: Decimal = Field(sa_column=Column(MONEY, nullable=False))
    due_on: date
    paid_on: date | None = None


class ComplianceMark(SQLModel, table=True):
    """How far the compliance pass has read a program's settlements, payables and deliveries (the highest ids seen).

    Which payables were paid when is recomputed only for orders with a settlement or a payable past the mark (and
    for new deliveries): recomputing every order each pass rewrote a million `paid_on`s that had not changed.
    A delivery at or below `delivery_id` without a payable was paid on time by its order's one settlement: the
    pass does not write such payables (no reader asks for them; migration 0029) until the order gets another one.
    """

    program_id: int = Field(foreign_key="program.id", primary_key=True)
    settlement_id: int = 0
    payment_id: int = 0
    delivery_id: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class SalePrice(SQLModel, table=True):
    """An institution's sale price of a product from a date (销售价格); the latest by date is in force."""

    __table_args__ = (UniqueConstraint("program_id", "institution_id", "product_id", "effective_on"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")  # the unique constraint leads with it
    institution_id: int = Field(foreign_key="institution.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    offline_price: Decimal = Field(sa_column=Column(MONEY, nullable=False))  # 线下销售价(元)
    online_price: Decimal | None = Field(default=None, sa_column=Column(MONEY))  # 线上销售价(元)
    effective_on: date  # 执行日期
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")


class LowestPrice(SQLModel, table=True):
    """A new national lowest price of a drug (全国最低价, seed 004): its enterprise must report within N working days."""

    __table_args__ = (UniqueConstraint("program_id", "drug_code", "effective_on"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")
    drug_code: str = Field(max_length=32)  # 药品统一编码
    price: Decimal = Field(sa_column=Column(MONEY, nullable=False))  # 全国最低价(元)
    effective_on: date  # 执行日期
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")


class PriceReport(SQLModel, table=True):
    """An enterprise's price report to the provincial platform (企业价格申报, seed 004)."""

    __table_args__ = (UniqueConstraint("program_id", "drug_code", "reported_on"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id")
    drug_code: str = Field(max_length=32)  # 药品统一编码
    reported_on: date  # 申报日期
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")


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
    """A rule broken by an institution, an enterprise or a listed product, found by the compliance pass.

    Its natural key is (program, rule, subject, object, occurrence): `object_key` names what it is about (an
    order number, a drug code, a period, or '' for the subject as a whole), so a re-run finds the same row. It
    stays open while its cause lasts and is closed by the pass with the date and reason; if the cause comes
    back later it is a new occurrence.
    """

    __table_args__ = (
        # The natural key, unique. PostgreSQL compares `object_key` in it bytewise (`varchar_pattern_ops`; migration
        # 0031): equality is the same as under the database's collation (deterministic: equal means the same bytes),
        # but each comparison is a memcmp, not a strcoll. Writing 250,000 late deliveries' violations cost
        # 3.8 s of backend CPU with the collated key, 3.1 s with this one (psql, 1,000,000-line base). No query
        # orders or ranges by `object_key`; those that name `rule`, `subject_type`, `subject_id` use it as before.
        Index("ux_violation_key", "program_id", "rule", "subject_type", "subject_id", "object_key", "occurrence",
              unique=True, postgresql_ops={"object_key": "varchar_pattern_ops"}),
        # The open violations by rule (the ladder's candidates, the panel's counts, the `--open` filters, the
        # reconciler's closing): a partial index, migration 0032. Most of a first pass's violations are history
        # (delivered late, paid late: closed when first seen, 432,415 of 595,770 at 1,000,000 order lines) that
        # the `(program_id, state, rule)` index it replaces held for no reader — closed rows are read by id, by
        # the natural key, or in the page's (program, detected_at, id) order, with the same plans (benchmarks/README).
        Index("ix_violation_open_rule", "program_id", "rule", postgresql_where=text("state = 'open'"),
              sqlite_where=text("state = 'open'")),
        # The violations page's keyset order, newest first (web: /violations; migration 0018).
        Index("ix_violation_program_detected", "program_id", "detected_at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # program.id; every index leads with it. No foreign key (migration 0026): the pass writes a program's violations
    # under its row lock with the id as a constant, and the per-row check was ~7 µs of each insert on PostgreSQL.
    program_id: int
    rule: ViolationRule = Field(sa_column=Column(EnumString(ViolationRule), nullable=False))
    subject_type: SubjectType = Field(sa_column=Column(EnumString(SubjectType), nullable=False))
    subject_id: int
    object_key: str = Field(default="", max_length=64)
    occurrence: int = 1
    district: str | None = Field(default=None, max_length=32)  # the institution's (or the order's) district
    state: ViolationState = Field(
        default=ViolationState.OPEN, sa_column=Column(EnumString(ViolationState), nullable=False)
    )
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    detected_on: date
    detected_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    closed_on: date | None = None
    closed_reason: str | None = Field(default=None, max_length=200)


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
