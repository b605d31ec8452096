"""the audit trail as hash chains; on PostgreSQL audit rows cannot be updated or deleted (issue #18)

Revision ID: 0014_audit_chain
Revises: 0010_register
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
down_revision = '0010_register'
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL
       AND NEW.id = OLD.id AND NEW.program_id IS NOT DISTINCT FROM OLD.program_id AND NEW.entity = OLD.entity
       AND NEW.entity_id = OLD.entity_id AND NEW.action = OLD.action
       AND NEW.from_state IS NOT DISTINCT FROM OLD.from_state AND NEW.to_state IS NOT DISTINCT FROM OLD.to_state
       AND NEW.actor = OLD.actor AND NEW.role = OLD.role AND NEW.reason IS NOT DISTINCT FROM OLD.reason
       AND NEW.data::text = OLD.data::text AND NEW.at = OLD.at THEN
        RETURN NEW;  -- sealing a row into its chain, once
    END IF;
    RAISE EXCEPTION '审计记录只可追加，不能修改或删除 / audit rows are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON auditevent
    FOR EACH ROW EXECUTE FUNCTION auditevent_append_only();
CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION auditevent_append_only();
"""


def upgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain_hash', sa.String(length=64), nullable=True))
    op.create_index('ux_audit_chain', 'auditevent', ['chain', 'chain_seq'], unique=True)
    op.create_index('ix_audit_unsealed', 'auditevent', ['id'], unique=False,
                    sqlite_where=sa.text('chain_seq IS NULL'), postgresql_where=sa.text('chain_seq IS NULL'))
    seal_audit(op.get_bind(), own_only=False)  # the rows written so far, in id order, in this migration's transaction
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER auditevent_no_truncate ON auditevent')
        op.execute('DROP TRIGGER auditevent_append_only ON auditevent')
        op.execute('DROP FUNCTION auditevent_append_only()')
    op.drop_index('ix_audit_unsealed', table_name='auditevent')
    op.drop_index('ux_audit_chain', table_name='auditevent')
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.drop_column('chain_hash')
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('chain')
