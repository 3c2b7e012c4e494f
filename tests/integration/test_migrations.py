"""Upgrade head on an empty database, then autogenerate must find nothing: models and migrations agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from letterhead.context import Context
from letterhead.models import Base


def test_models_match_migrations(ctx: Context) -> None:
    # ctx has just run `upgrade head` on an empty database (SQLite, and PostgreSQL when available).
    with ctx.db.engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(mc, Base.metadata)
    assert diff == []
    with ctx.db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is not None
