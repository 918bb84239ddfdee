"""Shopify test helpers: a connector wired to the sandbox in-process, a clock that passes only when slept, and
the GraphQL operations a sandbox was sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import FieldNode, OperationDefinitionNode, parse

from retsync.kit.contract import Runtime
from retsync.testing.clock import VirtualClock
from retsync_connectors.shopify.connector import ShopifyConnector, ShopifySettings
from retsync_connectors.shopify.emulator import ShopifyEmulator


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> ShopifyEmulator:
    return ShopifyEmulator(seed=3, n_orders=24, clock=clock)


@pytest.fixture
def make_connector(tmp_path: Path, clock: VirtualClock) -> Iterator[Callable[..., ShopifyConnector]]:
    """A connector talking to an emulator in-process; its waits advance `clock` instead of sleeping."""
    made: list[ShopifyConnector] = []

    def make(emulator: ShopifyEmulator, **overrides: Any) -> ShopifyConnector:
        table = {**ShopifyConnector.sandbox_channel("https://retsync-sandbox.myshopify.com"), "max_backoff": "0.01s",
                 **overrides}
        runtime = Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=clock.sleep)
        connector = ShopifyConnector("shopify-test", ShopifySettings(**table), runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def operations(emulator: ShopifyEmulator, *, mutations_only: bool = True) -> list[str]:
    """The root fields of every operation the emulator was sent, in order (mutations only by default)."""
    found: list[str] = []
    for request in emulator.requests:
        if not isinstance(request.body, dict) or not isinstance(request.body.get("query"), str):
            continue
        for definition in parse(request.body["query"]).definitions:
            if isinstance(definition, OperationDefinitionNode) and (
                    definition.operation.value == "mutation" or not mutations_only):
                found += [node.name.value for node in definition.selection_set.selections
                          if isinstance(node, FieldNode)]
    return found

