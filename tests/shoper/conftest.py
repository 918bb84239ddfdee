"""Shoper test helpers: a fake clock the emulator's bucket leaks by and the connector's waits advance, and
connector factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.shoper.connector import ShoperConnector, ShoperSettings
from retsync_connectors.shoper.emulator import SANDBOX_CHANNEL, ShoperEmulator

NOW = datetime.now(timezone.utc)


@dataclass
class FakeClock:
    """Seconds that pass only when the connector waits: the bucket leaks during its waits, never otherwise."""

    now: float = 1000.0
    waits: list[tuple[int, float]] = field(default_factory=list)
    """(requests the emulator had received when the wait began, seconds waited)."""
    emulator: ShoperEmulator | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append((len(self.emulator.requests) if self.emulator else 0, seconds))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shop(clock: FakeClock) -> ShoperEmulator:
    """The documented bucket (10 calls, 2 a second) on the fake clock."""
    emulator = ShoperEmulator(seed=11, clock=clock)
    clock.emulator = emulator
    return emulator


@pytest.fixture
def make_connector(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., ShoperConnector]]:
    """A connector wired to an emulator in-process; its waits advance the fake clock, never sleep."""
    made: list[ShoperConnector] = []

    def make(emulator: ShoperEmulator, **overrides: Any) -> ShoperConnector:
        settings = ShoperSettings(**{"connector": "shoper", "base_url": "https://sklep.example.pl",
                                     **SANDBOX_CHANNEL, "max_backoff": "30s", **overrides})
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=clock.sleep)
        connector = ShoperConnector("shoper-test", settings, runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()

