"""Requests a channel held back (a 429 with Retry-After) are counted on the channel's row after the pull, where
`retsync channels` and the web console read them: they run as processes of their own, apart from the daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.cli import main
from retsync.app.daemon import Runner
from retsync.app.demo import write_config
from retsync.config import load_config
from retsync.testing.contract import FAST


def test_a_pull_held_back_by_the_channel_is_counted_where_every_command_reads_it(
        db: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=2, returns=20)
    emulator.inject("status", status=429, times=2, retry_after="1", path="/retailer")  # waited 0.05 s each
    with emulator.serve() as base_url:
        config_file = tmp_path / "config.toml"
        write_config(config_file, tmp_path, {"market": {**cls.sandbox_channel(base_url), **FAST}})
        config_file.write_text(config_file.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url))
        config = load_config(config_file, registry.settings_model_for, registry.names, registry.holds_returns)
        runner = Runner(config, db=db)
        runner.open()
        try:
            assert runner.pull("market").ok
            assert runner.pull("market").ok  # nothing held back this time: the count stays
        finally:
            runner.close()
    with db.connect() as conn:
        waits, seconds, last = conn.execute(text(
            "SELECT rate_limit_waits, rate_limit_wait_seconds, last_rate_limited_at FROM channels "
            "WHERE name = 'market'")).one()
    assert waits == 2 and 0.05 <= seconds < 1 and last is not None
    assert main(["--config", str(config_file), "channels"]) == 0
    assert "rate limited       2 requests held back by the channel" in capsys.readouterr().out
