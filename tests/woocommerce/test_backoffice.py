"""WooCommerce as the back office of Bol.com and Allegro (`decisions_from`)."""

from __future__ import annotations

from retsync_connectors.woocommerce.connector import WooCommerceConnector
from tests.backoffice import BackOfficeContract


class TestWooCommerceBackOffice(BackOfficeContract):
    shop = WooCommerceConnector
