"""The contract every connector passes, run through the daemon's real path against the Channable sandbox."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.channable.connector import ChannableConnector


class TestChannableContract(ConnectorContract):
    connector = ChannableConnector
    test_unsupported_decisions_send_nothing = None  # Channable takes all six decisions as return statuses
