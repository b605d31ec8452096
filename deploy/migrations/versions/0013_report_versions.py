"""issued reports kept as versions, their files stored with them (issue #16)

Revision ID: 0013_report_versions
Revises: 0012_enforcement_ladder
Create Date: 2026-12-06 05:30:00

reportversion holds every issued version of a program's report for a period (the quarterly statistics of seed 001
att. 3, the year-end summary): its figures and their hash, the XLSX and HTML as issued, who issued it and when.
The outbox attaches a version's workbook from here.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013_report_versions'
down_revision = '0012_enforcement_ladder'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reportversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('xlsx', sa.LargeBinary(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('file_stem', sa.String(length=120), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('generated_by', sa.String(length=64), nullable=False),
    sa.Column('data_as_of', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'kind', 'period', 'version')
    )


def downgrade() -> None:
    op.drop_table('reportversion')
