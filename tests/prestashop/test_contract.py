"""The contract every connector passes, run through the daemon's real path against the PrestaShop sandbox: a
PrestaShop 9 shop (merchandise returns) and a 1.7/8 one (returns from returned quantities and credit slips)."""

from __future__ import annotations

from retsync import registry
from retsync.testing.contract import ConnectorContract
from retsync_connectors.prestashop.connector import PrestaShopConnector
from tests.prestashop.flavours import PrestaShop8


class TestPrestaShopContract(ConnectorContract):
    connector = PrestaShopConnector
    # PrestaShop takes all six decisions (return states, credit slips, customer messages): nothing to refuse.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]


class TestPrestaShop8Contract(ConnectorContract):
    """The same connector against an 8.1.7 shop: a decision act there is one credit slip or one message."""

    connector = PrestaShop8
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]

    def test_registered_under_its_name(self) -> None:
        """The daemon runs the registered prestashop connector; only the sandbox it talks to is an 8.1.7 shop."""
        assert registry.get(self.connector.name) is PrestaShopConnector
