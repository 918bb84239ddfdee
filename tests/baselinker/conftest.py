"""BaseLinker test helpers: a connector wired to the sandbox in-process, on a fake clock that waits cost nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.baselinker.connector import BaseLinkerConnector, BaseLinkerSettings
from retsync_connectors.baselinker.emulator import BaseLinkerEmulator


class FakeClock:
    """Monotonic seconds that move only when someone sleeps: the connector's pace and the sandbox's minute."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> BaseLinkerEmulator:
    emulator = BaseLinkerConnector.sandbox(seed=3)
    emulator.clock = clock
    return emulator


@pytest.fixture
def make_connector(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., BaseLinkerConnector]]:
    made: list[BaseLinkerConnector] = []

    def make(emulator: BaseLinkerEmulator, **overrides: Any) -> BaseLinkerConnector:
        table = {**BaseLinkerConnector.sandbox_channel("https://api.baselinker.com"), "max_backoff": "0.01s",
                 **overrides}
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=clock.sleep)
        connector = BaseLinkerConnector("bl-test", BaseLinkerSettings(**table), runtime)
        connector.client.pace.clock = clock
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
