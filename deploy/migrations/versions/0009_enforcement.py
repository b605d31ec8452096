"""the enforcement ladder, enterprise exit and bars, contracts all year (issue #15)

Revision ID: 0009_enforcement
Revises: 0008_operations_compliance
Create Date: 2026-12-06 04:00:00

product gains winner_count (中选企业数, seed 003 §四(一)1: the agreed-volume share); selection gains ended_on
(its enterprise left the list). New tables: enforcementcase (the ladder of one violation) and badrecord
(不良记录, the bar of seed 004), enterpriseexit (001's exit, effective on its date).
"""
from alembic import op
import sqlalchemy as sa

revision = '0009_enforcement'
down_revision = '0008_operations_compliance'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('enforcementcase',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('violation_id', sa.Integer(), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('due_on_provisional', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('due_from', sa.Date(), nullable=True),
    sa.Column('due_working_days', sa.SmallInteger(), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.ForeignKeyConstraint(['violation_id'], ['violation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('violation_id')
    )
    op.create_index(op.f('ix_enforcementcase_program_id'), 'enforcementcase', ['program_id'], unique=False)
    op.create_table('badrecord',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('barred_until', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_badrecord_enterprise_id'), 'badrecord', ['enterprise_id'], unique=False)
    op.create_index(op.f('ix_badrecord_program_id'), 'badrecord', ['program_id'], unique=False)
    op.create_table('enterpriseexit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('exits_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'enterprise_id', 'exits_on')
    )
    op.create_index(op.f('ix_enterpriseexit_program_id'), 'enterpriseexit', ['program_id'], unique=False)
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('winner_count', sa.Integer(), nullable=True))
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ended_on', sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_index(op.f('ix_enterpriseexit_program_id'), table_name='enterpriseexit')
    op.drop_table('enterpriseexit')
    op.drop_index(op.f('ix_badrecord_program_id'), table_name='badrecord')
    op.drop_index(op.f('ix_badrecord_enterprise_id'), table_name='badrecord')
    op.drop_table('badrecord')
    op.drop_index(op.f('ix_enforcementcase_program_id'), table_name='enforcementcase')
    op.drop_table('enforcementcase')
    with op.batch_alter_table('selection', schema=None) as batch_op:
        batch_op.drop_column('ended_on')
    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('winner_count')
