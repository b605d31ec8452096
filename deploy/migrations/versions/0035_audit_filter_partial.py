"""the audit page's filter indexes leave out bulk-link rows (issue #17)

Revision ID: 0035_audit_filter_partial
Revises: 0034_audit_entity_index
Create Date: 2026-12-07 09:30:00

ix_audit_program_at, ix_audit_entity_at and ix_audit_actor_at serve only the audit page's filtered newest-first
walks, yet every bulk write (format 3: rows with `chain_seq` set and `chain_hash` NULL, proved by one `auditlink`
row) added an entry per row to each. Figure 1 writes 400,000 such rows; on a 100,000-institution snapshot one
100,000-row INSERT … SELECT into auditevent cost 0.365 s of CPU with the three and 0.23 s without. Partial, they
hold only rows that are no link member; a link's rows share program, entity, actor and instant, so the page finds
them through the link's first row (web/pages_records.py). The predicate is the same text on both databases
(models/audit.NOT_LINKED): SQLite uses a partial index only when the query's WHERE holds it as a term.
`auditlinkmixed` lists, once, the links written before this migration whose rows differ from their first row (the
page reads those row by row); every writer since links only alike rows.
"""
import sqlalchemy as sa
from alembic import op

revision = '0035_audit_filter_partial'
down_revision = '0034_audit_entity_index'
branch_labels = None
depends_on = None

NOT_LINKED = "chain_hash IS NOT NULL OR chain_seq IS NULL"
INDEXES = {'ix_audit_program_at': ['program_id', 'at', 'id'], 'ix_audit_entity_at': ['entity', 'at', 'id'],
           'ix_audit_actor_at': ['actor', 'at', 'id']}


# Links written before this migration whose rows differ from their first row in what the page filters and orders
# by (models/audit.AuditLinkMixed): `write_audit` linked any 500 records of one chain, e.g. an import context's
# rows of several kinds or a clock read per record. Listed once; every writer since links only alike rows.
MIXED = """
INSERT INTO auditlinkmixed (chain, first_seq)
SELECT l.chain, l.first_seq FROM auditlink l
JOIN auditevent f ON f.chain = l.chain AND f.chain_seq = l.first_seq
WHERE EXISTS (SELECT 1 FROM auditevent m WHERE m.chain = l.chain AND m.chain_seq BETWEEN l.first_seq AND l.last_seq
              AND (m.entity <> f.entity OR m.actor <> f.actor OR m.at <> f.at
                   OR coalesce(m.program_id, -1) <> coalesce(f.program_id, -1)))
"""


def upgrade() -> None:
    where = {'sqlite_where': sa.text(NOT_LINKED), 'postgresql_where': sa.text(NOT_LINKED)}
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name='auditevent')
        op.create_index(name, 'auditevent', columns, unique=False, **where)
    op.create_table('auditlinkmixed',
                    sa.Column('chain', sa.Integer(), autoincrement=False, nullable=False),
                    sa.Column('first_seq', sa.Integer(), autoincrement=False, nullable=False),
                    sa.PrimaryKeyConstraint('chain', 'first_seq'))
    op.execute(MIXED)


def downgrade() -> None:
    op.drop_table('auditlinkmixed')
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name='auditevent')
        op.create_index(name, 'auditevent', columns, unique=False)
