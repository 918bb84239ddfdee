"""The contract every connector passes, run through the daemon's real path against the PrestaShop sandbox."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.prestashop.connector import PrestaShopConnector


class TestPrestaShopContract(ConnectorContract):
    connector = PrestaShopConnector
    # PrestaShop takes all six decisions (return states, credit slips, customer messages): nothing to refuse.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]
