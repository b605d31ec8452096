"""cheaper bulk writes: no per-row reference checks on the append-only tables, HOT state updates

Revision ID: 0005_bulk_write_costs
Revises: 0004_drop_redundant_indexes
Create Date: 2026-11-22 20:00:00

Enrollment at 100,000 institutions (issue #6 figure 1) writes auditevent and notice 100,000 rows per
statement and moves every application's state four times. Measured on PostgreSQL with auto_explain:
- auditevent.program_id, notice.program_id, review.application_id and review.gate_id lose their
  foreign keys. Every inserted row ran the foreign-key trigger (a lookup and a KEY SHARE lock of the
  referenced row): 0.3-0.5 s per key per 100,000 rows; a city gate's 100,000 reviews spent 0.83 s of
  1.39 s in their two checks. These tables are append-only records written in bulk by statements that
  select the rows they refer to (the decided gate's applications, the program's own rows); programs,
  applications and gates are never deleted; and an audit trail should not depend on the rows it
  describes anyway. The references stay indexed where queries need them.
- ix_auditevent_program_id goes: no query used it (the audit page walks ix_auditevent_at and filters
  the program as it goes, web/pages_records.audit).
- ix_application_program_state goes. With state in an index, no state change could be a HOT update on
  PostgreSQL: each wrote a new entry into all five indexes of application (1.6 s per 100,000). Without
  it, and with room left on each page (fillfactor 70), a state change rewrites the row in place. What
  it served: per-state counts of a program (a scan of the program's rows either way) and the
  unbatched applications (ix_application_batch_id finds batch_id IS NULL). SQLite, which updates only
  the indexes holding a changed column, saves that index's maintenance.
"""
from alembic import op

revision = '0005_bulk_write_costs'
down_revision = '0004_drop_redundant_indexes'
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names: batch mode (a table copy) names them by this convention.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
# (table, column, referred table): the foreign keys that go.
APPEND_ONLY = (('auditevent', 'program_id', 'program'), ('notice', 'program_id', 'program'),
               ('review', 'application_id', 'application'), ('review', 'gate_id', 'gate'))
APPLICATION_FILLFACTOR = 70


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, column, referred in APPEND_ONLY:
        if postgres:
            op.drop_constraint(f'{table}_{column}_fkey', table, type_='foreignkey')
        else:
            with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
                batch_op.drop_constraint(f'fk_{table}_{column}_{referred}', type_='foreignkey')
    op.drop_index('ix_auditevent_program_id', table_name='auditevent')
    op.drop_index('ix_application_program_state', table_name='application')
    if postgres:  # pages written from now on keep 30 % free for in-place (HOT) state changes
        op.execute(f'ALTER TABLE application SET (fillfactor = {APPLICATION_FILLFACTOR})')


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        op.execute('ALTER TABLE application RESET (fillfactor)')
    op.create_index('ix_application_program_state', 'application', ['program_id', 'state'], unique=False)
    op.create_index('ix_auditevent_program_id', 'auditevent', ['program_id'], unique=False)
    for table, column, referred in reversed(APPEND_ONLY):
        if postgres:
            op.create_foreign_key(f'{table}_{column}_fkey', table, referred, [column], ['id'])
        else:
            with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
                batch_op.create_foreign_key(f'fk_{table}_{column}_{referred}', referred, [column], ['id'])
