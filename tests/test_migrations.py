"""The migrations build exactly the schema the models describe, and upgrade from any earlier revision."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from retsync.ops import tables as ops_tables  # noqa: F401  (the operations' and the web console's tables join
from retsync.store.db import make_engine, upgrade
from retsync.store.models import Base
from retsync.web import tables as web_tables  # noqa: F401   Base.metadata where their packages are imported)


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


def test_decisions_recorded_before_acts_keep_their_state_and_become_acts_of_their_own(db_url: str) -> None:
    """0012 gives every existing decision an act of its own, keyed by its own idempotency key: a decision
    already pushed, one waiting for a retry and one being followed keep state, attempts and reference, and no
    decision goes out again under a new key."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0011")
        at = "2026-11-01 08:00:00"
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO channels (id, name, connector, created_at, consecutive_failures) "
                              "VALUES (1, 'shop', 'woocommerce', :at, 0)"), {"at": at})
            conn.execute(text(
                "INSERT INTO returns (id, channel_id, external_id, status, created_at, handled_by_channel, extra, "
                "content_hash, first_seen_at, updated_at) VALUES "
                "(1, 1, 'R1', 'received', :at, :no, '{}', 'h', :at, :at)"), {"at": at, "no": False})
            for line in (1, 2, 3):
                conn.execute(text("INSERT INTO return_lines (id, return_id, external_id, quantity) VALUES "
                                  "(:id, 1, :ext, 1)"), {"id": line, "ext": f"L{line}"})
            for line, state, attempts, reference in ((1, "pushed", 1, "refund-9"), (2, "pending", 3, None),
                                                     (3, "sending", 2, "proc-4")):
                conn.execute(text(
                    "INSERT INTO decisions (return_id, return_line_id, kind, quantity, origin, state, "
                    "idempotency_key, attempts, reference, created_at, updated_at) VALUES "
                    "(1, :line, 'accept', 1, 'merchant', :state, :key, :attempts, :reference, :at, :at)"),
                    {"line": line, "state": state, "key": f"key-{line}", "attempts": attempts,
                     "reference": reference, "at": at})
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT return_line_id, state, attempts, reference, idempotency_key, act_key "
                                     "FROM decisions ORDER BY return_line_id")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "pushed", 1, "refund-9", "key-1", "key-1"),
                                           (2, "pending", 3, None, "key-2", "key-2"),
                                           (3, "sending", 2, "proc-4", "key-3", "key-3")]
