"""Magento (Adobe Commerce) as the back office of Bol.com and Allegro (`decisions_from`): a marketplace return is
held as an RMA on the hold order once, the merchant decides it by the items' statuses, and the decision reaches the
marketplace exactly once."""

from __future__ import annotations

from retsync.testing.backoffice import BackOfficeContract
from retsync_connectors.magento.connector import MagentoConnector


class TestMagentoBackOffice(BackOfficeContract):
    shop = MagentoConnector
