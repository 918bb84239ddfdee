"""The contract every connector passes, run through the daemon's real path against the WooCommerce sandbox."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.woocommerce.connector import WooCommerceConnector


class TestWooCommerceContract(ConnectorContract):
    connector = WooCommerceConnector
    # WooCommerce takes all six decisions (refund, status + note), so there is nothing it must refuse.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]
