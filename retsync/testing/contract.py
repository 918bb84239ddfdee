"""The contract suite every connector passes, run against its own sandbox emulator.

A connector's test module subclasses `ConnectorContract` and names its class:

    class TestBolContract(ConnectorContract):
        connector = BolConnector

Everything here goes through the real path (config table, Runner, engine,
outbox) on SQLite and PostgreSQL, so a new channel that passes it works in
the daemon, survives the fault matrix, and never pushes a decision twice.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, func, inspect, select, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.config import Config
from retsync.kit.contract import Connector
from retsync.kit.emulator import Emulator
from retsync.kit.model import DecisionKind, DecisionState, ReturnStatus
from retsync.kit.secrets import known_secrets
from retsync.kit.settings import ChannelSettings
from retsync.outbox.decisions import record_decision
from retsync.store.models import Decision, Return, ReturnEvent
from retsync.testing.config import config_for

SANDBOX_URL = "http://sandbox.invalid"
FAST = {"max_retries": 4, "max_backoff": "0.05s", "max_retry_after": "0.05s", "timeout": "5s"}


def fault_matrix(argnames: str, cases: list[tuple[Any, ...]], ids: list[str], on_postgresql: str) -> Any:
    """Every case of a fault matrix on SQLite, and the one named on PostgreSQL too.

    A fault is the channel's: it reaches the store the same way on both databases (a page stored whole, or not at
    all), so the matrix is walked once and the store's side of it checked on both, which keeps the suite's time
    for many connectors within bounds. The other tests of the suite run every case on both.
    """
    params = [pytest.param("sqlite", *case, id=f"sqlite-{name}") for case, name in zip(cases, ids)]
    params += [pytest.param("postgresql", *case, id=f"postgresql-{name}", marks=pytest.mark.postgres)
               for case, name in zip(cases, ids) if name == on_postgresql]
    assert len(params) == len(cases) + 1, f"{on_postgresql!r} is not one of {ids}"
    return pytest.mark.parametrize(f"db_url, {argnames}", params, indirect=["db_url"])


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
        return config_for(tmp_path, db_url, channels)

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

    def two_channel_runner(self, db: Engine, db_url: str, tmp_path: Path, emulators: dict[str, Emulator | None],
                           tables: dict[str, dict[str, Any]] | None = None) -> Runner:
        """A Runner over several channels of this connector; a channel whose emulator is None goes out on the
        real network (loopback only) with its table from `tables`."""
        tables = tables or {}
        channels = {name: tables.get(name) or self.channel_table() for name in emulators}
        config = self.make_config(tmp_path, db_url, channels)
        transports = {name: emulator.transport() for name, emulator in emulators.items() if emulator is not None}
        runner = Runner(config, transports=transports, db=db)
        runner.open()
        return runner

    @staticmethod
    def stored(db: Engine, channel: str) -> dict[str, tuple[Any, ...]]:
        """external id -> what a merchant sees of it (status, lines, quantity, order) for one channel."""
        with db.connect() as conn:
            rows = conn.execute(text(
                "SELECT external_id, status, channel_status, line_count, quantity, order_external_id "
                "FROM v_returns WHERE channel = :channel"), {"channel": channel}).all()
        return {row[0]: tuple(row[1:]) for row in rows}

    @staticmethod
    def stored_orders(db: Engine, channel: str) -> set[str]:
        with db.connect() as conn:
            return set(conn.execute(text(
                "SELECT o.external_id FROM orders o JOIN channels c ON c.id = o.channel_id WHERE c.name = :channel"),
                {"channel": channel}).scalars())

    @staticmethod
    def cursors(db: Engine, channel: str) -> dict[str, Any]:
        with db.connect() as conn:
            return dict(conn.execute(text(
                "SELECT s.stream, s.cursor FROM sync_cursors s JOIN channels c ON c.id = s.channel_id "
                "WHERE c.name = :channel"), {"channel": channel}).all())

    @staticmethod
    def health(db: Engine, channel: str) -> Any:
        with db.connect() as conn:
            return conn.execute(text(
                "SELECT last_error, consecutive_failures FROM channels WHERE name = :channel"),
                {"channel": channel}).one()

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

    @fault_matrix("fault, options", [
        ("status", {"status": 503, "times": 3}),
        ("status", {"status": 502, "times": 2}),
        ("status", {"status": 500, "times": 3}),
        ("status", {"status": 429, "times": 2, "retry_after": "0"}),
        ("status", {"status": 429, "times": 1}),
        ("drop", {"times": 2}),
        ("timeout", {"times": 2}),
        ("truncated", {"times": 1}),
        ("expire_tokens", {"times": 1}),
        ("expire_tokens", {"times": 1, "after": 3}),
        ("slow", {"times": 1, "delay": 0.05}),
    ], ids=["503x3", "502x2", "500x3", "429-retry-after", "429-bare", "refused", "read-timeout", "truncated",
            "token-expired", "token-expired-mid-sync", "slow"], on_postgresql="500x3")
    def test_recovers_from_transient_faults(self, runner: Runner, db: Engine, emulator: Emulator,
                                            fault: str, options: dict[str, Any]) -> None:
        emulator.inject(fault, **options)
        outcome = runner.pull("main")
        assert outcome.ok, outcome.error
        assert self.count(db, Return) > 0

    @fault_matrix("fault", [("malformed",), ("invalid_json",), ("wrong_shape",)],
                  ids=["malformed", "invalid_json", "wrong_shape"], on_postgresql="malformed")
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

    @fault_matrix("fault, options", [
        ("status", {"status": 500}),
        ("status", {"status": 429, "retry_after": "0"}),
        ("timeout", {}),
        ("drop", {}),
        ("truncated", {}),
        ("malformed", {}),
        ("invalid_json", {}),
        ("wrong_shape", {}),
    ], ids=["500", "429", "read-timeout", "refused", "truncated", "malformed", "invalid-json", "wrong-shape"],
        on_postgresql="truncated")
    def test_a_fault_mid_backfill_fails_only_its_channel_and_the_next_run_catches_up(
            self, db: Engine, db_url: str, tmp_path: Path, fault: str, options: dict[str, Any]) -> None:
        """Halfway through the history the channel breaks for good: whatever pages were stored are whole, the
        cursor stops at the last of them, the other channel syncs on, and once the channel heals it ends with
        exactly what a run that never broke stored (an identical sandbox pulled by a second channel)."""
        broken, healthy = self.connector.sandbox(seed=self.seed), self.connector.sandbox(seed=self.seed)
        assert broken is not None and healthy is not None
        runner = self.two_channel_runner(db, db_url, tmp_path, {"broken": broken, "healthy": healthy})
        try:
            assert runner.pull("healthy").ok
            halfway = max(1, len(healthy.requests) // 2)
            broken.inject(fault, times=None, after=halfway, **options)
            outcomes = {o.channel: o for o in runner.sync_once()[0]}
            assert outcomes["healthy"].ok, "other channels are not affected"
            if not outcomes["broken"].ok:
                error = outcomes["broken"].error or ""
                assert error and "Traceback" not in error
                assert self.health(db, "broken").consecutive_failures == 1
            whole = self.stored(db, "healthy")
            partial = self.stored(db, "broken")
            assert all(row[2] > 0 for row in partial.values()), "no return stored without its lines"
            assert set(partial) <= set(whole)
            broken.clear_faults()
            healed = runner.pull("broken")
            assert healed.ok, healed.error
        finally:
            runner.close()
        assert self.stored(db, "broken") == self.stored(db, "healthy"), "the cursor never passed unstored data"
        assert self.stored_orders(db, "broken") == self.stored_orders(db, "healthy")
        assert self.health(db, "broken").consecutive_failures == 0

    def test_a_failed_incremental_run_leaves_the_cursor_where_it_was(self, runner: Runner, db: Engine,
                                                                     emulator: Emulator) -> None:
        assert runner.pull("main").ok
        before = self.cursors(db, "main")
        assert before, "a finished backfill leaves a cursor"
        new = emulator.add_odd_return()
        emulator.inject("invalid_json", times=None)
        failed = runner.pull("main")
        assert not failed.ok and failed.error
        assert self.cursors(db, "main") == before
        assert new not in self.stored(db, "main")
        emulator.clear_faults()
        assert runner.pull("main").ok
        assert new in self.stored(db, "main"), "the next run picks up from the unmoved cursor"

    def test_unknown_values_and_missing_optional_fields_are_stored_not_crashed_on(
            self, runner: Runner, db: Engine, emulator: Emulator) -> None:
        assert runner.pull("main").ok
        odd = emulator.add_odd_return()
        outcome = runner.pull("main")
        assert outcome.ok, outcome.error
        assert outcome.returns_new == 1
        row = self.stored(db, "main")[odd]
        assert row[0] in {s.value for s in ReturnStatus}, f"{row[0]!r} is not a status of the unified model"
        assert self.health(db, "main").last_error is None
        again = runner.pull("main")
        assert again.ok and again.returns_new == 0 and self.stored(db, "main")[odd] == row

    def test_connection_refused_is_reported_and_other_channels_carry_on(
            self, db: Engine, db_url: str, tmp_path: Path) -> None:
        with socket.socket() as probe:  # a loopback port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        healthy = self.connector.sandbox(seed=self.seed)
        tables = {"unreachable": {**self.connector.sandbox_channel(closed), **FAST}}
        runner = self.two_channel_runner(db, db_url, tmp_path, {"unreachable": None, "healthy": healthy}, tables)
        try:
            outcomes = {o.channel: o for o in runner.sync_once()[0]}
        finally:
            runner.close()
        assert outcomes["healthy"].ok and outcomes["healthy"].returns_new > 0
        error = outcomes["unreachable"].error or ""
        assert not outcomes["unreachable"].ok and "Traceback" not in error
        assert "refused" in error.lower() or "connect" in error.lower(), error
        assert self.health(db, "unreachable").last_error == error
        assert not self.stored(db, "unreachable") and not self.cursors(db, "unreachable")

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
            acts = conn.execute(text("SELECT COUNT(DISTINCT act_key) FROM decisions WHERE origin = 'merchant'")
                                ).scalar_one()
        assert states and set(states) == {DecisionState.PUSHED.value}, states
        after = len(_mutating(emulator))
        runner.push()
        assert len(_mutating(emulator)) == after, "nothing is sent again once pushed"
        assert acts == len(supported) and len(sent) >= acts, "each decision recorded is one act at the channel"

    def decided_return(self, db: Engine) -> str:
        """An open return to decide on, one with several lines where the sandbox holds one."""
        with db.connect() as conn:
            found = conn.execute(text(
                "SELECT channel || '/' || external_id FROM v_returns WHERE handled_by_channel = :no "
                "AND decision IS NULL AND status IN ('requested', 'in_transit', 'received') "
                "ORDER BY line_count DESC, return_id LIMIT 1"), {"no": False}).scalar()
        assert found, "the sandbox must hold an open return to decide on"
        return str(found)

    def act_kind(self) -> DecisionKind:
        """The decision the act tests record: accept where the channel takes it (a refund), else the first."""
        supported = [k for k in DecisionKind if self.connector.capabilities.supports(k)]
        return DecisionKind.ACCEPT if DecisionKind.ACCEPT in supported else supported[0]

    @staticmethod
    def make_due(db: Engine) -> None:
        """As if the outbox's backoff had passed: every decision waiting for a retry is due now."""
        with db.begin() as conn:
            conn.execute(text("UPDATE decisions SET next_attempt_at = NULL WHERE state IN ('pending', 'sending')"))

    def test_a_whole_return_decision_reaches_the_channel_as_one_act(self, runner: Runner, db: Engine) -> None:
        assert runner.pull("main").ok
        ref = self.decided_return(db)
        recorded = record_decision(db, ref, self.act_kind(), note="decided in the contract suite",
                                   connector_for=registry.get)
        first = runner.push()
        assert first.acts == 1, "every line of the return goes to the channel in one request"
        for _ in range(3):  # let channels that confirm asynchronously confirm
            self.make_due(db)
            runner.push()
        with db.connect() as conn:
            rows = conn.execute(select(Decision.state, Decision.act_key)
                                .where(Decision.id.in_(recorded.decision_ids))).all()
        assert {row.state for row in rows} == {DecisionState.PUSHED.value}, rows
        assert len({row.act_key for row in rows}) == 1

    def test_an_act_whose_answer_was_lost_is_not_done_twice(self, runner: Runner, db: Engine,
                                                             emulator: Emulator) -> None:
        """The channel carries the act out but its answer never arrives; the retries find it instead of
        doing it again (the key is the same on every attempt)."""
        assert runner.pull("main").ok
        recorded = record_decision(db, self.decided_return(db), self.act_kind(), note="decided in the contract "
                                   "suite", connector_for=registry.get)
        emulator.inject("lost", times=1)
        runner.push()
        for _ in range(4):
            self.make_due(db)
            runner.push()
        with db.connect() as conn:
            states = set(conn.execute(select(Decision.state).where(Decision.id.in_(recorded.decision_ids)))
                         .scalars())
        assert states == {DecisionState.PUSHED.value}, states
        applied = emulator.acts_applied()
        assert applied, "the act had an effect on the channel"
        assert len(applied) == len(set(applied)), f"done twice: {applied}"

    def test_no_secret_reaches_the_database(self, runner: Runner, db: Engine) -> None:
        """Credentials from the config and tokens from the channel never end up in any table."""
        assert runner.pull("main").ok
        refs = self.open_returns(db, limit=1)
        supported = [k for k in DecisionKind if self.connector.capabilities.supports(k)]
        record_decision(db, refs[0], supported[0], note="contract", connector_for=registry.get)
        runner.push()
        secrets = [value for value in known_secrets() if len(value) >= 6]
        assert secrets, "the sandbox credentials and tokens were resolved through retsync.kit.secrets"
        with db.connect() as conn:  # every table the database has, whichever package declares it
            for name in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                    dumped = repr(tuple(row))
                    leaked = [value[:4] + "…" for value in secrets if value in dumped]
                    assert not leaked, f"secret {leaked} stored in table {name}"

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
