"""Through the daemon's real path: decisions taken in the panel become history once, retsync's own are not
echoed, and a full bucket pauses only the Shoper channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync.testing.config import config_for
from retsync_connectors.shoper.connector import ShoperConnector
from retsync_connectors.shoper.emulator import ACCEPTED, REQUESTED, ShoperEmulator

FAST = {"max_backoff": "0.05s", "max_retries": 4}


def _runner(db: Engine, db_url: str, tmp_path: Path, shops: dict[str, ShoperEmulator]) -> Runner:
    tables: dict[str, dict[str, Any]] = {
        name: {**ShoperConnector.sandbox_channel("http://sandbox.invalid"), **FAST} for name in shops}
    config = config_for(tmp_path, db_url, tables)
    runner = Runner(config, transports={name: shop.transport() for name, shop in shops.items()}, db=db)
    runner.open()
    return runner


@pytest.fixture
def shop() -> ShoperEmulator:
    return ShoperEmulator.roomy(seed=21)


@pytest.fixture
def runner(db: Engine, db_url: str, tmp_path: Path, shop: ShoperEmulator) -> Iterator[Runner]:
    runner = _runner(db, db_url, tmp_path, {"shop": shop})
    yield runner
    runner.close()


def decisions(db: Engine, external_id: str) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT d.kind, d.origin, d.state FROM decisions d JOIN returns r ON r.id = d.return_id "
            "WHERE r.external_id = :id ORDER BY d.id"), {"id": external_id})]


def waiting_return(db: Engine, shop: ShoperEmulator) -> dict:
    """An open request with one product, stored by the backfill."""
    with db.connect() as conn:
        stored = set(conn.execute(text("SELECT external_id FROM returns WHERE status = 'requested'")).scalars())
    return next(o for o in shop.orders.values() if o["status_id"] == REQUESTED and o["order_id"] in stored
                and len(shop.products[int(o["order_id"])]) == 1)


def test_an_approval_in_the_panel_is_recorded_once_as_the_shops_decision(
        runner: Runner, db: Engine, shop: ShoperEmulator) -> None:
    assert runner.pull("shop").ok
    order = waiting_return(db, shop)
    assert decisions(db, order["order_id"]) == []
    shop.set_status(int(order["order_id"]), ACCEPTED)
    for _ in range(2):
        assert runner.pull("shop").ok
    assert decisions(db, order["order_id"]) == [("accept", "channel", "synced")]
    shop.refund_in_panel(int(order["order_id"]), "10.00")  # the refund that follows the approval says the same
    assert runner.pull("shop").ok
    assert decisions(db, order["order_id"]) == [("accept", "channel", "synced")]
    assert runner.push().pushed == 0 and not shop.applied, "a decision read from the shop is never pushed back"


def test_a_decision_pushed_by_retsync_is_not_read_back_as_a_second_one(
        runner: Runner, db: Engine, shop: ShoperEmulator) -> None:
    assert runner.pull("shop").ok
    order = waiting_return(db, shop)
    record_decision(db, f"shop/{order['order_id']}", DecisionKind.REJECT, note="Ślady użytkowania.",
                    connector_for=registry.get)
    assert runner.push().pushed == 1
    assert runner.pull("shop").ok
    assert decisions(db, order["order_id"]) == [("reject", "merchant", "pushed")]
    with db.connect() as conn:
        status = conn.execute(text("SELECT status FROM returns WHERE external_id = :id"),
                              {"id": order["order_id"]}).scalar_one()
    assert status == "decided" and shop.order(order["order_id"])["status_id"] == "17"


def test_a_full_bucket_pauses_the_shoper_channel_until_retry_after_and_the_others_sync_on(
        db: Engine, db_url: str, tmp_path: Path) -> None:
    busy = ShoperEmulator(seed=3, bucket_limit=10, bandwidth=1000.0)
    calm = ShoperEmulator.roomy(seed=4)
    runner = _runner(db, db_url, tmp_path, {"busy": busy, "calm": calm})
    try:
        busy.drain_bucket()
        outcomes = {o.channel: o for o in runner.sync_once()[0]}
    finally:
        runner.close()
    assert outcomes["busy"].ok and outcomes["busy"].returns_new > 0, outcomes["busy"].error
    assert outcomes["calm"].ok and outcomes["calm"].returns_new > 0
    throttled = [n for n, r in enumerate(busy.requests) if r.status == 429]
    assert len(throttled) == 1
    assert busy.requests[throttled[0]].path == busy.requests[throttled[0] + 1].path
    assert not [r for r in calm.requests if r.status == 429]
    with db.connect() as conn:
        errors = set(conn.execute(text("SELECT last_error FROM channels")).scalars())
    assert errors == {None}
