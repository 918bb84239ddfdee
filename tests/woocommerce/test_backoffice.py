"""WooCommerce as the back office of Bol.com and Allegro (`decisions_from`)."""

from __future__ import annotations

from retsync.testing.backoffice import BackOfficeContract
from retsync_connectors.woocommerce.connector import WooCommerceConnector


class TestWooCommerceBackOffice(BackOfficeContract):
    shop = WooCommerceConnector
