"""violation's open violations by rule as a partial index in place of (program_id, state, rule) (issue #14, figure 8)

Revision ID: 0032_violation_open_index
Revises: 0031_violation_key_bytewise
Create Date: 2026-12-07 01:10:00

Every reader of `ix_violation_program_state_rule` asks for open violations (the enforcement ladder's candidates,
the overview's panel, `violations list --open`, the page's open filter and count, the reconciler's closing); the
closed ones — most of a first pass's violations, history found already cured — are read by id, by the natural key
or in the page's (program, detected_at, id) order. So the index holds the open ones only, by (program_id, rule):
432,415 fewer entries to write in a first pass over 1,000,000 order lines, with the readers' plans unchanged
(EXPLAIN ANALYZE before/after in benchmarks/README.md). Both databases support partial indexes.
"""
import sqlalchemy as sa
from alembic import op

revision = '0032_violation_open_index'
down_revision = '0031_violation_key_bytewise'
branch_labels = None
depends_on = None

OPEN = sa.text("state = 'open'")


def upgrade() -> None:
    op.create_index('ix_violation_open_rule', 'violation', ['program_id', 'rule'], unique=False,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    op.drop_index('ix_violation_program_state_rule', table_name='violation')


def downgrade() -> None:
    op.create_index('ix_violation_program_state_rule', 'violation', ['program_id', 'state', 'rule'], unique=False)
    op.drop_index('ix_violation_open_rule', table_name='violation')
