"""The PrestaShop connector against a 1.7/8 shop, for suites parametrised by connector class.

Such suites take a connector's sandbox from `Connector.sandbox`, which serves PrestaShop 9 (merchandise
returns); this class serves 8.1.7 instead (no `order_returns`: returns from credit slips and returned
quantities), while the daemon still runs the real `prestashop` connector the sandbox channel names.
"""

from __future__ import annotations

from typing import ClassVar

from retsync_connectors.prestashop.connector import PrestaShopConnector
from retsync_connectors.prestashop.emulator import PrestaShopEmulator

SHOP_8 = "8.1.7"


class PrestaShop8(PrestaShopConnector):
    flavour: ClassVar[str] = "prestashop-8"

    @classmethod
    def sandbox(cls, seed: int = 1, returns: int | None = None) -> PrestaShopEmulator:
        if returns is None:
            return PrestaShopEmulator(seed=seed, version=SHOP_8)
        return PrestaShopEmulator.sized(seed, returns, version=SHOP_8)


def flavour(connector: type) -> str:
    """A test id: the connector's name, or its flavour where one connector is tested against two shops."""
    return str(getattr(connector, "flavour", getattr(connector, "name", connector)))
