"""A Channable connector wired to its sandbox in-process; a retry's wait is recorded, never slept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.channable.connector import ChannableConnector, ChannableSettings
from retsync_connectors.channable.emulator import ChannableEmulator

MakeConnector = Callable[..., ChannableConnector]


@pytest.fixture
def emulator() -> ChannableEmulator:
    return ChannableConnector.sandbox(seed=3)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def make_connector(tmp_path: Path, waits: list[float]) -> Iterator[MakeConnector]:
    made: list[ChannableConnector] = []

    def make(emulator: ChannableEmulator, **overrides: Any) -> ChannableConnector:
        table = {**ChannableConnector.sandbox_channel("https://api.channable.com"), "max_backoff": "0.01s",
                 **overrides}
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=waits.append)
        connector = ChannableConnector("channable-test", ChannableSettings(**table), runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
