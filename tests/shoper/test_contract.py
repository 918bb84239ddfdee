"""The contract every connector passes, run through the daemon's real path against the Shoper sandbox."""

from __future__ import annotations

from sqlalchemy import Engine

from retsync.app.daemon import Runner
from retsync.kit.emulator import Emulator
from retsync.kit.model import DecisionKind
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
        """The suite's test, and what one act means in Shoper: at most one order update per return, and one
        refund per refunding decision, however many products the return holds."""
        super().test_each_supported_decision_is_pushed_exactly_once(runner, db, emulator)
        sent = _writes(emulator)
        supported = [k for k in DecisionKind if self.connector.capabilities.supports(k)]
        updates = [path for method, path in sent if method == "PUT" and path.startswith("/webapi/rest/orders/")]
        assert len(updates) == len(set(updates)), "at most one order update per act"
        refunds = [path for method, path in sent if method == "POST" and path == "/webapi/rest/order-refunds"]
        assert len(refunds) == len({DecisionKind.ACCEPT, DecisionKind.KEEP} & set(supported)), "one refund an act"
