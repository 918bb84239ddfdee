"""WooCommerce test helpers: an in-memory stand-in for the engine's store, connector factories, decision requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from retsync.connector import DecisionRequest, Page, PullContext, Runtime, Stream
from retsync.model import DecisionKind, Order, Return
from retsync_connectors.woocommerce.connector import WooCommerceConnector, WooCommerceSettings
from retsync_connectors.woocommerce.emulator import SANDBOX_KEY, SANDBOX_SECRET, WooCommerceEmulator

NOW = datetime.now(timezone.utc)


@dataclass
class FakeStore:
    """Stores pages the way the engine does: the page's records and its cursor together, one page at a time."""

    returns: dict[str, Return] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    written: list[str] = field(default_factory=list)
    pages: int = 0

    def context(self, *, backfill_since: datetime | None = None) -> PullContext:
        return PullContext(
            channel="woo-test",
            stream=Stream.RETURNS,
            cursor=self.cursor,
            now=datetime.now(timezone.utc),
            backfill_since=backfill_since or NOW - timedelta(days=365),
            overlap=timedelta(hours=1),
            stored_revisions=lambda ids: {i: self.returns[i].revision for i in ids if i in self.returns},
            stored_orders=lambda ids: {i for i in ids if i in self.orders},
            open_returns=lambda: [k for k, r in self.returns.items()
                                  if r.status.value in ("requested", "in_transit", "received")],
        )

    def store(self, page: Page) -> None:
        for record in page.returns:
            self.returns[record.external_id] = record
            self.written.append(record.external_id)
        for order in page.orders:
            self.orders[order.external_id] = order
        if page.cursor is not None:
            self.cursor = dict(page.cursor)
        self.pages += 1

    def run(self, connector: WooCommerceConnector, *, max_pages: int | None = None, **context: Any) -> list[str]:
        """One pass (or its first `max_pages` pages, as if the daemon died after storing them); the ids written."""
        before = len(self.written)
        pages: Iterator[Page] = connector.pull(Stream.RETURNS, self.context(**context))
        for count, page in enumerate(pages, start=1):
            self.store(page)
            if max_pages is not None and count >= max_pages:
                break
        return self.written[before:]


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
