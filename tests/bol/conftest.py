"""Helpers for the bol connector tests: an in-memory stand-in for the engine's store, and connector factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from retsync.connector import Page, PullContext, Runtime, Stream
from retsync.model import Order, Return
from retsync_connectors.bol.connector import BolConnector, BolSettings
from retsync_connectors.bol.emulator import MEDIA_TYPE, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, BolEmulator

NOW = datetime.now(timezone.utc)


class _SameAsBol:
    """A stored revision equal to whatever revision bol reports: "this return is stored, unchanged"."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


SAME_AS_BOL = _SameAsBol()


@dataclass
class FakeStore:
    """Stores pages the way the engine does: the page's records and its cursor together, one page at a time."""

    returns: dict[str, Return] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    yielded: list[str] = field(default_factory=list)
    pages: int = 0

    def context(
        self,
        *,
        backfill_since: datetime | None = None,
        pretend_stored: Callable[[str], bool] | None = None,
    ) -> PullContext:
        return PullContext(
            channel="bol-test",
            stream=Stream.RETURNS,
            cursor=self.cursor,
            now=NOW,
            backfill_since=backfill_since or NOW - timedelta(days=365),
            overlap=timedelta(hours=1),
            stored_revisions=self._revisions(pretend_stored),
            stored_orders=lambda ids: {order_id for order_id in ids if order_id in self.orders},
            open_returns=lambda: [key for key, r in self.returns.items()
                                  if r.status.value in ("requested", "in_transit", "received")],
        )

    def _revisions(self, pretend_stored: Callable[[str], bool] | None) -> Callable[[Any], dict[str, Any]]:
        """Stored revisions; ids the test says to `pretend_stored` count as stored at bol's current revision."""

        def revisions(ids: Any) -> dict[str, Any]:
            found: dict[str, Any] = {i: self.returns[i].revision for i in ids if i in self.returns}
            if pretend_stored is not None:
                found.update({i: SAME_AS_BOL for i in ids if pretend_stored(i)})
            return found

        return revisions

    def store(self, page: Page) -> None:
        for record in page.returns:
            self.returns[record.external_id] = record
            self.yielded.append(record.external_id)
        for order in page.orders:
            self.orders[order.external_id] = order
        if page.cursor is not None:
            self.cursor = dict(page.cursor)
        self.pages += 1

    def run(self, connector: BolConnector, *, max_pages: int | None = None, **context: Any) -> None:
        """One pass (or its first `max_pages` pages, as if the daemon died after storing them)."""
        pages: Iterator[Page] = connector.pull(Stream.RETURNS, self.context(**context))
        for count, page in enumerate(pages, start=1):
            self.store(page)
            if max_pages is not None and count >= max_pages:
                break

    def ids(self) -> dict[str, set[str]]:
        """What is stored, in the shape of the emulator's `truth()`."""
        return {
            "returns": set(self.returns),
            "rmas": {line.external_id for r in self.returns.values() for line in r.lines},
            "orders": set(self.orders),
        }


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_connector(tmp_path: Path, sleeps: list[float]) -> Callable[..., BolConnector]:
    """A connector wired to an emulator in-process; waits are recorded in `sleeps`, never slept."""
    made: list[BolConnector] = []

    def make(emulator: BolEmulator, runtime: Runtime | None = None, **overrides: Any) -> BolConnector:
        settings = BolSettings(
            **{
                "connector": "bol",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
                "process_poll_delay": 0.25,
                **overrides,
            }
        )
        runtime = runtime or Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=sleeps.append)
        connector = BolConnector("bol-test", settings, runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def bearer(emulator: BolEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.issue_token(300)}", "Accept": MEDIA_TYPE}


def listed(emulator: BolEmulator, method: str, handled: bool) -> list[str]:
    """A list's returnIds in bol's order, read straight from the emulator."""
    ids: list[str] = []
    with httpx.Client(base_url="https://api.bol.com", transport=emulator.transport()) as client:
        page = 1
        while True:
            body = client.get(
                "/retailer/returns",
                params={"page": page, "handled": str(handled).lower(), "fulfilment-method": method},
                headers=bearer(emulator),
            ).json()
            entries = body.get("returns") or []
            ids.extend(entry["returnId"] for entry in entries)
            if len(entries) < 50:
                return ids
            page += 1

