"""The checked configuration a test runs the daemon with, built from channel tables instead of a file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retsync import registry
from retsync.config import Config, Settings


def config_for(state_dir: Path, db_url: str, channels: Mapping[str, Mapping[str, Any]], *,
               notify: Mapping[str, Any] | None = None, daemon: Mapping[str, Any] | None = None) -> Config:
    """What `retsync` makes of a config.toml holding these `[channels.<name>]` tables (and `[notify]`, `[daemon]`): each
    table validated by its connector's own settings model, as at start-up, so a test fails on a key the
    connector would refuse."""
    parsed = {}
    for name, table in channels.items():
        model = registry.settings_model_for(str(table["connector"]))
        assert model is not None, f"connector {table['connector']!r} of channel {name} is not installed"
        parsed[name] = model(**table)
    settings = Settings(database={"url": db_url}, daemon={"state_dir": state_dir, **(daemon or {})},
                        notify=dict(notify or {}),
                        channels={name: dict(table) for name, table in channels.items()})
    return Config(path=state_dir / "config.toml", settings=settings, channels=parsed)
