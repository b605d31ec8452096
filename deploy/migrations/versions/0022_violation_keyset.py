"""the violations page pages newest first by (detected_at, id) within a program (issue #19)

Revision ID: 0022_violation_keyset
Revises: 0021_keyset_pages
Create Date: 2026-12-06 08:40:00

The staff page of violations (web/pages_violations.py) reads one page after the last violation shown, in
the order (detected_at, id) newest first: this index lets each page be a short walk from where the last one
stopped, however deep, instead of sorting a program's every violation per page.
"""
from alembic import op

revision = '0022_violation_keyset'
down_revision = '0021_keyset_pages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_violation_program_detected', 'violation', ['program_id', 'detected_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_violation_program_detected', table_name='violation')
