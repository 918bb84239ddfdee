"""`make demo`: every installed connector's sandbox pulled into one database, one decision pushed, the table shown."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from retsync import registry
from retsync.app.cli import main
from retsync.app.demo import write_config
from retsync.store.db import make_engine


def test_the_demo_pulls_every_sandbox_and_pushes_a_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        assert main(["demo", "--workdir", str(tmp_path)]) == 0
    finally:
        structlog.reset_defaults()  # the demo logs at WARNING; later tests of this worker capture INFO events
    out = capsys.readouterr().out
    sandboxed = [name for name, cls in registry.connectors().items() if cls.sandbox(seed=1, returns=1) is not None]
    assert len(sandboxed) >= 8
    for name in sandboxed:
        assert f"pulled {name}_sandbox: " in out and f"pulled {name}_sandbox: 0 returns" not in out, name
    pulled = [line for line in out.splitlines() if line.startswith("pulled ")]
    assert all(line.endswith("(ok)") for line in pulled), pulled
    assert "1 pushed, 0 waiting, 0 failed" in out
    assert (tmp_path / "config.toml").is_file() and (tmp_path / "demo.db").is_file()
    # the seeds' case: one customer's returns on Allegro and in a shop, grouped (the web console's customer view)
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    with engine.connect() as conn:
        groups = conn.execute(text(
            "SELECT r.customer_group_id FROM returns r JOIN channels c ON c.id = r.channel_id "
            "WHERE r.customer_group_id IS NOT NULL GROUP BY r.customer_group_id "
            "HAVING SUM(CASE WHEN c.name = 'allegro_sandbox' THEN 1 ELSE 0 END) > 0 "
            "AND SUM(CASE WHEN c.name = 'shoper_sandbox' THEN 1 ELSE 0 END) > 0")).scalars().all()
    engine.dispose()
    assert groups, "a customer who returned on Allegro and in the shop"


def test_a_sandbox_table_with_lists_and_tables_is_written_as_toml(tmp_path: Path) -> None:
    """Sandbox channel tables may hold lists and maps (a status map, the decisions to refund on)."""
    table = {"connector": "x", "statuses": {"1": "requested", "status \"2\"": "received"}, "refund_on": ["accept"],
             "enabled": True, "page_size": 50, "base_url": "http://127.0.0.1:1/a\\b"}
    write_config(tmp_path / "config.toml", tmp_path, {"shop": table})
    assert tomllib.loads((tmp_path / "config.toml").read_text())["channels"]["shop"] == table
