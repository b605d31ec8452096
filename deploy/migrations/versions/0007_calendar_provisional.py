"""official holiday schedules in the database; provisional deadlines keep their basis

Revision ID: 0007_calendar_provisional
Revises: 0006_notice_index
Create Date: 2026-12-06 03:30:00

Issue #12: a year without an official schedule never stops work. Deadlines computed into such a year are
stored as provisional (暂定) with what they were computed from (`due_from` + `due_working_days`), so the
moment the bureau enters the State Council's notice (`sanjin calendar import`, into `calendaryear` /
`calendarday`, shared by every worker) each is recomputed in place.
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_calendar_provisional'
down_revision = '0006_notice_index'
branch_labels = None
depends_on = None

_DUE_TABLES = ('gate', 'platformaccount', 'contract', 'payment')


def upgrade() -> None:
    op.create_table(
        'calendaryear',
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('text_sha256', sa.String(length=64), nullable=False),
        sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('entered_by', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('year'),
    )
    op.create_table(
        'calendarday',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('working', sa.Boolean(), nullable=False),
        sa.Column('festival', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )
    op.create_index('ix_calendarday_year', 'calendarday', ['year'], unique=False)
    for table in _DUE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('due_on_provisional', sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
            batch.add_column(sa.Column('due_from', sa.Date(), nullable=True))
            batch.add_column(sa.Column('due_working_days', sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    for table in _DUE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('due_working_days')
            batch.drop_column('due_from')
            batch.drop_column('due_on_provisional')
    op.drop_index('ix_calendarday_year', table_name='calendarday')
    op.drop_table('calendarday')
    op.drop_table('calendaryear')
