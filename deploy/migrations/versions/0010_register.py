"""the register of designated institutions, versioned by import date (issue #16)

Revision ID: 0010_register
Revises: 0009_enforcement
Create Date: 2026-12-06 04:00:00

registerentry holds every imported version of a program's 定点医药机构名册 (one version per import date); coverage
divides by the designated institutions of the latest version on or before the day it is counted for.
Depends on 0009_enforcement (issue #16's enforcement work), which revises 0008_operations_compliance.
"""
from alembic import op
import sqlalchemy as sa

revision = '0010_register'
down_revision = '0009_enforcement'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registerentry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('insurance_code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('designated_on', sa.Date(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'as_of', 'insurance_code')
    )
    op.create_index('ix_registerentry_program_as_of_district', 'registerentry', ['program_id', 'as_of', 'district'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_registerentry_program_as_of_district', table_name='registerentry')
    op.drop_table('registerentry')
