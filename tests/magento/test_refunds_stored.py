"""Through the daemon's real path, on SQLite and PostgreSQL: an Adobe Commerce RMA's refund (its order's credit
memo, made by a retsync decision or by the merchant in the admin) and its receipt reach the stored return and
`v_returns`, where the refund flags read them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.config import Config, Settings
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync_connectors.magento.connector import MagentoConnector, MagentoSettings
from retsync_connectors.magento.emulator import MagentoEmulator


@pytest.fixture
def shop() -> MagentoEmulator:
    return MagentoEmulator(seed=3)


@pytest.fixture
def runner(db: Engine, db_url: str, tmp_path: Path, shop: MagentoEmulator) -> Iterator[Runner]:
    table = {**MagentoConnector.sandbox_channel("https://shop.example.com"), "max_backoff": "0.05s"}
    settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels={"shop": table})
    config = Config(path=tmp_path / "config.toml", settings=settings, channels={"shop": MagentoSettings(**table)})
    runner = Runner(config, transports={"shop": shop.transport()}, db=db)
    runner.open()
    yield runner
    runner.close()


def stored(db: Engine, external_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(text("SELECT refund_amount, refunded_at, received_at, status FROM v_returns "
                                "WHERE external_id = :id"), {"id": external_id}).mappings().one()
        return dict(row)


def day(value: Any) -> str:
    return str(value)[:19].replace("T", " ")


def test_an_accepted_rma_and_one_refunded_in_the_admin_show_their_refunds_in_v_returns(
        runner: Runner, db: Engine, shop: MagentoEmulator) -> None:
    assert runner.pull("shop").ok
    merchant = next(r for r in shop.rmas.values() if r["status"] == "processed_closed")
    memo = next(m for m in shop.creditmemos.values() if m["order_id"] == merchant["order_id"])
    row = stored(db, str(merchant["entity_id"]))
    assert row["refund_amount"] == round(memo["grand_total"] * 100) and day(row["refunded_at"]) == memo["created_at"]

    target = next(r for r in shop.rmas.values() if r["status"] == "received" and len(r["items"]) == 1)
    receipt = next(c["created_at"] for c in target["comments"] if c["status"] == "received")
    before = stored(db, str(target["entity_id"]))
    assert before["refund_amount"] is None and before["refunded_at"] is None
    assert day(before["received_at"]) == receipt
    record_decision(db, f"shop/{target['entity_id']}", DecisionKind.ACCEPT, note="Checked, refunded",
                    connector_for=registry.get)
    assert runner.push().pushed == 1
    made = max(shop.creditmemos.values(), key=lambda m: m["entity_id"])
    assert made["order_id"] == target["order_id"] and "[retsync " in made["comments"][0]["comment"]
    assert runner.pull("shop").ok
    after = stored(db, str(target["entity_id"]))
    assert after["refund_amount"] == round(made["grand_total"] * 100)
    assert day(after["refunded_at"]) == made["created_at"] and day(after["received_at"]) == receipt
    with db.connect() as conn:
        overdue = conn.execute(text(
            "SELECT COUNT(*) FROM return_flags f JOIN returns r ON r.id = f.return_id WHERE r.external_id = :id "
            "AND f.code = 'refund_overdue' AND f.resolved_at IS NULL"), {"id": str(target["entity_id"])}).scalar_one()
    assert overdue == 0, "refunded: no longer overdue"


def test_the_refund_flags_read_magentos_refunds(runner: Runner, db: Engine, shop: MagentoEmulator) -> None:
    """The sandbox's refunds are right (price × quantity of the approved items): no mismatch and no double refund;
    a second credit memo of the same items made in the admin is a mismatch."""
    assert runner.pull("shop").ok

    def flags(code: str) -> set[str]:
        with db.connect() as conn:
            return set(conn.execute(text(
                "SELECT r.external_id FROM return_flags f JOIN returns r ON r.id = f.return_id "
                "WHERE f.code = :code AND f.resolved_at IS NULL"), {"code": code}).scalars())

    assert flags("refund_amount_mismatch") == set() and flags("double_refund") == set()
    rma = next(r for r in shop.rmas.values() if r["status"] == "processed_closed" and len(r["items"]) == 1
               and shop.orders[r["order_id"]]["items"][0]["qty_invoiced"] > r["items"][0]["qty_approved"])
    order = shop.orders[rma["order_id"]]
    with shop.lock:
        shop.data.refund(order, {rma["items"][0]["order_item_id"]: rma["items"][0]["qty_approved"]},
                         "2999-01-01 00:00:00", "refunded again by mistake")
    assert runner.pull("shop").ok
    assert str(rma["entity_id"]) in flags("refund_amount_mismatch")
