"""A long pull says how it is going: a log line per channel at most every 30 s, and on a terminal a live counter;
a short one, or one off a terminal, says nothing more than before."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from structlog.testing import capture_logs

from retsync.app.cli import main
from retsync.kit.contract import Stream
from retsync.store.db import make_engine
from retsync.sync.progress import PullProgress, TerminalCounters, terminal_counters
from tests.fakes import ScriptedConnector
from tests.test_engine import _engine


class Clock:
    """Each page of the pull takes 11 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Engine]:
    """A migrated SQLite database: the progress line depends on no database."""
    path = tmp_path / "retsync.db"
    shutil.copy(migrated_sqlite, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def test_a_long_pull_logs_its_progress_at_most_every_30_seconds(store: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(100)  # ten pages of ten
    clock = Clock()
    progress = PullProgress(clock=clock)
    seen: list[int] = []
    progress.listeners.append(lambda done: (seen.append(done.returns), setattr(clock, "now", clock.now + 11)))
    with capture_logs() as logs:
        _engine(store, tmp_path, progress=progress).sync_stream(Stream.RETURNS)
    lines = [e for e in logs if e["event"] == "pull_progress"]
    assert seen == list(range(10, 101, 10)), "every page reaches the listeners"
    # pages end at 0, 11, 22, 33 ... s: a line once 30 s have passed since the last one
    assert [(e["pages"], e["returns_so_far"], e["elapsed_s"]) for e in lines] == [(4, 40, 33.0), (7, 70, 66.0),
                                                                                   (10, 100, 99.0)]
    assert all(e["channel"] == "shop" and e["stream"] == "returns" for e in lines)


def test_a_short_pull_logs_no_progress(store: Engine, tmp_path: Path) -> None:
    ScriptedConnector.reset(100)
    with capture_logs() as logs:
        _engine(store, tmp_path, progress=PullProgress(clock=lambda: 5.0)).sync_stream(Stream.RETURNS)
    assert not [e for e in logs if e["event"] == "pull_progress"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_each_channel_gets_a_live_counter() -> None:
    screen = Terminal()
    counters = terminal_counters(screen)
    assert isinstance(counters, TerminalCounters)
    progress = PullProgress(clock=lambda: 0.0, listeners=[counters])
    for page in range(1, 4):
        progress.page("bol", Stream.RETURNS, page, page * 50, 0)
    counters.close()
    shown = screen.getvalue()
    assert "bol returns" in shown and "150 returns" in shown and "3 pages" in shown


def test_off_a_terminal_sync_prints_only_its_summary(tmp_path: Path, extra_connectors: dict,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert terminal_counters(io.StringIO()) is None
    extra_connectors["scripted"] = ScriptedConnector
    ScriptedConnector.reset(30)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "r.db"}"\n[daemon]\nstate_dir = "{tmp_path}"\n'
                      '[channels.shop]\nconnector = "scripted"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "sync"]) == 0
    out, err = capsys.readouterr()
    assert out == "shop: ok (30 new, 0 updated returns)\n"
    assert "\r" not in err and all(json.loads(line) for line in err.splitlines()), "log lines only, no counter"
