"""The contract every connector passes, run through the daemon's real path against the Channable sandbox, and what
a merchant sees of the marketplaces behind Channable in the reporting views."""

from __future__ import annotations

from sqlalchemy import Engine, text

from retsync.app.daemon import Runner
from retsync.testing.contract import ConnectorContract
from retsync_connectors.channable.connector import ChannableConnector
from retsync_connectors.channable.sandbox_data import MARKETPLACES


class TestChannableContract(ConnectorContract):
    connector = ChannableConnector
    test_unsupported_decisions_send_nothing = None  # Channable takes all six decisions as return statuses

    def test_each_return_names_its_marketplace_in_the_views(self, runner: Runner, db: Engine) -> None:
        assert runner.pull("main").ok
        with db.connect() as conn:
            returns = set(conn.execute(text("SELECT DISTINCT marketplace FROM v_returns")).scalars())
            lines = set(conn.execute(text("SELECT DISTINCT marketplace FROM v_return_lines")).scalars())
            linked = conn.execute(text("SELECT COUNT(*) FROM v_return_lines WHERE link_method IS NULL")
                                  ).scalar_one()
        assert returns == lines == set(MARKETPLACES)
        assert linked == 0, "every return's item is linked to its order's product line"

    def test_returns_decided_at_the_marketplace_are_history_never_pushed(self, runner: Runner, db: Engine,
                                                                       emulator: object) -> None:
        assert runner.pull("main").ok
        runner.push()
        with db.connect() as conn:
            synced = conn.execute(text(
                "SELECT COUNT(*) FROM decisions WHERE origin = 'channel' AND state = 'synced'")).scalar_one()
            pushed = conn.execute(text("SELECT COUNT(*) FROM decisions WHERE state <> 'synced'")).scalar_one()
        assert synced > 0 and pushed == 0
        assert not [r for r in emulator.requests if r.method == "POST"]  # type: ignore[attr-defined]

    def test_a_poison_return_is_quarantined_and_an_overlong_postcode_clipped(self, runner: Runner, db: Engine,
                                                                             emulator: object) -> None:
        """tests/test_quarantine.py's two cases, through Channable's sandbox (one item of 1e30 units; a 36-character
        zip code and a 64-character phone in the return address)."""
        assert runner.pull("main").ok
        poison = emulator.add_poison_return("quantity")  # type: ignore[attr-defined]
        long = emulator.add_poison_return("postcode")  # type: ignore[attr-defined]
        outcome = runner.pull("main")
        assert outcome.ok and outcome.quarantined == 1, outcome.error
        with db.connect() as conn:
            held = conn.execute(text("SELECT external_id, reason FROM v_quarantine WHERE channel = 'main'")).all()
            clipped = conn.execute(text("SELECT customer_postcode, customer_phone FROM returns "
                                        "WHERE external_id = :id"), {"id": long}).one()
        assert [row.external_id for row in held] == [poison] and "not a quantity" in held[0].reason
        assert clipped.customer_postcode == "9" * 20 and len(clipped.customer_phone) == 50
        assert self.health(db, "main") == (None, 0)
