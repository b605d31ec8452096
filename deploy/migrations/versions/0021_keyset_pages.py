"""indexes for deep pages read by key: the audit trail, the outbox and the laggards (issue #19)

Revision ID: 0021_keyset_pages
Revises: 0020_compliance_marks
Create Date: 2026-12-06 08:30:00

Staff pages read deep pages by seek (keyset: web/pagination.py), never by OFFSET. A seek is only as fast
as an index that holds the rows in the page's order:
- the audit trail, newest first, by (at, id) within a program, an entity kind, one entity or a user; the
  user's index replaces the index on `actor` alone, the entity's the one on (entity, entity_id): prefixes;
- the outbox, newest first, by id within a status or a program;
- the laggards, by district and insurance code (tasks/status.py walks institutions in that order).
"""
from alembic import op

revision = '0021_keyset_pages'
down_revision = '0020_compliance_marks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.create_index('ix_audit_program_at', ['program_id', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entity_at', ['entity', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_actor_at', ['actor', 'at', 'id'], unique=False)
        batch_op.drop_index('ix_auditevent_actor')
        batch_op.create_index('ix_audit_entity_id_at', ['entity', 'entity_id', 'at', 'id'], unique=False)
        batch_op.drop_index('ix_audit_entity')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index('ix_notice_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_notice_program_id', ['program_id', 'id'], unique=False)
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.create_index('ix_institution_district_code', ['district', 'insurance_code', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_index('ix_institution_district_code')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index('ix_notice_program_id')
        batch_op.drop_index('ix_notice_status_id')
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entity', ['entity', 'entity_id'], unique=False)
        batch_op.drop_index('ix_audit_entity_id_at')
        batch_op.create_index('ix_auditevent_actor', ['actor'], unique=False)
        batch_op.drop_index('ix_audit_actor_at')
        batch_op.drop_index('ix_audit_entity_at')
        batch_op.drop_index('ix_audit_program_at')
