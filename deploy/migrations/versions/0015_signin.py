"""sign-in hardening: failed attempts per account and address, server-side web sessions (issue #18)

Revision ID: 0015_signin
Revises: 0014_audit_chain
Create Date: 2026-12-06 05:40:00

signinthrottle counts failed sign-ins per account name and per client address (a lock an administrator lifts
with `sanjin user unlock`); websession holds the SHA-256 of each session token, so logout, a new password and
disabling a user end a session that a saved cookie would otherwise keep alive.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_signin'
down_revision = '0014_audit_chain'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signinthrottle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scope', 'key')
    )
    op.create_table('websession',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_websession_token_hash', 'websession', ['token_hash'], unique=True)
    op.create_index('ix_websession_user_id', 'websession', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_websession_user_id', table_name='websession')
    op.drop_index('ix_websession_token_hash', table_name='websession')
    op.drop_table('websession')
    op.drop_table('signinthrottle')
