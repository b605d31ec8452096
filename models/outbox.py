"""Outgoing notices: written with the state change that causes them, sent later, exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, false
from sqlmodel import Field, SQLModel

from models.base import AwareDateTime, EnumString, JSONType
from models.states import NoticeStatus


class Notice(SQLModel, table=True):
    """One notice in the outbox; `idempotency_key` makes a re-run write nothing new."""

    __table_args__ = (Index("ix_notice_status_next", "status", "next_attempt_at"),
                      Index("ix_notice_program_kind", "program_id", "kind"),
                      # The outbox page, newest first by key, filtered by status or program (migration 0018).
                      Index("ix_notice_status_id", "status", "id"),
                      Index("ix_notice_program_id", "program_id", "id"),
                      # The outbox's counts by status, read from an index alone: a district reviewer's through its
                      # institutions' notices, one program's (migration 0023).
                      Index("ix_notice_recipient", "recipient_type", "recipient_id", "status"),
                      Index("ix_notice_program_status", "program_id", "status"))
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    # Not a foreign key (migration 0005): the outbox is written 100,000 rows at a time by statements that
    # select the program's own rows, and a program is never deleted; PostgreSQL's per-row check cost
    # 0.3-0.5 s per 100,000 notices. Still indexed: notices and their counts are shown per program.
    program_id: int | None = None
    kind: str = Field(max_length=48)  # template name, e.g. application_decision
    recipient_type: str = Field(max_length=32)  # institution / enterprise / city / user
    recipient_id: int | None = None
    recipient_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=200)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    subject: str | None = Field(default=None, max_length=300)
    status: NoticeStatus = Field(
        default=NoticeStatus.PENDING, sa_column=Column(EnumString(NoticeStatus), nullable=False)
    )
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    message_id: str | None = Field(default=None, max_length=200)
    # Handed to the mailer in an attempt whose outcome may not be recorded (set as its chunk goes out; kept
    # when a lost sender's lease runs out, or when the server did not answer the message's end): a copy may
    # have arrived. Its next delivery is careful (tasks/outbox/leases.py).
    maybe_delivered: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # That careful resend's end went out (committed back to back with its final dot; cleared if the server
    # refuses it): a second copy may have arrived. Unless its acceptance is recorded it is settled `sent`, not
    # confirmed, and never handed over again, so a crash cannot make it arrive a third time (migration 0023,
    # tasks/outbox/careful.py).
    second_copy_out: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    last_error: str | None = None
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    # A letter nobody can e-mail, printed for post or hand delivery (`sanjin notices print`, audited);
    # the next batch leaves it out.
    printed_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
