"""The contract every connector passes, run through the daemon's real path against the Allegro sandbox."""

from __future__ import annotations

from retsync_connectors.allegro.connector import AllegroConnector
from tests.contract import ConnectorContract


class TestAllegroContract(ConnectorContract):
    connector = AllegroConnector
