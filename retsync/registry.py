"""Connectors are found through the `retsync.connectors` entry point group.

Built-in connectors register exactly like a third-party package would, so the
core never names a channel and a merchant can `pip install` a connector we
never heard of.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from retsync.kit.contract import Connector
    from retsync.kit.settings import ChannelSettings

ENTRY_POINT_GROUP = "retsync.connectors"

log = structlog.get_logger(__name__)


@cache
def connectors() -> dict[str, type[Connector]]:
    """Every installed connector by its registered name; a broken plug-in is logged and left out."""
    from retsync.kit.contract import Connector

    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception as exc:  # a broken third-party package must not take the daemon down
            log.error("connector_load_failed", entry_point=entry.name, error=str(exc))
            continue
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            log.error("connector_invalid", entry_point=entry.name, error="not a retsync Connector subclass")
            continue
        found[entry.name] = cls
    return dict(sorted(found.items()))


def get(name: str) -> type[Connector] | None:
    return connectors().get(name)


def settings_model_for(name: str) -> type[ChannelSettings] | None:
    cls = get(name)
    return cls.settings_model if cls else None


def names() -> list[str]:
    return list(connectors())


def holds_returns(name: str) -> bool:
    """Whether the connector can hold other channels' returns (a shop, for `decisions_from`)."""
    cls = get(name)
    return cls is not None and cls.capabilities.holds_returns is not None
