"""daily program snapshots for the overview's funnel and trend (issue #19)

Revision ID: 0016_gate_reminders
Revises: 0015_signin
Create Date: 2026-12-06 05:40:00

programsnapshot holds one row per program and day: the enrollment funnel's counts (申报 → 区县审核 → 市级审核 → 运行
→ 注册 → 签约) and the non-empty batches by state, written once a day by the program flow; the overview draws the
trend from them. The gate reminders of the same issue need no schema (their keys are in the outbox).
"""
from alembic import op
import sqlalchemy as sa

revision = '0016_gate_reminders'
down_revision = '0015_signin'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('programsnapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'day')
    )


def downgrade() -> None:
    op.drop_table('programsnapshot')
