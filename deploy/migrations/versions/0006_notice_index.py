"""one index for the outbox's program and kind filters instead of two

Revision ID: 0006_notice_index
Revises: 0005_bulk_write_costs
Create Date: 2026-11-22 22:30:00

Every notice row is written three times in figure 2 of issue #6 (enqueued, claimed, marked sent), and
on PostgreSQL neither update can be in place (status is in the queue index), so each writes a new
entry into every index of the table. ix_notice_kind and ix_notice_program_id become one
(program_id, kind) index, which serves the outbox page's per-program status counts and its program
+ kind filter directly. A kind without a program can no longer seek: measured on 300,000 notices, the
page's count and newest-50 for a rare kind (1 in 5,000) took ≤ 14 ms on SQLite and ≤ 15 ms on PostgreSQL
(a common kind ≤ 15 ms), against 0.1-8 ms with the old index — well inside the pages' 100 ms.
30,000 reminders on PostgreSQL, sending stage: 2,890-2,970 → 3,020-3,090 messages/s (three runs each).
"""
from alembic import op

revision = '0006_notice_index'
down_revision = '0005_bulk_write_costs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_notice_kind', table_name='notice')
    op.drop_index('ix_notice_program_id', table_name='notice')
    op.create_index('ix_notice_program_kind', 'notice', ['program_id', 'kind'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notice_program_kind', table_name='notice')
    op.create_index('ix_notice_program_id', 'notice', ['program_id'], unique=False)
    op.create_index('ix_notice_kind', 'notice', ['kind'], unique=False)
