"""Helpers for the Amazon connector tests: a connector wired to the sandbox in-process, waits recorded not slept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync.testing.memory import InMemoryStore
from retsync_connectors.amazon.connector import AmazonConnector, AmazonSettings
from retsync_connectors.amazon.emulator import AmazonEmulator

BASE = "https://sellingpartnerapi-eu.amazon.com"
BACKFILL = timedelta(days=90)


@pytest.fixture
def emulator() -> AmazonEmulator:
    return AmazonEmulator.sized(seed=11)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_connector(tmp_path: Path, sleeps: list[float]) -> Iterator[Callable[..., AmazonConnector]]:
    """`make(emulator, **settings)`: a connector on the sandbox's table plus `settings`, waits into `sleeps`."""
    made: list[AmazonConnector] = []

    def make(emulator: AmazonEmulator, **overrides: Any) -> AmazonConnector:
        table = {**AmazonConnector.sandbox_channel(BASE), "max_backoff": "0.01s", "max_retry_after": "0.01s",
                 **overrides}
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=sleeps.append)
        connector = AmazonConnector("amazon-test", AmazonSettings(**table), runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def pull(connector: AmazonConnector, store: InMemoryStore, **context: Any) -> list[str]:
    """One pull into `store`, the backfill reaching 90 days back (the daemon's default)."""
    context.setdefault("backfill_since", store.now - BACKFILL)
    return store.run(connector, **context)


def calls(emulator: AmazonEmulator, since: int = 0) -> list[tuple[str, str]]:
    """(method, path) of the requests since index `since`, the token endpoint left out, ids kept."""
    return [(r.method, r.path) for r in emulator.requests[since:] if not r.path.startswith("/auth/")]


def operations(emulator: AmazonEmulator, since: int = 0) -> list[str]:
    """The requests since `since` as operation names (createReport, getReport, …, S3 GET/PUT)."""
    names = []
    for method, path in calls(emulator, since):
        parts = path.strip("/").split("/")
        if parts[0] == "_s3":
            names.append(f"s3{method.title()}")
        elif parts[0] == "reports":
            if parts[2] == "documents":
                names.append("getReportDocument")
            else:
                names.append({("POST", 3): "createReport", ("GET", 4): "getReport", ("GET", 3): "getReports"}
                             [(method, len(parts))])
        elif parts[0] == "feeds":
            if parts[2] == "documents":
                names.append("createFeedDocument" if method == "POST" else "getFeedDocument")
            else:
                names.append({("POST", 3): "createFeed", ("GET", 4): "getFeed", ("GET", 3): "getFeeds"}
                             [(method, len(parts))])
        elif parts[0] == "orders":
            names.append("getOrderItems" if parts[-1] == "orderItems" else "getOrder")
    return names
