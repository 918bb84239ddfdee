"""PrestaShop as the back office of Bol.com and Allegro (`decisions_from`)."""

from __future__ import annotations

from retsync_connectors.prestashop.connector import PrestaShopConnector
from tests.backoffice import BackOfficeContract


class TestPrestaShopBackOffice(BackOfficeContract):
    shop = PrestaShopConnector
