"""Shoper as the back office of Bol.com and Allegro (`decisions_from`)."""

from __future__ import annotations

from retsync.testing.backoffice import BackOfficeContract
from retsync_connectors.shoper.connector import ShoperConnector


class TestShoperBackOffice(BackOfficeContract):
    shop = ShoperConnector
