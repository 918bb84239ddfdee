"""A Magento connector wired to its sandbox in-process; a retry's wait is recorded, never slept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.magento.connector import MagentoConnector, MagentoSettings
from retsync_connectors.magento.emulator import MagentoEmulator

BASE = "https://shop.example.com"


@pytest.fixture
def emulator() -> MagentoEmulator:
    return MagentoConnector.sandbox(seed=3)


@pytest.fixture
def make_connector(tmp_path: Path) -> Iterator[Callable[..., MagentoConnector]]:
    made: list[MagentoConnector] = []

    def make(emulator: MagentoEmulator, **overrides: Any) -> MagentoConnector:
        table = {**MagentoConnector.sandbox_channel(BASE), "max_backoff": "0.01s", **overrides}
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=lambda seconds: None)
        connector = MagentoConnector("magento-test", MagentoSettings(**table), runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
