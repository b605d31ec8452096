"""operational data of the provincial platform and violations with evidence (issue #14)

Revision ID: 0008_operations_compliance
Revises: 0007_calendar_provisional
Create Date: 2026-12-06 03:00:00

New tables for the platform's exports: delivery (配送验收), settlement (货款结算), saleprice (销售价格),
lowestprice (全国最低价), pricereport (企业价格申报). purchaseorder, payment and violation are recreated, not
altered: no code ever wrote a row to them (issue #14: "the tables exist and nothing fills them"), and their new
shape has NOT NULL columns without defaults (order number, enterprise, unit price; rule, state) and drops
payment's unnamed unique order_id, which SQLite could only change by rebuilding the table anyway.
enforcementaction refers to violation, so it is dropped and created again unchanged.
institution gains price_index_ok (量价比较指数, seed 002 §七), application gains left_on (minimum participation).
"""
from alembic import op
import sqlalchemy as sa

revision = '0008_operations_compliance'
down_revision = '0007_calendar_provisional'
branch_labels = None
depends_on = None


def _enforcementaction() -> None:
    op.create_table('enforcementaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('violation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=None), nullable=True),
    sa.ForeignKeyConstraint(['violation_id'], ['violation.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_enforcementaction_violation_id', 'enforcementaction', ['violation_id'], unique=False)


def upgrade() -> None:
    op.drop_index('ix_enforcementaction_violation_id', table_name='enforcementaction')
    op.drop_table('enforcementaction')
    op.drop_index('ix_violation_program_id', table_name='violation')
    op.drop_table('violation')
    op.drop_index('ix_payment_institution_id', table_name='payment')
    op.drop_table('payment')
    op.drop_index('ix_purchaseorder_institution_id', table_name='purchaseorder')
    op.drop_index('ix_purchaseorder_program_id', table_name='purchaseorder')
    op.drop_table('purchaseorder')

    with op.batch_alter_table('application', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_on', sa.Date(), nullable=True))
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_index_ok', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.alter_column('price_index_ok', existing_type=sa.Boolean(), server_default=None)

    op.create_table('purchaseorder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('distributor', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('ordered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_on', sa.Date(), nullable=True),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'order_no')
    )
    op.create_index('ix_purchaseorder_institution_id', 'purchaseorder', ['institution_id'], unique=False)
    op.create_index('ix_purchaseorder_enterprise_id', 'purchaseorder', ['enterprise_id'], unique=False)
    op.create_index('ix_purchaseorder_product_ordered', 'purchaseorder', ['product_id', 'ordered_at'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_on', sa.Date(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['purchaseorder.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'arrived_at')
    )
    op.create_table('settlement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['purchaseorder.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'paid_on', 'amount')
    )
    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.Column('due_on_provisional', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('due_from', sa.Date(), nullable=True),
    sa.Column('due_working_days', sa.SmallInteger(), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id'], ),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['purchaseorder.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id')
    )
    op.create_index('ix_payment_institution_id', 'payment', ['institution_id'], unique=False)
    op.create_index('ix_payment_order_id', 'payment', ['order_id'], unique=False)

    op.create_table('saleprice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('offline_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('online_price', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'institution_id', 'product_id', 'effective_on')
    )
    op.create_index('ix_saleprice_institution_id', 'saleprice', ['institution_id'], unique=False)
    op.create_table('lowestprice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('drug_code', sa.String(length=32), nullable=False),
    sa.Column('price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'drug_code', 'effective_on')
    )
    op.create_table('pricereport',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('drug_code', sa.String(length=32), nullable=False),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'drug_code', 'reported_on')
    )

    op.create_table('violation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('object_key', sa.String(length=64), nullable=False),
    sa.Column('occurrence', sa.Integer(), nullable=False),
    sa.Column('district', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('detected_on', sa.Date(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('closed_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'rule', 'subject_type', 'subject_id', 'object_key', 'occurrence')
    )
    op.create_index('ix_violation_program_state_rule', 'violation', ['program_id', 'state', 'rule'], unique=False)
    _enforcementaction()


def downgrade() -> None:
    op.drop_index('ix_enforcementaction_violation_id', table_name='enforcementaction')
    op.drop_table('enforcementaction')
    op.drop_index('ix_violation_program_state_rule', table_name='violation')
    op.drop_table('violation')
    op.drop_table('pricereport')
    op.drop_table('lowestprice')
    op.drop_index('ix_saleprice_institution_id', table_name='saleprice')
    op.drop_table('saleprice')
    op.drop_index('ix_payment_order_id', table_name='payment')
    op.drop_index('ix_payment_institution_id', table_name='payment')
    op.drop_table('payment')
    op.drop_table('settlement')
    op.drop_table('delivery')
    op.drop_index('ix_purchaseorder_product_ordered', table_name='purchaseorder')
    op.drop_index('ix_purchaseorder_enterprise_id', table_name='purchaseorder')
    op.drop_index('ix_purchaseorder_institution_id', table_name='purchaseorder')
    op.drop_table('purchaseorder')
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_column('price_index_ok')
    with op.batch_alter_table('application', schema=None) as batch_op:
        batch_op.drop_column('left_on')

    op.create_table('purchaseorder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('ordered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_purchaseorder_institution_id', 'purchaseorder', ['institution_id'], unique=False)
    op.create_index('ix_purchaseorder_program_id', 'purchaseorder', ['program_id'], unique=False)
    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.Column('due_on_provisional', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('due_from', sa.Date(), nullable=True),
    sa.Column('due_working_days', sa.SmallInteger(), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['purchaseorder.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    op.create_index('ix_payment_institution_id', 'payment', ['institution_id'], unique=False)
    op.create_table('violation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_violation_program_id', 'violation', ['program_id'], unique=False)
    _enforcementaction()
