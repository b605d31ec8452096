"""dashboard indexes: a gate's outcomes by gate, laggards by deadline, coverage by district and kind

Revision ID: 0003_dashboard_indexes
Revises: 0002
Create Date: 2026-11-22 17:30:00

The web dashboard and the approval inbox at 100,000 institutions (issue #5, issue #6 figure 4):
- review(gate_id, decision, application_id): a gate's decided counts and one page of its outcomes,
  without reading the gate's 100,000-entry decision JSON;
- platformaccount / contract (program_id, state, due_on): pending ones of a program in deadline order;
- institution(district, kind): coverage per district and kind from the index alone.
"""
from alembic import op


revision = '0003_dashboard_indexes'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_review_gate_decision', 'review', ['gate_id', 'decision', 'application_id'], unique=False)
    op.create_index('ix_platformaccount_program_state_due', 'platformaccount', ['program_id', 'state', 'due_on'],
                    unique=False)
    op.create_index('ix_contract_program_state_due', 'contract', ['program_id', 'state', 'due_on'], unique=False)
    op.create_index('ix_institution_district_kind', 'institution', ['district', 'kind'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_institution_district_kind', table_name='institution')
    op.drop_index('ix_contract_program_state_due', table_name='contract')
    op.drop_index('ix_platformaccount_program_state_due', table_name='platformaccount')
    op.drop_index('ix_review_gate_decision', table_name='review')
