"""WooCommerce test helpers: connector factories wired to the sandbox in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.woocommerce.connector import WooCommerceConnector, WooCommerceSettings
from retsync_connectors.woocommerce.emulator import SANDBOX_KEY, SANDBOX_SECRET, WooCommerceEmulator

NOW = datetime.now(timezone.utc)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_connector(tmp_path: Path, sleeps: list[float]) -> Iterator[Callable[..., WooCommerceConnector]]:
    """A connector wired to an emulator in-process; waits are recorded in `sleeps`, never slept."""
    made: list[WooCommerceConnector] = []

    def make(emulator: WooCommerceEmulator, **overrides: Any) -> WooCommerceConnector:
        settings = WooCommerceSettings(**{
            "connector": "woocommerce", "base_url": "https://shop.example.com", "consumer_key": SANDBOX_KEY,
            "consumer_secret": SANDBOX_SECRET, "max_backoff": "0.01s", **overrides,
        })
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=sleeps.append)
        connector = WooCommerceConnector("woo-test", settings, runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
