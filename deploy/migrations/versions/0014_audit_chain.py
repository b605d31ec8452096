"""the audit trail as hash chains; on PostgreSQL audit rows cannot be updated or deleted (issue #18)

Revision ID: 0014_audit_chain
Revises: 0013_report_versions
Create Date: 2026-12-06 05:30:00

auditevent gains chain (the program's id, 0 for rows of no program), chain_seq (the row's place in its chain)
and chain_hash (sha256 of the previous row's hash and this row's content), set when the writing transaction
commits (core/audit_chain.py). Rows written before this revision are sealed here, oldest first, so
`sanjin audit verify` starts from a whole chain.

On PostgreSQL a trigger makes the table append-only for every role but a superuser who disables it:
DELETE and TRUNCATE are refused, and UPDATE is allowed only to seal a row (its chain fields from NULL
to a value, nothing else changed).
"""
from alembic import op
import sqlalchemy as sa

from core.audit_chain import seal_audit

revision = '0014_audit_chain'
down_revision = '0013_report_versions'
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION auditevent_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '审计记录只可追加，不能修改或删除 / audit rows are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
-- Sealing (chain fields from empty to set, nothing else changed) is the one UPDATE allowed. The test is the
-- trigger's WHEN, evaluated without calling the function: a seal of 100,000 rows pays no PL/pgSQL call per row.
CREATE TRIGGER auditevent_append_only BEFORE UPDATE ON auditevent FOR EACH ROW
    WHEN (OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL OR NEW.id <> OLD.id
          OR NEW.program_id IS DISTINCT FROM OLD.program_id OR NEW.entity <> OLD.entity
          OR NEW.entity_id <> OLD.entity_id OR NEW.action <> OLD.action
          OR NEW.from_state IS DISTINCT FROM OLD.from_state OR NEW.to_state IS DISTINCT FROM OLD.to_state
          OR NEW.actor <> OLD.actor OR NEW.role <> OLD.role OR NEW.reason IS DISTINCT FROM OLD.reason
          OR NEW.data::text <> OLD.data::text OR NEW.at <> OLD.at)
    EXECUTE FUNCTION auditevent_refuse();
CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION auditevent_refuse();
CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION auditevent_refuse();
"""


def upgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain_hash', sa.String(length=64), nullable=True))
    op.create_index('ux_audit_chain', 'auditevent', ['chain', 'chain_seq'], unique=True)
    op.create_index('ix_audit_unsealed', 'auditevent', ['id'], unique=False,
                    sqlite_where=sa.text('chain_seq IS NULL'), postgresql_where=sa.text('chain_seq IS NULL'))
    seal_audit(op.get_bind(), own_only=False, heads=False)  # the rows so far, in id order (heads: 0018)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER auditevent_no_truncate ON auditevent')
        op.execute('DROP TRIGGER auditevent_no_delete ON auditevent')
        op.execute('DROP TRIGGER auditevent_append_only ON auditevent')
        op.execute('DROP FUNCTION auditevent_refuse()')
    op.drop_index('ix_audit_unsealed', table_name='auditevent')
    op.drop_index('ux_audit_chain', table_name='auditevent')
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.drop_column('chain_hash')
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('chain')
