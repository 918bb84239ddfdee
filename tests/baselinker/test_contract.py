"""The contract every connector passes, through the daemon's real path against BaseLinker's sandbox."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.baselinker.connector import BaseLinkerConnector


class TestBaseLinkerContract(ConnectorContract):
    connector = BaseLinkerConnector
    # The class declares all six decisions (each can be mapped to a status); a channel whose table maps fewer
    # makes the rest unsupported on its own instance: test_connector.py proves such a decision sends nothing.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]
