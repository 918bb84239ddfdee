"""PrestaShop test helpers: connector factories wired to the sandbox in-process, decision requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retsync.connector import DecisionRequest, Runtime
from retsync.model import DecisionKind, Return
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
