"""WooCommerce test helpers: an in-memory stand-in for the engine's store, connector factories, decision requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from retsync.connector import DecisionRequest, Runtime
from retsync.model import DecisionKind, Return
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


_ids = iter(range(1, 1_000_000))


def decision(record: Return, kind: DecisionKind, *, line: int = 0, quantity: int | None = None,
             note: str | None = "decided in a test", attempt: int = 1, key: str | None = None) -> DecisionRequest:
    """The request the outbox would hand over for one line of a stored return."""
    target = record.lines[line]
    return DecisionRequest(
        decision_id=next(_ids), idempotency_key=key or f"key-{next(_ids)}", kind=kind,
        quantity=target.quantity if quantity is None else quantity, note=note,
        return_external_id=record.external_id, line_external_id=target.external_id,
        order_external_id=record.order_external_id, order_line_external_id=target.order_line_external_id,
        attempt=attempt,
    )
