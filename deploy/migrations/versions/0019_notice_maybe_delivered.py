"""notices a lost sender may have delivered: their next delivery is careful (issue #18)

Revision ID: 0019_notice_maybe_delivered
Revises: 0018_audit_chain_heads
Create Date: 2026-12-06 08:40:00

`notice.maybe_delivered` is set as the notice's chunk is handed to the mailer, and stays set when the sender
is lost before recording the outcome (or the server did not answer the message's end): a copy may have
arrived. Such a notice is sent again carefully — one at a time, its row committed sent right after the
server accepts it (tasks/outbox/careful.py; reclaimed by tasks/outbox/leases.py) — so no crash loses it.
(When this was written a third copy needed a kill between that acceptance and its record; migration 0024's
`second_copy_out` mark closed that.) Not null, false for every existing row; no index (read with the
claimed rows).
"""
from alembic import op
import sqlalchemy as sa

revision = '0019_notice_maybe_delivered'
down_revision = '0018_audit_chain_heads'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notice', sa.Column('maybe_delivered', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('notice', 'maybe_delivered')
