"""audit chain format 3: a bulk write's rows proven by one link row in `auditlink` (issue #18)

Revision ID: 0033_audit_links
Revises: 0032_violation_open_index
Create Date: 2026-12-07 01:00:00

A bulk write (`audit_from_select`) now inserts its audit rows with their chain places and no hash, and stores
their one sha256 link (and the locators that name a row inside a broken link) as a row of `auditlink`
(models/audit.py, LINK_MARK; core/bulk.py). Nothing existing is rewritten: rows of formats 1 and 2 keep
verifying as they are. On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of links, as for audit rows:
a link row is written once, by the transaction that writes its rows.
"""
import sqlalchemy as sa
from alembic import op

revision = '0033_audit_links'
down_revision = '0032_violation_open_index'
branch_labels = None
depends_on = None

INSERT_ONLY = """
CREATE FUNCTION auditlink_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '审计链接只可追加，不能修改或删除 / audit links are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER auditlink_no_update BEFORE UPDATE ON auditlink
    FOR EACH STATEMENT EXECUTE FUNCTION auditlink_refuse();
CREATE TRIGGER auditlink_no_delete BEFORE DELETE ON auditlink
    FOR EACH STATEMENT EXECUTE FUNCTION auditlink_refuse();
CREATE TRIGGER auditlink_no_truncate BEFORE TRUNCATE ON auditlink
    FOR EACH STATEMENT EXECUTE FUNCTION auditlink_refuse();
"""


def upgrade() -> None:
    op.create_table(
        'auditlink',
        sa.Column('chain', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('first_seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('last_seq', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('locators', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('chain', 'first_seq'),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(INSERT_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER auditlink_no_truncate ON auditlink')
        op.execute('DROP TRIGGER auditlink_no_delete ON auditlink')
        op.execute('DROP TRIGGER auditlink_no_update ON auditlink')
        op.execute('DROP FUNCTION auditlink_refuse()')
    op.drop_table('auditlink')
