"""The contract every connector passes, run through the daemon's real path against the bol sandbox."""

from __future__ import annotations

from typing import Any

from retsync.testing.contract import ConnectorContract
from retsync_connectors.bol.connector import BolConnector


class TestBolContract(ConnectorContract):
    connector = BolConnector

    def channel_table(self, **overrides: Any) -> dict[str, Any]:
        # the sandbox finishes a handling at the first poll; waiting bol's real-world second would only slow the suite
        return super().channel_table(**{"process_poll_delay": "0.05s", **overrides})
