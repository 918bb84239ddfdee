"""Shopify as the back office of Bol.com and Allegro (`decisions_from`): a marketplace return held as a draft
order, decided in the admin by a tag, read back and mirrored to the marketplace exactly once."""

from __future__ import annotations

from retsync.testing.backoffice import BackOfficeContract
from retsync_connectors.shopify.connector import ShopifyConnector


class TestShopifyBackOffice(BackOfficeContract):
    shop = ShopifyConnector
