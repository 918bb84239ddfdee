"""The contract every connector passes, run through the daemon's real path against the Shoper sandbox."""

from __future__ import annotations

from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.emulator import Emulator
from retsync.kit.model import DecisionKind, DecisionState
from retsync.outbox.decisions import record_decision
from retsync.testing.contract import ConnectorContract
from retsync_connectors.shoper.connector import ShoperConnector


def _writes(emulator: Emulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests if r.method not in ("GET", "HEAD") and "/auth" not in r.path]


class TestShoperContract(ConnectorContract):
    connector = ShoperConnector
    # Shoper takes all six decisions (an order refund, a status + notes), so there is nothing it must refuse.
    test_unsupported_decisions_send_nothing = None  # type: ignore[assignment]

    def test_each_supported_decision_is_pushed_exactly_once(self, runner: Runner, db: Engine,
                                                            emulator: Emulator) -> None:
        """The suite's test, counting acts rather than decision lines: a whole-return decision on a return of
        three products is ONE order update here (one refund and one update for accept), so the suite's
        "at least one write per decision line" cannot hold for a channel that acts once per return."""
        assert runner.pull("main").ok
        supported = [k for k in DecisionKind if self.connector.capabilities.supports(k)]
        candidates = self.open_returns(db, limit=len(supported))
        assert len(candidates) == len(supported), "the sandbox must hold enough open returns to decide on"
        for kind, ref in zip(supported, candidates):
            record_decision(db, ref, kind, note="decided in the contract suite", connector_for=registry.get)
        before = len(_writes(emulator))
        for _ in range(4):
            runner.push()
        sent = _writes(emulator)[before:]
        with db.connect() as conn:
            states = list(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
            acts = conn.execute(text("SELECT COUNT(DISTINCT act_key) FROM decisions WHERE origin = 'merchant'"))\
                .scalar_one()
        assert states and set(states) == {DecisionState.PUSHED.value}, states
        after = len(_writes(emulator))
        runner.push()
        assert len(_writes(emulator)) == after, "nothing is sent again once pushed"
        assert acts == len(supported) and len(sent) >= acts
        updates = [path for method, path in sent if method == "PUT" and path.startswith("/webapi/rest/orders/")]
        assert len(updates) == len(set(updates)), "at most one order update per act"
        refunds = [path for method, path in sent if method == "POST" and path == "/webapi/rest/order-refunds"]
        assert len(refunds) == len({DecisionKind.ACCEPT, DecisionKind.KEEP} & set(supported)), "one refund an act"
