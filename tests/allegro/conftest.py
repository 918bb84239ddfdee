"""Helpers for the Allegro connector tests: an in-memory stand-in for the engine's store, and connector factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from retsync.connector import Page, PullContext, Runtime, Stream
from retsync.model import Order, Return
from retsync_connectors.allegro.connector import AllegroConnector, AllegroSettings
from retsync_connectors.allegro.emulator import AllegroEmulator

NOW = datetime.now(timezone.utc)


@dataclass
class FakeStore:
    """Stores pages the way the engine does: the page's records and its cursor together, one page at a time."""

    returns: dict[str, Return] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    yielded: list[str] = field(default_factory=list)

    def context(self, *, backfill_since: datetime | None = None) -> PullContext:
        return PullContext(
            channel="allegro-test",
            stream=Stream.RETURNS,
            cursor=self.cursor,
            now=NOW,
            backfill_since=backfill_since or NOW - timedelta(days=365),
            overlap=timedelta(hours=1),
            stored_revisions=lambda ids: {i: self.returns[i].revision for i in ids if i in self.returns},
            stored_orders=lambda ids: {i for i in ids if i in self.orders},
            open_returns=lambda: [key for key, r in self.returns.items()
                                  if r.status.value in ("requested", "in_transit", "received")],
        )

    def store(self, page: Page) -> None:
        for record in page.returns:
            self.returns[record.external_id] = record
            self.yielded.append(record.external_id)
        for order in page.orders:
            self.orders[order.external_id] = order
        if page.cursor is not None:
            self.cursor = dict(page.cursor)

    def run(self, connector: AllegroConnector, *, max_pages: int | None = None, **context: Any) -> None:
        """One pass (or its first `max_pages` pages, as if the daemon died after storing them)."""
        self.yielded.clear()
        pages: Iterator[Page] = connector.pull(Stream.RETURNS, self.context(**context))
        for n, page in enumerate(pages, start=1):
            self.store(page)
            if max_pages is not None and n >= max_pages:
                break


class FakeClock:
    """Monotonic seconds that move only when a test (or a recorded sleep) moves them."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


MakeConnector = Callable[..., AllegroConnector]


@pytest.fixture
def make_connector(tmp_path: Path, sleeps: list[float], clock: FakeClock) -> Iterator[MakeConnector]:
    """A connector wired to an emulator in-process; waits are recorded in `sleeps` and move `clock`, never slept."""
    made: list[AllegroConnector] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    def make(emulator: AllegroEmulator, channel: str = "allegro-test", state_dir: Path | None = None,
             **overrides: Any) -> AllegroConnector:
        table = {**AllegroConnector.sandbox_channel("https://api.allegro.pl"), "auth_url": "https://allegro.pl",
                 "max_backoff": "2m", **overrides}
        settings = AllegroSettings(**table)
        runtime = Runtime(state_dir=state_dir or tmp_path, transport=emulator.transport(), sleep=sleep)
        connector = AllegroConnector(channel, settings, runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
