"""a district reviewer's outbox counts its notices by status through its institutions (issue #19)

Revision ID: 0023_notice_recipient
Revises: 0022_violation_keyset
Create Date: 2026-12-06 11:40:00

The outbox page shows how many notices of each status the reader may see. For a district reviewer that
was a grouped count over every notice, each checked for its institution's district: 137 ms CPU a page at
100,000 institutions. With (recipient_type, recipient_id, status) the count reads the district's
institutions and, for each, its notices' index entries (tasks/trust/scope.py notice_counts).
"""
from alembic import op

revision = '0023_notice_recipient'
down_revision = '0022_violation_keyset'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_notice_recipient', 'notice', ['recipient_type', 'recipient_id', 'status'])
    op.create_index('ix_notice_program_status', 'notice', ['program_id', 'status'])


def downgrade() -> None:
    op.drop_index('ix_notice_program_status', table_name='notice')
    op.drop_index('ix_notice_recipient', table_name='notice')
