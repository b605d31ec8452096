"""the enforcement ladder, enterprise exit and bars, contracts all year (issue #15)

Revision ID: 0009_enforcement
Revises: 0008_operations_compliance
Create Date: 2026-12-06 04:00:00

product gains winner_count (中选企业数, seed 003 §四(一)1: the agreed-volume share); selection gains ended_on
(its enterprise left the list).
"""
from alembic import op
import sqlalchemy as sa

revision = '0009_enforcement'
down_revision = '0008_operations_compliance'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('winner_count', sa.Integer(), nullable=True))
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ended_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.drop_column('ended_on')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('winner_count')
