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


def upgrade() -> None:
    where = {'sqlite_where': sa.text(NOT_LINKED), 'postgresql_where': sa.text(NOT_LINKED)}
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name='auditevent')
        op.create_index(name, 'auditevent', columns, unique=False, **where)


def downgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name='auditevent')
        op.create_index(name, 'auditevent', columns, unique=False)
