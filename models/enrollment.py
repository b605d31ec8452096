"""Institutions, their applications, the batches they travel in, reviews and gates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

import models.catalog  # noqa: F401  Batch.list_version_id references its table: it must be in the metadata
from models.base import AwareDateTime, EnumString, JSONType
from models.calendar import ProvisionalDue
from models.gate_decisions import no_decisions
from models.states import (
    ApplicationState,
    BatchState,
    Decision,
    GateKind,
    GateState,
    InstitutionKind,
    ReviewLevel,
    Role,
)


class Institution(SQLModel, table=True):
    """A designated medical institution or pharmacy (申请表 fields, seed 001 att.1)."""

    # The dashboard's coverage counts institutions per district and kind from this index alone.
    __table_args__ = (Index("ix_institution_district_kind", "district", "kind"),
                      # The laggards page walks institutions in its order, district then code (migration 0018).
                      Index("ix_institution_district_code", "district", "insurance_code", "id"))
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)  # 单位名称
    address: str = Field(max_length=300)  # 单位地址
    uscc: str = Field(max_length=18, unique=True, index=True)  # 统一社会信用代码
    legal_rep: str = Field(max_length=64)  # 法人代表
    insurance_code: str = Field(max_length=12, unique=True, index=True)  # 机构医保编码
    contact_name: str = Field(max_length=64)  # 联系人
    phone: str = Field(max_length=32)  # 联系电话
    email: str | None = Field(default=None, max_length=200)
    district: str = Field(max_length=32)  # indexed by ix_institution_district_kind
    kind: InstitutionKind = Field(sa_column=Column(EnumString(InstitutionKind), nullable=False, index=True))
    private_tertiary: bool = False  # 民营三级: ≥ 80 drugs in Jiangxi (seed 002)
    special_designated: bool = False  # 特药定点
    # A pharmacy whose overall price level is within the 量价比较指数 may mark up (002 §七: 顺加不超15%).
    price_index_ok: bool = False
    proxy_parent_id: int | None = Field(default=None, foreign_key="institution.id")  # 代采 upper institution


class Batch(SQLModel, table=True):
    """A batch of applications: declared at its cut-off, matured when all decided, then run."""

    __table_args__ = (UniqueConstraint("program_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    number: int
    state: BatchState = Field(default=BatchState.OPEN, sa_column=Column(EnumString(BatchState), nullable=False))
    opened_on: date
    cutoff_on: date  # the batch is declared at the end of this day, or earlier when full
    declared_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    matured_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    running_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    list_version_id: int | None = Field(default=None, foreign_key="listversion.id")


class Application(SQLModel, table=True):
    """An institution's application with its commitment (承诺书, seed 001 att.2 / 002 att.1)."""

    # State is deliberately in no index: on PostgreSQL a state change is then an in-place (HOT) update
    # that touches none of the indexes (migration 0005; the table keeps 30 % of each page free for it).
    __table_args__ = (UniqueConstraint("program_id", "institution_id", "attempt"),
                      {"postgresql_with": {"fillfactor": 70}})
    id: int | None = Field(default=None, primary_key=True)
    # No index of its own: the unique constraint leads with it.
    program_id: int = Field(foreign_key="program.id")
    institution_id: int = Field(foreign_key="institution.id", index=True)
    attempt: int = 1  # a rejected institution may apply again into a later batch
    district: str = Field(max_length=32)  # not indexed: nothing selects applications by district alone
    state: ApplicationState = Field(
        default=ApplicationState.SUBMITTED, sa_column=Column(EnumString(ApplicationState), nullable=False)
    )
    batch_id: int | None = Field(default=None, foreign_key="batch.id", index=True)
    committed_drug_count: int  # 承诺配备集采药品不少于 N 种
    price_option: str = Field(default="at_winning_price", max_length=32)  # or "markup_15"
    participation_years: int = 1
    pay_by_next_month_end: bool = True
    dedicated_counter: bool = True
    dual_price_labels: bool = True
    complaint_phone_displayed: bool = True
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    reason: str | None = None  # the deciding reason shown to the institution
    import_id: int | None = Field(default=None, foreign_key="importrecord.id")
    submitted_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    left_on: date | None = None  # the day a running institution withdrew or exited (minimum participation, 001)


class Review(SQLModel, table=True):
    """One level's decision on one application (district opinion, city opinion)."""

    # The gate page pages and counts one gate's outcomes by this index (a city gate: 100,000 reviews).
    __table_args__ = (UniqueConstraint("application_id", "level"),
                      Index("ix_review_gate_decision", "gate_id", "decision", "application_id"))
    id: int | None = Field(default=None, primary_key=True)
    # application_id and gate_id are not foreign keys (migration 0005): reviews are append-only and written
    # 100,000 at a time by the decision's own INSERT ... SELECT from the gate's applications, and neither
    # applications nor gates are ever deleted. PostgreSQL's two per-row checks were 0.83 s of a city
    # gate's 1.39 s review insert.
    application_id: int  # indexed by the unique (application_id, level)
    level: ReviewLevel = Field(sa_column=Column(EnumString(ReviewLevel), nullable=False))
    decision: Decision = Field(sa_column=Column(EnumString(Decision), nullable=False))
    reason: str | None = None
    reviewer: str = Field(max_length=64)
    gate_id: int | None = None  # indexed by ix_review_gate_decision
    decided_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


class Gate(ProvisionalDue, table=True):
    """A human decision a flow waits for; the row, not Prefect, is the truth of the decision."""

    id: int | None = Field(default=None, primary_key=True)
    natural_key: str = Field(max_length=200, unique=True)  # opening a gate twice finds the same row
    program_id: int = Field(foreign_key="program.id", index=True)
    phase: str = Field(max_length=32)
    kind: GateKind = Field(sa_column=Column(EnumString(GateKind), nullable=False))
    title: str = Field(max_length=200)
    subject_type: str = Field(max_length=32)  # batch, declaration, list, program, violation
    subject_id: int | None = None
    items: list[int] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    district: str | None = Field(default=None, max_length=32, index=True)
    decider_role: Role = Field(sa_column=Column(EnumString(Role), nullable=False))
    state: GateState = Field(default=GateState.OPEN, sa_column=Column(EnumString(GateState), nullable=False))
    opened_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    due_on: date
    # {"outcomes": [...]}: each outcome once with the items it covers (models/gate_decisions.py, migration 0029)
    decision: dict[str, Any] = Field(default_factory=no_decisions, sa_column=Column(JSONType, nullable=False))
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    flow_run_id: str | None = Field(default=None, max_length=64)  # the Prefect run waiting, if any
    version: int = 1  # bumped on decide: two deciders, one wins
