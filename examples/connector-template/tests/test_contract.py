"""The contract every connector passes (retsync.testing), run through the daemon's real path against the sandbox:
pulling, the fault matrix, exactly-once decisions, a whole return as one act, a lost answer, no secret stored."""

from __future__ import annotations

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.model import DecisionKind
from retsync.outbox.decisions import record_decision
from retsync.testing.contract import ConnectorContract
from sqlalchemy import Engine, text

from retsync_connector_template.connector import TemplateConnector
from retsync_connector_template.emulator import TemplateEmulator


class TestTemplateContract(ConnectorContract):
    connector = TemplateConnector

    def test_each_supported_decision_is_pushed_exactly_once(self, runner: Runner, db: Engine,
                                                            emulator: TemplateEmulator) -> None:
        """Each supported decision on a whole return is one request, pushed once and never again.

        In place of the suite's test of this name, which expects a request per decision line: this channel
        takes a whole return in one request."""
        assert runner.pull("main").ok
        supported = [kind for kind in DecisionKind if self.connector.capabilities.supports(kind)]
        for kind, ref in zip(supported, self.open_returns(db, limit=len(supported)), strict=True):
            record_decision(db, ref, kind, note="decided in the contract suite", connector_for=registry.get)
        for _ in range(2):
            runner.push()
        with db.connect() as conn:
            states = set(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
        assert states == {"pushed"}
        posts = [r.path for r in emulator.requests if r.method == "POST"]
        assert len(posts) == len(set(posts)) == len(supported), "one request per act, none repeated"
