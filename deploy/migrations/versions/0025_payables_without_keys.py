"""payables are derived rows: no foreign keys on payment (issue #14, figure 8)

Revision ID: 0025_payables_without_keys
Revises: 0024_notice_second_copy
Create Date: 2026-12-06 11:30:00

`payment` holds the payables the compliance pass derives: one per accepted delivery, written by one
`INSERT … SELECT` that joins the delivery to its order (tasks/compliance/derive.py), so every reference it
writes was read from the rows it names, in the same transaction. Orders, deliveries and institutions are never
deleted. Each foreign key still ran a trigger per inserted row on PostgreSQL (a lookup and a KEY SHARE lock of
the referenced row; on SQLite a lookup per key with `foreign_keys=ON`): at 100,000 payables, 9.2 of the
insert's 14 s on PostgreSQL were the three checks (`EXPLAIN ANALYZE`, README figure 8). The columns stay indexed
where queries need them (order_id, institution_id; delivery_id unique: one payable per delivery).
"""
from alembic import op

revision = '0025_payables_without_keys'
down_revision = '0024_notice_second_copy'
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names: batch mode (a table copy) names them by this convention.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
KEYS = (('order_id', 'purchaseorder'), ('delivery_id', 'delivery'), ('institution_id', 'institution'))


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for column, _referred in KEYS:
            op.drop_constraint(f'payment_{column}_fkey', 'payment', type_='foreignkey')
        return
    with op.batch_alter_table('payment', naming_convention=NAMING) as batch_op:
        for column, referred in KEYS:
            batch_op.drop_constraint(f'fk_payment_{column}_{referred}', type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for column, referred in reversed(KEYS):
            op.create_foreign_key(f'payment_{column}_fkey', 'payment', referred, [column], ['id'])
        return
    with op.batch_alter_table('payment', naming_convention=NAMING) as batch_op:
        for column, referred in reversed(KEYS):
            batch_op.create_foreign_key(f'fk_payment_{column}_{referred}', referred, [column], ['id'])
