"""The contract every connector passes, run through the daemon's real path against the Shoper sandbox."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.shoper.connector import ShoperConnector


class TestShoperContract(ConnectorContract):
    connector = ShoperConnector
    # Shoper takes all six decisions (an order refund, a status + notes), so there is nothing it must refuse.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]
