"""Through the daemon's real path: decisions taken in the shop become history once, retsync's own are not echoed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.config import Config, Settings
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync_connectors.woocommerce.connector import WooCommerceConnector, WooCommerceSettings
from retsync_connectors.woocommerce.emulator import WooCommerceEmulator


@pytest.fixture
def shop() -> WooCommerceEmulator:
    return WooCommerceEmulator(seed=21)


@pytest.fixture
def runner(db: Engine, db_url: str, tmp_path: Path, shop: WooCommerceEmulator) -> Iterator[Runner]:
    table = {**WooCommerceConnector.sandbox_channel("http://sandbox.invalid"), "max_backoff": "0.05s"}
    settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels={"shop": table})
    config = Config(path=tmp_path / "config.toml", settings=settings, channels={"shop": WooCommerceSettings(**table)})
    runner = Runner(config, transports={"shop": shop.transport()}, db=db)
    runner.open()
    yield runner
    runner.close()


def decisions(db: Engine, external_id: str) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT d.kind, d.origin, d.state FROM decisions d JOIN returns r ON r.id = d.return_id "
            "WHERE r.external_id = :id ORDER BY d.id"), {"id": external_id})]


def waiting_return(shop: WooCommerceEmulator) -> dict:
    """An open request on one item, changed within the default 90 days of backfill."""
    recent = (datetime.now(timezone.utc) - timedelta(days=80)).replace(tzinfo=None).isoformat()
    return next(o for o in shop.orders.values() if o["status"] == "return-requested" and not o["refunds"]
                and o["date_modified_gmt"] > recent
                and any(m["key"] == "wps_rma_return_product" for m in o["meta_data"])
                and len(next(m for m in o["meta_data"] if m["key"] == "wps_rma_request_made")["value"]) == 1)


def test_an_approval_in_the_shop_is_recorded_once_as_the_shops_decision(
        runner: Runner, db: Engine, shop: WooCommerceEmulator) -> None:
    assert runner.pull("shop").ok
    order = waiting_return(shop)
    assert decisions(db, str(order["id"])) == []
    shop.set_status(order["id"], "return-approved")
    for _ in range(2):
        assert runner.pull("shop").ok
    assert decisions(db, str(order["id"])) == [("accept", "channel", "synced")]
    shop.refund_in_admin(order["id"], item_quantity=1)  # the refund that follows the approval says the same
    assert runner.pull("shop").ok
    assert decisions(db, str(order["id"])) == [("accept", "channel", "synced")]
    assert runner.push().pushed == 0 and not shop.applied, "a decision read from the shop is never pushed back"


def test_a_decision_pushed_by_retsync_is_not_read_back_as_a_second_one(
        runner: Runner, db: Engine, shop: WooCommerceEmulator) -> None:
    assert runner.pull("shop").ok
    order = waiting_return(shop)
    record_decision(db, f"shop/{order['id']}", DecisionKind.REJECT, note="Worn, we cannot take it back.",
                    connector_for=registry.get)
    assert runner.push().pushed == 1
    assert runner.pull("shop").ok
    assert decisions(db, str(order["id"])) == [("reject", "merchant", "pushed")]
    with db.connect() as conn:
        status = conn.execute(text("SELECT status FROM returns WHERE external_id = :id"),
                              {"id": str(order["id"])}).scalar_one()
    assert status == "decided" and shop.order(order["id"])["status"] == "return-cancelled"
