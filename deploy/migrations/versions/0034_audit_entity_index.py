"""one entity's audit history by a narrow (entity_id, entity) index instead of (entity, entity_id, at, id) (issue #17)

Revision ID: 0034_audit_entity_index
Revises: 0033_audit_links
Create Date: 2026-12-07 01:05:00

Every bulk transition writes an audit row per application, and each row's entry in the entity-history index lands
next to that application's earlier entries (its text id orders "10" < "100" < "11"), so one 100,000-row write
dirties every leaf page of that index, and the commit writes them all to the log. The entries of the old index
carried the timestamp as text and the id: ~50 bytes each. Keyed by (entity_id, entity) alone they are about half
that, and the same write touches about half the pages. Replayed on figure 1's final SQLite database (400,000 audit
rows, 100,000 rows added in one INSERT … SELECT and committed, CPU, the two indexes alternated five times on a
loaded machine): 0.70 → 0.59 s (medians); with no entity index at all 0.27–0.31 s. An entity's history is a
handful of rows (an application's five or six), so its page sorts them by (at, id) after the lookup instead of
reading them in that order.
"""
from alembic import op

revision = '0034_audit_entity_index'
down_revision = '0033_audit_links'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_audit_entity_id', 'auditevent', ['entity_id', 'entity'], unique=False)
    op.drop_index('ix_audit_entity_id_at', table_name='auditevent')


def downgrade() -> None:
    op.create_index('ix_audit_entity_id_at', 'auditevent', ['entity', 'entity_id', 'at', 'id'], unique=False)
    op.drop_index('ix_audit_entity_id', table_name='auditevent')
