"""One bad record never stops a channel: through each sandbox and the real daemon path, on SQLite and PostgreSQL.

A poison return (a line quantity of 1e30; a 36-character postcode and a 64-character phone, longer than their
varchar columns) used to fail its page on every poll, so no later return of the channel was ever stored. Now
the page is stored without it, the poison return sits in the quarantine (`v_quarantine`, `retsync channels`)
and the next normal return is stored; an overlong postcode is clipped to its column and the return stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync.app.daemon import Runner
from retsync.config import Config, Settings
from retsync.kit.contract import Connector
from retsync.kit.emulator import Emulator
from retsync.testing.contract import FAST, SANDBOX_URL
from retsync_connectors.allegro.connector import AllegroConnector
from retsync_connectors.amazon.connector import AmazonConnector
from retsync_connectors.baselinker.connector import BaseLinkerConnector
from retsync_connectors.bol.connector import BolConnector
from retsync_connectors.channable.connector import ChannableConnector
from retsync_connectors.magento.connector import MagentoConnector
from retsync_connectors.prestashop.connector import PrestaShopConnector
from retsync_connectors.shoper.connector import ShoperConnector
from retsync_connectors.shopify.connector import ShopifyConnector
from retsync_connectors.woocommerce.connector import WooCommerceConnector
from tests.prestashop.flavours import PrestaShop8, flavour

CONNECTORS = [BolConnector, AllegroConnector, WooCommerceConnector, ShoperConnector, PrestaShopConnector, PrestaShop8,
              MagentoConnector, ChannableConnector, BaseLinkerConnector, ShopifyConnector, AmazonConnector]
CLIPPING = [BolConnector, WooCommerceConnector, ShoperConnector, PrestaShopConnector, PrestaShop8, MagentoConnector,
            ChannableConnector, BaseLinkerConnector, ShopifyConnector]
"""Allegro's returns carry no typed postcode, nor do Amazon's reports (the buyer's address needs a Restricted Data
Token). PrestaShop's connector reads no address (`addresses`): its
return on an overlong one is stored without postcode and phone."""


class Sandbox:
    def __init__(self, connector: type[Connector], db: Engine, db_url: str, tmp_path: Path) -> None:
        emulator = connector.sandbox(seed=11, returns=12)
        assert emulator is not None
        self.emulator: Emulator = emulator
        self.connector = connector
        self.db = db
        table = {**connector.sandbox_channel(SANDBOX_URL), **FAST}
        settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels={"main": table})
        config = Config(path=tmp_path / "config.toml", settings=settings,
                        channels={"main": connector.settings_model(**table)})
        self.runner = Runner(config, transports={"main": emulator.transport()}, db=db)
        self.runner.open()

    def pull(self) -> Any:
        outcome = self.runner.pull("main")
        assert outcome.ok, outcome.error
        return outcome

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.db.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def stored(self) -> set[str]:
        return {row[0] for row in self.rows("SELECT external_id FROM v_returns WHERE channel = 'main'")}

    def quarantine(self) -> dict[str, Any]:
        return {row.external_id: row for row in self.rows(
            "SELECT external_id, kind, reason, payload, times_seen, is_open FROM v_quarantine WHERE channel = 'main'")}

    def cursors(self) -> dict[str, Any]:
        return dict(self.rows("SELECT s.stream, s.cursor FROM sync_cursors s JOIN channels c ON c.id = s.channel_id "
                              "WHERE c.name = 'main'"))

    def health(self) -> Any:
        return self.rows("SELECT last_error, consecutive_failures FROM channels WHERE name = 'main'")[0]


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, db: Engine, db_url: str, tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(request.param, db, db_url, tmp_path)
    yield box
    box.runner.close()


@pytest.mark.parametrize("sandbox", CONNECTORS, indirect=True, ids=flavour)
def test_a_return_of_1e30_items_is_quarantined_and_the_next_return_is_stored(sandbox: Sandbox) -> None:
    sandbox.pull()
    before = sandbox.cursors()
    poison = sandbox.emulator.add_poison_return("quantity")

    outcome = sandbox.pull()

    assert outcome.quarantined >= 1
    assert poison not in sandbox.stored()
    held = sandbox.quarantine()[poison]
    assert held.kind == "return" and held.is_open
    assert "beyond 100000 units" in held.reason or "not a quantity" in held.reason, held.reason
    assert re.search(r"1e\+?30", held.payload, re.IGNORECASE), "as the channel sent it (JSON, or a report's text)"
    assert sandbox.health() == (None, 0)
    assert sandbox.cursors() != before, "the cursor moved past the page"

    normal = sandbox.emulator.add_odd_return()
    sandbox.pull()
    assert normal in sandbox.stored(), "the next return of the channel is stored"
    assert sandbox.health() == (None, 0)
    assert sandbox.quarantine()[poison].is_open, "still unreadable: still in quarantine"


@pytest.mark.parametrize("sandbox", CLIPPING, indirect=True, ids=flavour)
def test_an_overlong_postcode_and_phone_are_clipped_to_their_columns_not_a_failed_page(sandbox: Sandbox) -> None:
    sandbox.pull()
    poison = sandbox.emulator.add_poison_return("postcode")

    sandbox.pull()

    [(postcode, phone)] = sandbox.rows(
        "SELECT customer_postcode, customer_phone FROM returns WHERE external_id = :id", id=poison)
    if issubclass(sandbox.connector, MagentoConnector):  # an RMA names no address: its order's billing one is kept
        [(postcode, phone)] = sandbox.rows(
            "SELECT o.customer_postcode, o.customer_phone FROM orders o JOIN returns r "
            "ON r.order_external_id = o.external_id AND r.channel_id = o.channel_id WHERE r.external_id = :id",
            id=poison)
    if issubclass(sandbox.connector, PrestaShopConnector):
        assert (postcode, phone) == (None, None), "the connector reads no address"
    else:
        assert postcode == "9" * 20 and phone is not None and len(phone) == 50
    assert sandbox.quarantine() == {}
    assert sandbox.health() == (None, 0)
