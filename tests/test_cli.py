"""The command line as an admin uses it: exit codes, messages, and what the tables show."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Engine, text
from structlog.testing import capture_logs

from retsync.app.cli import main
from retsync.app.queries import V_RETURNS_COLUMNS
from retsync.kit.contract import Page, PullContext, Stream
from retsync.store.db import make_engine
from tests.fakes import Boom, ScriptedConnector


class BrokenConnector(ScriptedConnector):
    name: ClassVar[str] = "broken"
    broken: ClassVar[bool] = True

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        if type(self).broken:
            raise Boom("HTTP 500 storm at the channel")
        yield Page(returns=[], cursor={"offset": 0})


@pytest.fixture
def config_file(tmp_path: Path, db: Engine, db_url: str, extra_connectors: dict) -> Path:
    extra_connectors.update(scripted=ScriptedConnector, broken=BrokenConnector)
    ScriptedConnector.reset(12)
    BrokenConnector.broken = True
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[daemon]
state_dir = "{tmp_path}"
[channels.shop]
connector = "scripted"
[channels.market]
connector = "broken"
""")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_sync_exits_1_when_a_channel_fails_and_the_others_still_sync(config_file: Path, db: Engine,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--config", str(config_file), "sync")
    assert code == 1
    assert "shop: ok (12 new, 0 updated returns)" in out
    assert "market: FAILED: Boom: HTTP 500 storm at the channel" in err
    code, out, _ = _run(capsys, "--config", str(config_file), "sync", "--channel", "shop")
    assert code == 0 and "shop: ok (0 new, 0 updated returns)" in out


def test_a_failing_channel_is_logged_once_and_its_recovery_once(config_file: Path, tmp_path: Path) -> None:
    from retsync import registry
    from retsync.app.daemon import Runner
    from retsync.config import load_config

    config = load_config(config_file, registry.settings_model_for, registry.names, registry.holds_returns)
    runner = Runner(config)
    runner.open()
    with capture_logs() as logs:
        for _ in range(3):
            assert not runner.pull("market").ok
        BrokenConnector.broken = False
        assert runner.pull("market").ok
        assert runner.pull("market").ok
    runner.close()
    events = [entry["event"] for entry in logs if entry["log_level"] in ("error", "info") and
              entry["event"] in ("channel_failed", "channel_recovered")]
    assert events == ["channel_failed", "channel_recovered"]
    recovered = next(e for e in logs if e["event"] == "channel_recovered")
    assert recovered["after_failures"] == 3 and recovered["channel"] == "market"


def test_channels_shows_last_error_and_cursor(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "--config", str(config_file), "sync")
    code, out, _ = _run(capsys, "--config", str(config_file), "channels")
    assert code == 0
    assert "market (broken, enabled): 0 returns" in out and "(1 in a row): Boom: HTTP 500 storm" in out
    assert "resumes returns    offset 12" in out


def test_returns_list_formats(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "--config", str(config_file), "sync", "--channel", "shop")
    code, out, _ = _run(capsys, "--config", str(config_file), "returns", "list", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 12
    assert set(V_RETURNS_COLUMNS) <= set(rows[0])
    assert rows[0]["external_id"] == "R11" and rows[0]["created_at"].endswith("+00:00")
    _, out, _ = _run(capsys, "--config", str(config_file), "returns", "list", "--format", "csv",
                     "--since", "2026-11-01T08:10", "--status", "requested")
    assert [r["external_id"] for r in csv.DictReader(io.StringIO(out))] == ["R11", "R10"]
    _, out, _ = _run(capsys, "--config", str(config_file), "returns", "list", "--channel", "shop", "--limit", "3")
    assert "(3 of 12 returns)" in out and "R11" in out and "R8" not in out


def test_decide_and_show(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "--config", str(config_file), "sync", "--channel", "shop")
    code, out, _ = _run(capsys, "--config", str(config_file), "decide", "shop/R3", "accept")
    assert code == 0 and "recorded decision" in out
    code, _, err = _run(capsys, "--config", str(config_file), "decide", "shop/R3", "cancel")
    assert code == 1 and "still waiting to be pushed" in err
    code, out, _ = _run(capsys, "--config", str(config_file), "push", "--channel", "shop")
    assert code == 0 and "pushed 2" in out
    code, _, err = _run(capsys, "--config", str(config_file), "decide", "shop/R4", "cancel")
    assert code == 1 and "the scripted channel cannot cancel" in err
    code, out, _ = _run(capsys, "--config", str(config_file), "returns", "show", "shop/R3")
    assert code == 0
    assert "status      requested (channel: raw-requested)" in out
    assert "decision    accept (pushed)" in out
    assert "b***@e***.com" in out and "buyer3@example.com" not in out, "customer data is shown redacted"
    assert "O3-L0" in out and "channel:shop" in out and "push:shop" in out


def test_run_and_sync_refuse_an_outdated_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                extra_connectors: dict) -> None:
    extra_connectors["scripted"] = ScriptedConnector
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/new.db"\n[channels.a]\nconnector = "scripted"\n')
    code, _, err = _run(capsys, "--config", str(path), "sync")
    assert code == 1 and "no retsync schema yet: run `retsync db upgrade`" in err
    assert _run(capsys, "--config", str(path), "db", "upgrade")[0] == 0
    engine = make_engine(f"sqlite:///{tmp_path}/new.db")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    code, _, err = _run(capsys, "--config", str(path), "sync")
    assert code == 1 and "schema is at revision 0001" in err and "run `retsync db upgrade`" in err


def test_connectors_lists_capabilities(capsys: pytest.CaptureFixture[str], extra_connectors: dict) -> None:
    extra_connectors["scripted"] = ScriptedConnector
    code, out, _ = _run(capsys, "connectors")
    assert code == 0
    assert "scripted: Scripted test channel" in out
    assert "accept     scripted accept" in out
    assert "cancel     unsupported: the scripted channel cannot cancel" in out
    assert "repair     unsupported: this channel has no way to take a `repair` decision" in out
