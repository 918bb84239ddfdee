"""The contract every connector passes, run through the daemon's real path against the Amazon sandbox, and what
the reports flow adds: FBA returns stored decided by Amazon and never pushed, a poison row quarantined."""

from __future__ import annotations

from sqlalchemy import Engine, text

from retsync.app.daemon import Runner
from retsync.testing.contract import ConnectorContract
from retsync_connectors.amazon.connector import AmazonConnector


class TestAmazonContract(ConnectorContract):
    connector = AmazonConnector

    def test_fba_returns_are_amazons_own_history_never_pushed(self, runner: Runner, db: Engine,
                                                              emulator: object) -> None:
        assert runner.pull("main").ok
        runner.push()
        with db.connect() as conn:
            fba = conn.execute(text("SELECT COUNT(*) FROM v_returns WHERE handled_by_channel = :yes"),
                               {"yes": True}).scalar_one()
            synced = conn.execute(text(
                "SELECT COUNT(*) FROM decisions WHERE origin = 'channel' AND state = 'synced'")).scalar_one()
            pushed = conn.execute(text("SELECT COUNT(*) FROM decisions WHERE state <> 'synced'")).scalar_one()
        assert fba > 0 and synced >= fba and pushed == 0
        assert not [r for r in emulator.requests if "/feeds/" in r.path]  # type: ignore[attr-defined]

    def test_a_poison_row_is_quarantined_and_the_channel_carries_on(self, runner: Runner, db: Engine,
                                                                    emulator: object) -> None:
        assert runner.pull("main").ok
        poison = emulator.add_poison_return("quantity")  # type: ignore[attr-defined]
        fine = emulator.add_odd_return()  # type: ignore[attr-defined]
        outcome = runner.pull("main")
        assert outcome.ok and outcome.quarantined == 1, outcome.error
        with db.connect() as conn:
            held = conn.execute(text("SELECT external_id, reason FROM v_quarantine WHERE channel = 'main'")).all()
        assert [row.external_id for row in held] == [poison] and "not a quantity" in held[0].reason
        assert fine in self.stored(db, "main")
        assert self.health(db, "main") == (None, 0)
