"""BaseLinker test helpers: a connector wired to the sandbox in-process, on a fake clock that waits cost nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retsync.kit.contract import Runtime
from retsync.testing.clock import VirtualClock
from retsync_connectors.baselinker.connector import BaseLinkerConnector, BaseLinkerSettings
from retsync_connectors.baselinker.emulator import BaseLinkerEmulator


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> BaseLinkerEmulator:
    emulator = BaseLinkerConnector.sandbox(seed=3)
    emulator.clock = clock
    return emulator


@pytest.fixture
def make_connector(tmp_path: Path, clock: VirtualClock) -> Iterator[Callable[..., BaseLinkerConnector]]:
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

