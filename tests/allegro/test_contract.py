"""The contract every connector passes, run through the daemon's real path against the Allegro sandbox."""

from __future__ import annotations

from retsync.testing.contract import ConnectorContract
from retsync_connectors.allegro.connector import AllegroConnector


class TestAllegroContract(ConnectorContract):
    connector = AllegroConnector
