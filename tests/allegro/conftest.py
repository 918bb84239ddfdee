"""Helpers for the Allegro connector tests: an in-memory stand-in for the engine's store, and connector factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.allegro.connector import AllegroConnector, AllegroSettings
from retsync_connectors.allegro.emulator import AllegroEmulator

NOW = datetime.now(timezone.utc)


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
