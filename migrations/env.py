"""Alembic environment: the engine comes from retsync (`retsync db upgrade`), never from an ini file."""

from __future__ import annotations

from alembic import context

from retsync.store.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic` run by hand, for writing a new revision
    from retsync.store.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///retsync-dev.db")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
