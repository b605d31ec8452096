"""the compliance pass remembers how far it has read settlements and payables; order completion is no longer stored

Revision ID: 0020_compliance_marks
Revises: 0019_notice_maybe_delivered
Create Date: 2026-12-06 08:40:00

`compliancemark` (one row per program): the highest settlement and payable ids the pass has seen, so that it
recomputes which payables were paid when only for orders with something new (benchmark figure 8: recomputing
every order rewrote a million unchanged `paid_on`s per pass on PostgreSQL).

`purchaseorder.delivered_at` and `.accepted_on` are dropped: each pass derives them from the deliveries into a
temporary table. Stored, the first pass rewrote every order row (9 of 48 s at 100,000 lines on PostgreSQL), and
nothing but the pass read them. Their values are derived, so nothing is lost; the downgrade brings them back empty
and the next pass of the old code fills them.
"""
from alembic import op
import sqlalchemy as sa

revision = '0020_compliance_marks'
down_revision = '0019_notice_maybe_delivered'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'compliancemark',
        sa.Column('program_id', sa.Integer(), nullable=False),
        sa.Column('settlement_id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
        sa.PrimaryKeyConstraint('program_id'),
    )
    # Plain ALTER TABLE … DROP COLUMN on both databases (SQLite ≥ 3.35): a batch copy of the table would drop
    # `purchaseorder`, which deliveries, settlements and payables reference (foreign keys are on).
    op.execute('ALTER TABLE purchaseorder DROP COLUMN accepted_on')
    op.execute('ALTER TABLE purchaseorder DROP COLUMN delivered_at')


def downgrade() -> None:
    op.add_column('purchaseorder', sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('purchaseorder', sa.Column('accepted_on', sa.Date(), nullable=True))
    op.drop_table('compliancemark')
