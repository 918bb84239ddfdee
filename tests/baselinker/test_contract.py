"""The contract every connector passes, through the daemon's real path against BaseLinker's sandbox."""

from __future__ import annotations

from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync.testing.contract import ConnectorContract
from retsync_connectors.baselinker.connector import BaseLinkerConnector
from retsync_connectors.baselinker.emulator import BaseLinkerEmulator


class TestBaseLinkerContract(ConnectorContract):
    connector = BaseLinkerConnector
    # The class declares all six decisions (each can be mapped to a status); a channel whose table maps fewer
    # makes the rest unsupported on its own instance: test_connector.py proves such a decision sends nothing.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]

    def test_a_status_the_merchant_sets_in_baselinker_is_read_back_as_that_decision_never_pushed(
            self, runner: Runner, db: Engine, emulator: BaseLinkerEmulator) -> None:
        """The merchant rejects a return in BaseLinker's panel (status 1005, `decision_statuses.reject`): retsync
        keeps it as the channel's decision on every line (`synced`), pushes nothing, and reading it again adds
        nothing; retsync's own pushed accept comes back in its status without a second decision."""
        assert runner.pull("main").ok
        ref = self.decided_return(db)
        rid = int(ref.split("/", 1)[1])
        emulator.m_setOrderReturnStatus({"return_id": rid, "status_id": 1005})
        assert runner.pull("main").ok and runner.pull("main").ok
        before = len(emulator.requests)
        runner.push()
        with db.connect() as conn:
            rows = conn.execute(text(
                "SELECT d.kind, d.state, d.origin FROM decisions d JOIN returns r ON r.id = d.return_id "
                "WHERE r.external_id = :rid"), {"rid": str(rid)}).all()
            lines = conn.execute(text("SELECT line_count, decision FROM v_returns WHERE external_id = :rid"),
                                 {"rid": str(rid)}).one()
        assert rows and set(rows) == {("reject", "synced", "channel")} and len(rows) == lines.line_count
        assert lines.decision == "reject"
        assert [r for r in emulator.requests[before:] if r.method != "GET"] == [], "nothing is pushed"

        other = self.open_returns(db, limit=1)[0]
        record_decision(db, other, DecisionKind.ACCEPT, connector_for=registry.get)
        runner.push()
        assert runner.pull("main").ok
        with db.connect() as conn:
            kinds = conn.execute(text(
                "SELECT d.origin, d.state FROM decisions d JOIN returns r ON r.id = d.return_id "
                "WHERE r.external_id = :rid"), {"rid": other.split("/", 1)[1]}).all()
        assert kinds and {origin for origin, _ in kinds} == {"merchant"}, kinds
