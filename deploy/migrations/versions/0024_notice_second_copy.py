"""notices whose careful resend went out unconfirmed: never handed to the server a third time (issue #18)

Revision ID: 0024_notice_second_copy
Revises: 0023_notice_recipient
Create Date: 2026-12-06 12:00:00

`notice.second_copy_out` is committed back to back with a careful resend's final dot (tasks/outbox/careful.py
says in which order on each database), and cleared when the server refuses that end. A notice found with it and
no recorded acceptance — its sender lost, or the server silent after the end — may have arrived twice
(`maybe_delivered`, then this resend), so it is settled `sent`, marked not confirmed, and never handed over
again: no kill can make it arrive a third time (tasks/outbox/leases.py). Not null, false for every existing
row; no index (read with the rows a reclaim already selects).
"""
from alembic import op
import sqlalchemy as sa

revision = '0024_notice_second_copy'
down_revision = '0023_notice_recipient'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notice', sa.Column('second_copy_out', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('notice', 'second_copy_out')
