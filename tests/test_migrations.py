"""The migrations build exactly the schema the models describe, and upgrade from any earlier revision."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from retsync.store.db import make_engine, upgrade
from retsync.store.models import Base


def test_migrated_schema_matches_the_models(db: Engine) -> None:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_views_exist(db: Engine) -> None:
    assert {"v_returns", "v_return_lines"} <= set(inspect(db).get_view_names())


def test_upgrade_step_by_step(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'steps.db'}")
    assert upgrade(engine, "0001") == (None, "0001")
    before, after = upgrade(engine)
    assert before == "0001" and after is not None and after != "0001"
    engine.dispose()
