"""PrestaShop as the back office of Bol.com and Allegro (`decisions_from`)."""

from __future__ import annotations

from retsync.testing.backoffice import BackOfficeContract
from retsync_connectors.prestashop.connector import PrestaShopConnector


class TestPrestaShopBackOffice(BackOfficeContract):
    shop = PrestaShopConnector
