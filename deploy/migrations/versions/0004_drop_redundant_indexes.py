"""drop indexes that another index already serves, or that no query uses (enrollment at 100,000)

Revision ID: 0004_drop_redundant_indexes
Revises: 0003_dashboard_indexes
Create Date: 2026-11-22 18:05:00

Every index is written on each insert, and on PostgreSQL on every update of an indexed column's row
(an update of application.state is never HOT: ix_application_program_state holds state). At 100,000
institutions the enrollment writes application, review and listentry 100,000 rows at a time, so each
index it does not need is paid several times over (issue #6 figure 1).
- application(program_id): ix_application_program_state and the unique (program_id, institution_id,
  attempt) both lead with it;
- application(district): nothing selects applications by district alone (district gates select by
  batch and state);
- institution(district): ix_institution_district_kind leads with it;
- review(application_id): the unique (application_id, level) leads with it;
- listentry(version_id): the unique (version_id, key) leads with it;
- platformaccount(program_id): the unique (program_id, institution_id) and
  ix_platformaccount_program_state_due lead with it.
"""
from alembic import op

revision = '0004_drop_redundant_indexes'
down_revision = '0003_dashboard_indexes'
branch_labels = None
depends_on = None

DROPPED = [
    ('application', 'ix_application_program_id', ['program_id']),
    ('application', 'ix_application_district', ['district']),
    ('institution', 'ix_institution_district', ['district']),
    ('review', 'ix_review_application_id', ['application_id']),
    ('listentry', 'ix_listentry_version_id', ['version_id']),
    ('platformaccount', 'ix_platformaccount_program_id', ['program_id']),
]


def upgrade() -> None:
    for table, name, _ in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for table, name, columns in reversed(DROPPED):
        op.create_index(name, table, columns, unique=False)
