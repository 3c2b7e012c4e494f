"""hardening: server-side web sessions, shared rate limits, suspend/disable, API key last use

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import letterhead.models

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DT = letterhead.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', DT, nullable=False),
    sa.Column('expires_at', DT, nullable=False),
    sa.Column('ended_at', DT, nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions'))
    )
    op.create_index(op.f('ix_web_sessions_user_id'), 'web_sessions', ['user_id'], unique=False)
    op.create_table('rate_hits',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('at', DT, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_hits'))
    )
    op.create_index('ix_rate_hits_key_at', 'rate_hits', ['key', 'at'], unique=False)
    with op.batch_alter_table('tenants') as batch:
        batch.add_column(sa.Column('suspended_at', DT, nullable=True))
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('disabled_at', DT, nullable=True))
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('last_used_at', DT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('last_used_at')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('disabled_at')
    with op.batch_alter_table('tenants') as batch:
        batch.drop_column('suspended_at')
    op.drop_index('ix_rate_hits_key_at', table_name='rate_hits')
    op.drop_table('rate_hits')
    op.drop_index(op.f('ix_web_sessions_user_id'), table_name='web_sessions')
    op.drop_table('web_sessions')
