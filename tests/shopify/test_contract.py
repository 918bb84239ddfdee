"""The contract every connector passes, run through the daemon's real path against the Shopify sandbox (a GraphQL
endpoint executing what it is sent): pulling, the fault matrix, exactly-once decisions, a lost answer."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.shopify.connector import ShopifyConnector


class TestShopifyContract(ConnectorContract):
    connector = ShopifyConnector
    # Shopify takes all six decisions (cancel fails with the reason once something is processed, found at the act).
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]
