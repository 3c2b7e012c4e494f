"""route leases

One worker process at a time sends through a tenant's SMTP server, so that the provider's cap on concurrent
connections (per account) holds however many workers run (delivery/route_leases.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 13:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import letterhead.models

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('route_leases',
    sa.Column('route_key', sa.String(length=100), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('leased_until', letterhead.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('route_key', name=op.f('pk_route_leases'))
    )


def downgrade() -> None:
    op.drop_table('route_leases')
