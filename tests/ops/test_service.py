"""`retsync run` as a systemd service: READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 on a fake NOTIFY_SOCKET, and the
/metrics, /healthz and /readyz endpoint over real loopback HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner, run_forever
from retsync.config import ConfigError, load_config
from retsync.ops.sdnotify import SystemdNotifier
from retsync.ops.service import ServiceHooks
from tests.ops.conftest import FakeSystemd, config_file, dead_url, free_port, get, wait_for


def _load(path: Path):
    return load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)


def _metric(body: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$" if labels else
                      rf"^{re.escape(name)} (\S+)$", body, flags=re.M)
    return float(match.group(1)) if match else None


def test_notify_speaks_the_sd_notify_protocol(fake_systemd: FakeSystemd) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(fake_systemd.path), "WATCHDOG_USEC": "4000000"}, pid=1)
    assert notifier.watchdog_seconds == 4.0
    assert notifier.ready("2 channels: 2 ok")
    assert notifier.watchdog("line one\nREADY=0")
    assert notifier.stopping()
    assert fake_systemd.receive() == [{"READY": "1", "STATUS": "2 channels: 2 ok"},
                                      {"WATCHDOG": "1", "STATUS": "line one READY=0"},
                                      {"STOPPING": "1", "STATUS": "stopping"}]


def test_outside_systemd_nothing_is_sent_and_a_childs_watchdog_is_not_its_own(tmp_path: Path) -> None:
    assert not SystemdNotifier({}).ready("x") and not SystemdNotifier({}).enabled
    assert SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, pid=2).watchdog_seconds is None
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "no-such.sock")})
    assert gone.enabled and not gone.ready("x"), "a socket that went away is said once, never raised"


def test_the_watchdog_is_not_petted_while_the_scheduler_does_not_run(fake_systemd: FakeSystemd, db: Engine,
                                                                      tmp_path: Path) -> None:
    runner = SimpleNamespace(config=SimpleNamespace(settings=SimpleNamespace(daemon=SimpleNamespace(
        metrics_listen=None, ready_failed_polls=3))), connectors={"shop": None}, db=db, stop=threading.Event())
    hooks = ServiceHooks(runner, SystemdNotifier({"NOTIFY_SOCKET": str(fake_systemd.path), "WATCHDOG_USEC": "1000000"}))
    hooks._scheduler = SimpleNamespace(running=False, get_job=lambda _id: object())
    hooks.beat()
    assert fake_systemd.receive() == [{"STATUS": "the scheduler is not running its jobs"}]
    hooks._scheduler = SimpleNamespace(running=True, get_job=lambda _id: object())
    hooks.beat()
    assert fake_systemd.receive()[1:] == [{"WATCHDOG": "1"}, {"STATUS": "0 channels: 0 ok"}]


def test_run_tells_systemd_and_serves_metrics_and_health(fake_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch,
                                                          db: Engine, db_url: str, tmp_path: Path) -> None:
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=3, returns=60)
    port = free_port()
    monkeypatch.setenv("NOTIFY_SOCKET", str(fake_systemd.path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2s: a beat every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    fast = {"poll_interval": "1h", "max_retries": 1, "max_backoff": "0.05s", "backfill_days": 3650}
    with emulator.serve() as base_url:
        emulator.inject("status", status=429, retry_after="0.05", times=1, path="/retailer/returns")
        config = _load(config_file(tmp_path, db_url, {
            "live": {**cls.sandbox_channel(base_url), **fast},
            "dead": {**cls.sandbox_channel(dead_url()), **fast},
        }, daemon=f'metrics_listen = "127.0.0.1:{port}"\nready_failed_polls = 1\njitter = 0'))
        runner = Runner(config)
        runner.open()

        def check() -> None:
            ready = wait_for(lambda: fake_systemd.first("READY"), "READY=1")
            assert ready["STATUS"].startswith("2 channels")
            metrics_url = f"http://127.0.0.1:{port}"
            assert get(f"{metrics_url}/healthz").status_code == 200

            def pulled() -> bool:
                with db.connect() as conn:
                    return dict(conn.execute(text("SELECT name, last_pull_finished_at IS NOT NULL FROM channels"))
                                .all()) == {"live": True, "dead": True}

            wait_for(pulled, "both channels' first pull")
            status = wait_for(lambda: [m for m in fake_systemd.receive() if "dead x1" in m.get("STATUS", "")],
                              "a status after the pulls")
            assert status[-1] == {"STATUS": "2 channels: 1 ok, 1 failing (dead x1)"}
            beats = len([m for m in fake_systemd.receive() if m.get("WATCHDOG") == "1"])
            wait_for(lambda: len([m for m in fake_systemd.receive() if m.get("WATCHDOG") == "1"]) > beats,
                     "the watchdog beating on")

            body = get(f"{metrics_url}/metrics").text
            with db.connect() as conn:
                stored = conn.execute(text("SELECT COUNT(*) FROM returns r JOIN channels c ON c.id = r.channel_id "
                                           "WHERE c.name = 'live'")).scalar_one()
            assert stored > 0 and _metric(body, "retsync_returns_stored", channel="live") == stored
            assert _metric(body, "retsync_pulls_total", channel="live") == 1
            assert _metric(body, "retsync_pull_failures_total", channel="dead") == 1
            assert _metric(body, "retsync_pull_failures_total", channel="live") == 0
            assert _metric(body, "retsync_http_requests_total", channel="live", status="200") >= 1
            assert _metric(body, "retsync_http_requests_total", channel="live", status="429") == 1
            assert _metric(body, "retsync_rate_limit_wait_seconds_total", channel="live") > 0
            assert _metric(body, "retsync_http_requests_total", channel="dead", status="none") >= 1
            assert _metric(body, "retsync_channel_consecutive_failures", channel="dead") == 1
            assert _metric(body, "retsync_channel_last_success_timestamp_seconds", channel="live") > 0
            assert _metric(body, "retsync_channel_last_success_timestamp_seconds", channel="dead") is None
            assert _metric(body, "retsync_oldest_pending_decision_age_seconds") == 0
            assert _metric(body, "retsync_quarantined_records", channel="live") == 0
            assert _metric(body, "retsync_database_up") == 1

            readyz = get(f"{metrics_url}/readyz")
            assert readyz.status_code == 503
            assert readyz.text.startswith("channel dead has failed 1 polls in a row: ")
            assert get(f"{metrics_url}/nothing").status_code == 404

        run_while(runner, check)
    assert fake_systemd.receive()[-1] == {"STOPPING": "1", "STATUS": "stopping: finishing the page being written"}
    with pytest.raises(httpx.ConnectError):
        get(f"http://127.0.0.1:{port}/healthz")


def test_readyz_is_ok_when_every_channel_pulls(monkeypatch: pytest.MonkeyPatch, db: Engine, db_url: str,
                                               tmp_path: Path) -> None:
    cls = registry.get("bol")
    assert cls is not None
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    port = free_port()
    with cls.sandbox(seed=4, returns=10).serve() as base_url:
        config = _load(config_file(tmp_path, db_url, {"live": {**cls.sandbox_channel(base_url), "poll_interval": "1h"}},
                                   daemon=f'metrics_listen = "localhost:{port}"\njitter = 0'))
        runner = Runner(config)
        runner.open()
        run_while(runner, lambda: wait_for(lambda: _ready(port), "/readyz to answer 200"))


def run_while(runner: Runner, check: Callable[[], object]) -> None:
    """Run the daemon on this (the main) thread, as `retsync run` does, while `check` runs beside it; stop after."""
    failed: list[BaseException] = []

    def beside() -> None:
        try:
            check()
        except BaseException as exc:  # re-raised on the test's thread
            failed.append(exc)
        finally:
            runner.stop.set()

    helper = threading.Thread(target=beside, daemon=True)
    helper.start()
    try:
        assert run_forever(runner, install_signals=False) == 0
    finally:
        runner.stop.set()
        helper.join(timeout=30)
        runner.close()
    if failed:
        raise failed[0]


def _ready(port: int) -> httpx.Response | None:
    try:
        response = get(f"http://127.0.0.1:{port}/readyz")
    except httpx.TransportError:
        return None
    return response if response.status_code == 200 else None


def test_metrics_listen_is_loopback_only(tmp_path: Path) -> None:
    path = config_file(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {}, daemon='metrics_listen = "0.0.0.0:9464"')
    with pytest.raises(ConfigError, match=r"\[daemon\] key `metrics_listen`: 0.0.0.0 is not this machine"):
        _load(path)
    path = config_file(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {}, daemon='metrics_listen = "9464"')
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        _load(path)


def test_a_metrics_address_in_use_stops_the_start_naming_the_key(migrated_sqlite: Path, tmp_path: Path) -> None:
    import socket

    from apscheduler.schedulers.background import BackgroundScheduler

    from retsync.store.db import make_engine

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = make_engine(f"sqlite:///{migrated_sqlite}")
        runner = SimpleNamespace(config=SimpleNamespace(path=tmp_path / "config.toml", settings=SimpleNamespace(
            daemon=SimpleNamespace(metrics_listen=f"127.0.0.1:{port}", ready_failed_polls=3, state_dir=tmp_path),
            privacy=SimpleNamespace(retain_personal_data=None))), connectors={}, db=db, stop=threading.Event(),
            clock=lambda: None, pull=lambda channel: None)
        try:
            expected = rf"\[daemon\] key `metrics_listen`: cannot listen on 127.0.0.1:{port}"
            with pytest.raises(ConfigError, match=expected):
                ServiceHooks(runner, SystemdNotifier({})).prepare(BackgroundScheduler(timezone="UTC"))
        finally:
            db.dispose()


def test_readyz_names_a_schema_behind_and_a_scheduler_that_stopped(tmp_path: Path) -> None:
    from retsync.ops.health import readiness_problems
    from retsync.store.db import head_revision, make_engine, upgrade

    db = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(db, "0010")
        problems = readiness_problems(db, head=head_revision(db), scheduler_running=lambda: False, channels=["shop"],
                                      threshold=3)
    finally:
        db.dispose()
    assert problems[0] == "the scheduler is not running"
    assert problems[1].startswith("the database schema is at 0010, this retsync needs ")
    assert problems[1].endswith("run `retsync db upgrade`") and len(problems) == 2
