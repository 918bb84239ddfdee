"""Multi-channel histories for reconciliation tests: real sandbox emulators behind one Runner, a clock to move."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.emulator import Emulator
from retsync.testing.config import config_for

SANDBOX_URL = "http://sandbox.invalid"
FAST = {"max_retries": 2, "max_backoff": "0.01s", "timeout": "5s"}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Fleet:
    """Channels of one merchant, each a sandbox emulator; `runner()` opens them with the current tables."""

    db: Engine
    db_url: str
    state_dir: Path
    clock: Clock = field(default_factory=Clock)
    emulators: dict[str, Emulator] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    _runner: Runner | None = None

    def add(self, name: str, connector: str, emulator: Emulator | None = None, **table: Any) -> Emulator:
        cls = registry.get(connector)
        assert cls is not None, f"the {connector} connector must be installed"
        emulator = emulator or cls.sandbox(seed=3)
        assert emulator is not None
        self.emulators[name] = emulator
        self.tables[name] = {**cls.sandbox_channel(SANDBOX_URL), **FAST, **table}
        return emulator

    def configure(self, name: str, **table: Any) -> None:
        """Change a channel's keys; the next `sync()` runs with them."""
        self.tables[name] = {**self.tables[name], **table}
        self.close()

    def runner(self) -> Runner:
        if self._runner is None:
            config = config_for(self.state_dir, self.db_url, self.tables)
            self._runner = Runner(config, transports={n: e.transport() for n, e in self.emulators.items()},
                                  db=self.db, clock=self.clock)
            self._runner.open()
        return self._runner

    def sync(self) -> None:
        outcomes, _ = self.runner().sync_once()
        failed = [o for o in outcomes if not o.ok]
        assert not failed, f"a channel failed: {failed}"

    def close(self) -> None:
        if self._runner is not None:
            for connector in self._runner.connectors.values():
                connector.close()
            self._runner = None

    def return_id(self, channel: str, external_id: str) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(text(
                "SELECT r.id FROM returns r JOIN channels c ON c.id = r.channel_id "
                "WHERE c.name = :c AND r.external_id = :e"), {"c": channel, "e": external_id}).scalar_one())

    def open_flags(self, code: str | None = None) -> set[tuple[str, str, str]]:
        """(channel/external id, code, line external id or '') of every open flag, as v_return_flags shows it."""
        where = "AND code = :code" if code else ""
        with self.db.connect() as conn:
            return {(f"{row.channel}/{row.external_id}", row.code, row.external_line_id or "")
                    for row in conn.execute(text(
                        f"SELECT channel, external_id, code, external_line_id FROM v_return_flags "
                        f"WHERE resolved_at IS NULL {where}"), {"code": code})}

    def flagged(self, code: str) -> set[str]:
        return {ref for ref, _, _ in self.open_flags(code)}


@pytest.fixture
def fleet(db: Engine, db_url: str, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(db, db_url, tmp_path)
    yield fleet
    fleet.close()
