"""platform accounts are written in bulk from the rows they name: no foreign keys on platformaccount (figure 1)

Revision ID: 0026_accounts_without_keys
Revises: 0025_payables_without_keys
Create Date: 2026-12-06 14:40:00

A batch that runs opens one account per approved institution by one `INSERT … SELECT` joining the batch's
applications to their institutions (tasks/phases/enrollment.py run_matured_batches; the accounts step's own
repair, tasks/platform/accounts.py, selects them the same way), so every program and institution id it writes
was read from the rows it names, in the same transaction; programs and institutions are never deleted. Each
foreign key still ran a trigger per inserted row on PostgreSQL (a lookup and a KEY SHARE lock of the referenced
row): 100,000 accounts with the two keys took twice as long as without them (4.1 s against 2.0 s, same table and
indexes, a loaded machine). As migrations 0005 (review, notice) and 0025 (payment) did. The columns stay indexed:
the unique (program_id, institution_id) and ix_platformaccount_program_state_due lead with the program,
ix_platformaccount_institution_id has the institution.
"""
from alembic import op

revision = '0026_accounts_without_keys'
down_revision = '0025_payables_without_keys'
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names: batch mode (a table copy) names them by this convention.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
KEYS = (('program_id', 'program'), ('institution_id', 'institution'))


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for column, _referred in KEYS:
            op.drop_constraint(f'platformaccount_{column}_fkey', 'platformaccount', type_='foreignkey')
        return
    with op.batch_alter_table('platformaccount', naming_convention=NAMING) as batch_op:
        for column, referred in KEYS:
            batch_op.drop_constraint(f'fk_platformaccount_{column}_{referred}', type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for column, referred in reversed(KEYS):
            op.create_foreign_key(f'platformaccount_{column}_fkey', 'platformaccount', referred, [column], ['id'])
        return
    with op.batch_alter_table('platformaccount', naming_convention=NAMING) as batch_op:
        for column, referred in reversed(KEYS):
            batch_op.create_foreign_key(f'fk_platformaccount_{column}_{referred}', referred, [column], ['id'])
