"""The typed input a waiting flow accepts: Prefect renders it as a form in its UI."""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field


class GateDecisionInput(RunInput):
    """A decision on one gate. `recorded` is true when the CLI or web already wrote it to the database."""

    gate_id: int = Field(description="审批事项编号 / gate id")
    approve: list[int] = Field(default_factory=list, description="批准的事项编号 / item ids to approve")
    reject: list[int] = Field(default_factory=list, description="驳回的事项编号 / item ids to reject")
    reason: str | None = Field(default=None, description="理由（驳回必填） / reason (required to reject)")
    decided_by: str = Field(description="决定人用户名 / user name of the decider")
    recorded: bool = Field(default=False, description="已由命令行或网页记录 / already recorded elsewhere")
