"""each audit chain's head (its newest place and hash), so rows cut off a chain's end are evident (issue #18)

Revision ID: 0018_audit_chain_heads
Revises: 0017_staff_names
Create Date: 2026-12-06 08:30:00

`auditchainhead` holds one row per chain: the place and hash of its newest row, moved forward in the same
transaction as the rows appended (core/audit_chain.py). `sanjin audit verify` names a chain shorter than its head.
The head's row lock is also the chain's append lock (it replaces the advisory lock the seal took before).
Built here from the chains' current tails.

On PostgreSQL a trigger refuses moving a head backwards, changing the hash of a place already recorded,
and deleting or truncating heads: cutting rows off a chain's end then needs a superuser who disables the
triggers, and the record of heads kept outside the database by the daily check still shows it.
"""
import sqlalchemy as sa
from alembic import op

revision = '0018_audit_chain_heads'
down_revision = '0017_staff_names'
branch_labels = None
depends_on = None

FORWARD_ONLY = """
CREATE FUNCTION auditchainhead_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '审计链头只能前移 / audit chain heads only move forward (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER auditchainhead_forward_only BEFORE UPDATE ON auditchainhead FOR EACH ROW
    WHEN (NEW.chain <> OLD.chain OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash))
    EXECUTE FUNCTION auditchainhead_refuse();
CREATE TRIGGER auditchainhead_no_delete BEFORE DELETE ON auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION auditchainhead_refuse();
CREATE TRIGGER auditchainhead_no_truncate BEFORE TRUNCATE ON auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION auditchainhead_refuse();
"""


def upgrade() -> None:
    op.create_table(
        'auditchainhead',
        sa.Column('chain', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('chain'),
    )
    op.execute("INSERT INTO auditchainhead (chain, seq, hash) SELECT a.chain, a.chain_seq, a.chain_hash "
               "FROM auditevent a JOIN (SELECT chain, max(chain_seq) AS seq FROM auditevent "
               "WHERE chain IS NOT NULL GROUP BY chain) t ON a.chain = t.chain AND a.chain_seq = t.seq")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(FORWARD_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER auditchainhead_no_truncate ON auditchainhead')
        op.execute('DROP TRIGGER auditchainhead_no_delete ON auditchainhead')
        op.execute('DROP TRIGGER auditchainhead_forward_only ON auditchainhead')
        op.execute('DROP FUNCTION auditchainhead_refuse()')
    op.drop_table('auditchainhead')
