"""Shoper as the back office of Bol.com and Allegro (`decisions_from`)."""

from __future__ import annotations

from retsync_connectors.shoper.connector import ShoperConnector
from tests.backoffice import BackOfficeContract


class TestShoperBackOffice(BackOfficeContract):
    shop = ShoperConnector
