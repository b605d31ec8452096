"""users carry the unit they work for; notices remember when they were printed (issue #19)

Revision ID: 0017_staff_names
Revises: 0016_gate_reminders
Create Date: 2026-12-06 05:30:00

`user.unit` (e.g. 和平区医疗保障局) is shown beside the display name on pages, in the audit trail and in the
letters addressed to a reviewer, so nobody reads a login name such as "reviewer-辽中区". Nullable: existing
users keep working and are shown by their role and districts until a unit is entered.

`notice.printed_at`: letters of recipients without e-mail are printed in batches (`sanjin notices print`);
a printed letter is left out of the next batch. Nullable, no index: a batch reads a program's no-address
notices, which ix_notice_status_next already finds by status.
"""
from alembic import op
import sqlalchemy as sa

revision = '0017_staff_names'
down_revision = '0016_gate_reminders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('user', sa.Column('unit', sa.String(length=100), nullable=True))
    op.add_column('notice', sa.Column('printed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('notice', 'printed_at')
    op.drop_column('user', 'unit')
