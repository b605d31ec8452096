"""a gate's decisions stored once per outcome, not once per item (issue #17, figure 1)

Revision ID: 0029_gate_decision_outcomes
Revises: 0028_violation_no_program_key
Create Date: 2026-12-06 17:30:00

`gate.decision` was `{"items": {"<id>": {"decision", "reason", "by", "at"}}}`: the city gate's one decision on
100,000 applications wrote a 10.7 MB document (~0.3 s to serialize and write on SQLite, and much of a 0.9 s
commit). It becomes `{"outcomes": [{"decision", "reason", "by", "at", "items": [ids]}]}` (models/gate_decisions.py):
each distinct outcome once, with the sorted ids it covers — 0.7 MB for that decision. Same facts, regrouped; the
downgrade spreads them back item by item. The grouping is written out here, not imported: a migration keeps
doing what it did when the models move on.
"""
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0029_gate_decision_outcomes'
down_revision = '0028_violation_no_program_key'
branch_labels = None
depends_on = None

GATE = sa.table('gate', sa.column('id', sa.Integer), sa.column('decision', sa.JSON))
FIELDS = ('decision', 'reason', 'by', 'at')


def _rows() -> Iterator[tuple[int, dict[str, Any]]]:
    """Each gate's column, one row at a time (a decided city gate's old document is ~10 MB)."""
    bind = op.get_bind()
    for (gate_id,) in bind.execute(sa.select(GATE.c.id).order_by(GATE.c.id)).all():
        decision = bind.execute(sa.select(GATE.c.decision).where(GATE.c.id == gate_id)).scalar_one()
        yield gate_id, decision or {}


def _write(gate_id: int, decision: dict[str, Any]) -> None:
    op.get_bind().execute(sa.update(GATE).where(GATE.c.id == gate_id).values(decision=decision))


def upgrade() -> None:
    for gate_id, decision in _rows():
        if 'outcomes' in decision:
            continue
        groups: dict[tuple[Any, ...], list[int]] = {}
        for key, outcome in (decision.get('items') or {}).items():
            groups.setdefault(tuple(outcome.get(k) for k in FIELDS), []).append(int(key))
        _write(gate_id, {'outcomes': [{**dict(zip(FIELDS, fields)), 'items': sorted(ids)}
                                      for fields, ids in groups.items()]})


def downgrade() -> None:
    for gate_id, decision in _rows():
        if 'items' in decision and 'outcomes' not in decision:
            continue
        items: dict[str, dict[str, Any]] = {}
        for group in decision.get('outcomes') or []:
            for i in group['items']:
                items[str(i)] = {k: group.get(k) for k in FIELDS}
        _write(gate_id, {'items': items})
