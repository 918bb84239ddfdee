"""The contract suite every connector passes, run against its own sandbox emulator.

A connector's test module subclasses `ConnectorContract` and names its class:

    class TestBolContract(ConnectorContract):
        connector = BolConnector

Everything here goes through the real path (config table, Runner, engine,
outbox) on SQLite and PostgreSQL, so a new channel that passes it works in
the daemon, survives the fault matrix, and never pushes a decision twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, func, select, text

from retsync import registry
from retsync.config import ChannelSettings, Config, Settings
from retsync.connector import Connector
from retsync.daemon import Runner
from retsync.emulator import Emulator
from retsync.model import DecisionKind, DecisionState, ReturnStatus
from retsync.outbox import record_decision
from retsync.secrets import known_secrets
from retsync.store.models import Base, Return, ReturnEvent

SANDBOX_URL = "http://sandbox.invalid"
FAST = {"max_retries": 4, "max_backoff": "0.05s", "timeout": "5s"}


def _mutating(emulator: Emulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests if r.method not in ("GET", "HEAD") and "token" not in r.path]


class ConnectorContract:
    connector: ClassVar[type[Connector]]
    seed: ClassVar[int] = 7

    # --- helpers ---------------------------------------------------------------------------

    @pytest.fixture
    def emulator(self) -> Emulator:
        emulator = self.connector.sandbox(seed=self.seed)
        assert emulator is not None, f"{self.connector.name} must ship a sandbox emulator"
        return emulator

    def channel_table(self, **overrides: Any) -> dict[str, Any]:
        return {**self.connector.sandbox_channel(SANDBOX_URL), **FAST, **overrides}

    def make_config(self, tmp_path: Path, db_url: str, channels: dict[str, dict[str, Any]]) -> Config:
        settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels=channels)
        parsed = {name: self.connector.settings_model(**table) for name, table in channels.items()}
        return Config(path=tmp_path / "config.toml", settings=settings, channels=parsed)

    @pytest.fixture
    def runner(self, db: Engine, db_url: str, tmp_path: Path, emulator: Emulator) -> Iterator[Runner]:
        config = self.make_config(tmp_path, db_url, {"main": self.channel_table()})
        runner = Runner(config, transports={"main": emulator.transport()}, db=db)
        runner.open()
        yield runner
        runner.close()

    @staticmethod
    def count(db: Engine, model: type) -> int:
        with db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(model)).scalar_one())

    @staticmethod
    def open_returns(db: Engine, limit: int = 50) -> list[str]:
        with db.connect() as conn:
            return list(conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE handled_by_channel = :no "
                "AND decision IS NULL AND status IN ('requested', 'in_transit', 'received') "
                f"ORDER BY return_id LIMIT {limit}"), {"no": False}).scalars())

    # --- registration and declaration --------------------------------------------------------

    def test_registered_under_its_name(self) -> None:
        assert registry.get(self.connector.name) is self.connector

    def test_settings_model_accepts_the_sandbox_table(self) -> None:
        assert issubclass(self.connector.settings_model, ChannelSettings)
        settings = self.connector.settings_model(**self.channel_table())
        assert settings.connector == self.connector.name

    def test_every_decision_is_supported_or_explained(self) -> None:
        caps = self.connector.capabilities
        for kind in DecisionKind:
            assert kind in caps.decisions or kind in caps.unsupported, f"{kind} is neither supported nor explained"
            if kind in caps.unsupported:
                assert len(caps.unsupported[kind]) > 10

    # --- pulling -----------------------------------------------------------------------------

    def test_backfill_then_re_pull_stores_each_return_once(self, runner: Runner, db: Engine) -> None:
        first = runner.pull("main")
        assert first.ok, first.error
        stored = self.count(db, Return)
        assert stored > 0 and first.returns_new == stored
        events = self.count(db, ReturnEvent)
        second = runner.pull("main")
        assert second.ok and second.returns_new == 0
        assert self.count(db, Return) == stored
        assert self.count(db, ReturnEvent) == events, "re-reading unchanged data writes no history"
        with db.connect() as conn:
            statuses = set(conn.execute(text("SELECT DISTINCT status FROM v_returns")).scalars())
            lineless = conn.execute(text("SELECT COUNT(*) FROM v_returns WHERE line_count = 0")).scalar_one()
        assert statuses <= {s.value for s in ReturnStatus}
        assert lineless == 0

    @pytest.mark.parametrize("fault, options", [
        ("status", {"status": 503, "times": 3}),
        ("status", {"status": 502, "times": 2}),
        ("status", {"status": 429, "times": 2, "retry_after": "0"}),
        ("status", {"status": 429, "times": 1}),
        ("drop", {"times": 2}),
        ("truncated", {"times": 1}),
        ("expire_tokens", {"times": 1}),
        ("slow", {"times": 1, "delay": 0.05}),
    ])
    def test_recovers_from_transient_faults(self, runner: Runner, db: Engine, emulator: Emulator,
                                            fault: str, options: dict[str, Any]) -> None:
        emulator.inject(fault, **options)
        outcome = runner.pull("main")
        assert outcome.ok, outcome.error
        assert self.count(db, Return) > 0

    @pytest.mark.parametrize("fault", ["malformed", "wrong_shape"])
    def test_a_broken_page_fails_the_channel_cleanly_and_stores_nothing_of_it(
            self, db: Engine, db_url: str, tmp_path: Path, fault: str) -> None:
        broken, healthy = self.connector.sandbox(seed=self.seed), self.connector.sandbox(seed=self.seed + 1)
        assert broken is not None and healthy is not None
        config = self.make_config(tmp_path, db_url, {"broken": self.channel_table(), "healthy": self.channel_table()})
        runner = Runner(config, transports={"broken": broken.transport(), "healthy": healthy.transport()}, db=db)
        runner.open()
        try:
            broken.inject(fault, times=None)
            outcomes = {o.channel: o for o in runner.sync_once()[0]}
        finally:
            runner.close()
        assert not outcomes["broken"].ok and outcomes["broken"].error
        assert "Traceback" not in outcomes["broken"].error
        assert outcomes["healthy"].ok and outcomes["healthy"].returns_new > 0, "other channels are not affected"
        with db.connect() as conn:
            rows = conn.execute(text(
                "SELECT COUNT(*) FROM returns r JOIN channels c ON c.id = r.channel_id WHERE c.name = 'broken'"
            )).scalar_one()
            cursors = conn.execute(text(
                "SELECT COUNT(*) FROM sync_cursors s JOIN channels c ON c.id = s.channel_id WHERE c.name = 'broken'"
            )).scalar_one()
            health = conn.execute(text(
                "SELECT last_error, consecutive_failures FROM channels WHERE name = 'broken'")).one()
        assert rows == 0 and cursors == 0, "nothing of the broken page, and no cursor past it"
        assert health.consecutive_failures == 1 and health.last_error

    # --- pushing -----------------------------------------------------------------------------

    def test_each_supported_decision_is_pushed_exactly_once(self, runner: Runner, db: Engine,
                                                            emulator: Emulator) -> None:
        assert runner.pull("main").ok
        supported = [k for k in DecisionKind if self.connector.capabilities.supports(k)]
        candidates = self.open_returns(db, limit=len(supported))
        assert len(candidates) == len(supported), "the sandbox must hold enough open returns to decide on"
        for kind, ref in zip(supported, candidates):
            record_decision(db, ref, kind, note="decided in the contract suite", connector_for=registry.get)
        before = len(_mutating(emulator))
        for _ in range(4):  # let channels that confirm asynchronously confirm
            runner.push()
        sent = _mutating(emulator)[before:]
        with db.connect() as conn:
            states = list(conn.execute(text("SELECT state FROM decisions WHERE origin = 'merchant'")).scalars())
        assert states and set(states) == {DecisionState.PUSHED.value}, states
        after = len(_mutating(emulator))
        runner.push()
        assert len(_mutating(emulator)) == after, "nothing is sent again once pushed"
        assert len(sent) >= len(states)

    def test_no_secret_reaches_the_database(self, runner: Runner, db: Engine) -> None:
        """Credentials from the config and tokens from the channel never end up in any table."""
        assert runner.pull("main").ok
        refs = self.open_returns(db, limit=1)
        supported = [k for k in DecisionKind if self.connector.capabilities.supports(k)]
        record_decision(db, refs[0], supported[0], note="contract", connector_for=registry.get)
        runner.push()
        secrets = [value for value in known_secrets() if len(value) >= 6]
        assert secrets, "the sandbox credentials and tokens were resolved through retsync.secrets"
        with db.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for row in conn.execute(table.select()):
                    dumped = repr(tuple(row))
                    leaked = [value[:4] + "…" for value in secrets if value in dumped]
                    assert not leaked, f"secret {leaked} stored in table {table.name}"

    def test_unsupported_decisions_send_nothing(self, runner: Runner, db: Engine, emulator: Emulator) -> None:
        unsupported = [k for k in DecisionKind if not self.connector.capabilities.supports(k)]
        assert unsupported, ("this connector supports every decision: set `test_unsupported_decisions_send_nothing "
                             "= None` in its contract class")
        assert runner.pull("main").ok
        ref = self.open_returns(db, limit=1)[0]
        for kind in unsupported:
            recorded = record_decision(db, ref, kind, note="n/a", connector_for=registry.get)
            assert recorded.state is DecisionState.UNSUPPORTED and recorded.detail
        before = len(_mutating(emulator))
        runner.push()
        assert len(_mutating(emulator)) == before
