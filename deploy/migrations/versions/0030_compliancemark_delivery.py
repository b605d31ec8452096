"""the compliance pass's delivery mark: payables settled on time are not written (issue #14, figure 8)

Revision ID: 0030_compliancemark_delivery
Revises: 0029_gate_decision_outcomes
Create Date: 2026-12-06 17:40:00

A payable paid in full by its order's one settlement on or before its due day (and today) is read by no one: every
reader asks for payables unpaid or paid after their due day. The pass no longer writes those; `delivery_id` is the
highest delivery it has seen, so a delivery at or below it without a payable was settled on time, not forgotten.
Existing marks start at 0: every delivery is looked at again once, as before.
"""
import sqlalchemy as sa
from alembic import op

revision = "0030_compliancemark_delivery"
down_revision = "0029_gate_decision_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('compliancemark', sa.Column('delivery_id', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('compliancemark') as batch_op:
        batch_op.drop_column('delivery_id')
