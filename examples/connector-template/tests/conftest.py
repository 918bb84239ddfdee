"""The template's own fixtures: a connector wired to its sandbox in-process. The database fixtures (`db`,
`db_url`, on SQLite and PostgreSQL) come from the installed `retsync.testing` plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from retsync.kit.contract import Runtime

from retsync_connector_template.connector import TemplateConnector, TemplateSettings
from retsync_connector_template.emulator import TemplateEmulator


@pytest.fixture
def emulator() -> TemplateEmulator:
    return TemplateConnector.sandbox(seed=3)


@pytest.fixture
def make_connector(tmp_path: Path) -> Iterator[Callable[..., TemplateConnector]]:
    """A connector talking to `emulator` in-process; a retry's wait is recorded, never slept."""
    made: list[TemplateConnector] = []

    def make(emulator: TemplateEmulator, **overrides: Any) -> TemplateConnector:
        table = {**TemplateConnector.sandbox_channel("https://api.example.com"), "max_backoff": "0.01s", **overrides}
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=lambda seconds: None)
        connector = TemplateConnector("template-test", TemplateSettings(**table), runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
