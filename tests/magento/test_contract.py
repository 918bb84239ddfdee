"""The contract every connector passes, run through the daemon's real path against the Magento sandbox (Adobe
Commerce edition: every decision is taken, so no decision is unsupported there)."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.magento.connector import MagentoConnector


class TestMagentoContract(ConnectorContract):
    connector = MagentoConnector
    test_unsupported_decisions_send_nothing = None
