"""PrestaShop test helpers: connector factories wired to the sandbox in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.prestashop.connector import PrestaShopConnector, PrestaShopSettings
from retsync_connectors.prestashop.emulator import HOLD_ORDER_ID, SANDBOX_KEY, PrestaShopEmulator


@pytest.fixture
def make_connector(tmp_path: Path) -> Iterator[Callable[..., PrestaShopConnector]]:
    """A connector talking to an emulator in-process; retry waits are recorded, never slept."""
    made: list[PrestaShopConnector] = []

    def make(emulator: PrestaShopEmulator, **overrides: Any) -> PrestaShopConnector:
        settings = PrestaShopSettings(**{"connector": "prestashop", "base_url": "https://shop.example.com",
                                         "api_key": SANDBOX_KEY, "max_backoff": "0.01s",
                                         "hold_order_id": str(HOLD_ORDER_ID), **overrides})
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=lambda _: None)
        connector = PrestaShopConnector("ps-test", settings, runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
