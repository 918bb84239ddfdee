"""Through the daemon's real path: retsync's own decisions are not echoed back, the shop's are recorded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.config import Config, Settings
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync_connectors.prestashop.connector import PrestaShopConnector, PrestaShopSettings
from retsync_connectors.prestashop.emulator import PrestaShopEmulator


@pytest.fixture
def shop() -> PrestaShopEmulator:
    return PrestaShopEmulator(seed=21)


@pytest.fixture
def runner(db: Engine, db_url: str, tmp_path: Path, shop: PrestaShopEmulator) -> Iterator[Runner]:
    table = {**PrestaShopConnector.sandbox_channel("http://sandbox.invalid"), "max_backoff": "0.05s"}
    settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels={"shop": table})
    config = Config(path=tmp_path / "config.toml", settings=settings, channels={"shop": PrestaShopSettings(**table)})
    runner = Runner(config, transports={"shop": shop.transport()}, db=db)
    runner.open()
    yield runner
    runner.close()


def decisions(db: Engine, external_id: str) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT d.kind, d.origin, d.state FROM decisions d JOIN returns r ON r.id = d.return_id "
            "WHERE r.external_id = :id ORDER BY d.id"), {"id": external_id})]


def waiting(db: Engine, shop: PrestaShopEmulator) -> list[str]:
    with db.connect() as conn:
        stored = set(conn.execute(text("SELECT external_id FROM v_returns WHERE status = 'requested' "
                                       "AND line_count = 1")).scalars())
    return sorted((str(r["id"]) for r in shop.tables["order_returns"].values() if str(r["id"]) in stored), key=int)


@pytest.mark.parametrize("kind", [DecisionKind.CANCEL, DecisionKind.KEEP, DecisionKind.REPAIR])
def test_a_decision_pushed_by_retsync_is_not_read_back_as_another_one(
        runner: Runner, db: Engine, shop: PrestaShopEmulator, kind: DecisionKind) -> None:
    assert runner.pull("shop").ok
    target = waiting(db, shop)[0]
    record_decision(db, f"shop/{target}", kind, note="Handled as agreed on the phone", connector_for=registry.get)
    assert runner.push().pushed == 1
    for _ in range(2):
        assert runner.pull("shop").ok
    assert decisions(db, target) == [(kind.value, "merchant", "pushed")]


def test_a_refusal_in_the_back_office_is_recorded_once_as_the_shops_decision(
        runner: Runner, db: Engine, shop: PrestaShopEmulator) -> None:
    assert runner.pull("shop").ok
    target = waiting(db, shop)[0]
    shop.set_return_state(int(target), 4)
    for _ in range(2):
        assert runner.pull("shop").ok
    assert decisions(db, target) == [("reject", "channel", "synced")]
    assert runner.push().pushed == 0 and not shop.applied, "a decision read from the shop is never pushed back"
