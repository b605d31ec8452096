"""Ladders started by hand (#15): a manager or the institution's district reviewer starts one citing a violation
or only a reason, so enforcementcase.violation_id may be empty, and the case keeps the reason and who started it.

Revision ID: 0012_enforcement_ladder
Revises: 0010_register
"""
from alembic import op
import sqlalchemy as sa

revision = '0012_enforcement_ladder'
down_revision = '0010_register'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('enforcementcase', schema=None) as batch_op:
        batch_op.alter_column('violation_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('started_by', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM enforcementcase WHERE violation_id IS NULL")
    with op.batch_alter_table('enforcementcase', schema=None) as batch_op:
        batch_op.drop_column('started_by')
        batch_op.drop_column('reason')
        batch_op.alter_column('violation_id', existing_type=sa.Integer(), nullable=False)
