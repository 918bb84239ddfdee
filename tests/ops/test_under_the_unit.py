"""`retsync init --systemd`, then the unit's commands run as systemd would run them (as far as that goes without
systemd as PID 1 here): its environment, its umask, the state and credentials directories systemd would make, a
notify socket and a watchdog; `ExecStartPre=` then `ExecStart=`, READY=1, the pull, SIGTERM within the stop
timeout."""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from retsync import registry
from retsync.app.cli import main
from retsync.store.db import make_engine
from tests.ops.conftest import FakeSystemd, wait_for
from tests.test_service_unit import parse_unit


def test_the_daemon_runs_as_the_unit_runs_it(tmp_path: Path, fake_systemd: FakeSystemd) -> None:
    etc, units, state, credentials = (tmp_path / "etc", tmp_path / "units", tmp_path / "state",
                                      tmp_path / "run-credentials")
    assert main(["init", "--dir", str(etc), "--systemd", "--unit-dir", str(units)]) == 0
    service = parse_unit(units / "retsync.service")["Service"]
    cls = registry.get("bol")
    assert cls is not None
    emulator = cls.sandbox(seed=6, returns=30)
    with emulator.serve() as base_url:
        sandbox = cls.sandbox_channel(base_url)
        config = etc / "config.toml"
        head = config.read_text().split("\n[channels.", 1)[0]  # the admin keeps one channel: bol, at the sandbox
        config.write_text(head + f'\n[channels.bol]\nconnector = "bol"\nbase_url = "{base_url}"\ntoken_url = '
                          f'"{sandbox["token_url"]}"\nclient_id = "{sandbox["client_id"]}"\nclient_secret = '
                          f'"file:${{CREDENTIALS_DIRECTORY}}/bol_client_secret"\nbackfill_days = 3650\n')
        credentials.mkdir(mode=0o700)
        (credentials / "bol_client_secret").write_text(sandbox["client_secret"])
        state.mkdir(mode=0o700)
        env = {"PATH": os.environ["PATH"], "STATE_DIRECTORY": str(state), "CREDENTIALS_DIRECTORY": str(credentials),
               "NOTIFY_SOCKET": str(fake_systemd.path), "WATCHDOG_USEC": "2000000"}
        env |= dict(value.split("=", 1) for line in service["Environment"] for value in shlex.split(line))
        env["RETSYNC_CONFIG"] = str(config)  # init pointed the unit at the config it wrote
        assert env["RETSYNC_CONFIG"] == [v for line in service["Environment"] for v in shlex.split(line)
                                         if v.startswith("RETSYNC_CONFIG=")][0].split("=", 1)[1]

        def command(line: str) -> list[str]:
            argv = shlex.split(line)
            return [sys.executable, "-m", "retsync", *argv[1:]]  # the unit's retsync is this interpreter's

        umask = int(service["UMask"][-1], 8)
        pre = subprocess.run(command(service["ExecStartPre"][0]), env=env, capture_output=True, text=True,
                             timeout=120, preexec_fn=lambda: os.umask(umask))
        assert pre.returncode == 0, pre.stderr[-2000:]
        daemon = subprocess.Popen(command(service["ExecStart"][0]), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.umask(umask))
        try:
            ready = wait_for(lambda: fake_systemd.first("READY"), "READY=1", timeout=60)
            assert ready["STATUS"].startswith("1 channel: ")
            engine = make_engine(f"sqlite:///{state / 'retsync.db'}")
            try:
                def stored() -> int:
                    with engine.connect() as conn:
                        return int(conn.execute(text("SELECT COUNT(*) FROM returns")).scalar_one())

                wait_for(lambda: stored() >= len(emulator.truth()["returns"]), "the backfill", timeout=60)
            finally:
                engine.dispose()
            wait_for(lambda: any(m.get("WATCHDOG") == "1" for m in fake_systemd.receive()), "a watchdog beat")
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=int(service["TimeoutStopSec"][-1]))
        finally:
            if daemon.poll() is None:
                daemon.kill()
        _out, err = daemon.communicate()
    assert code == 0, err[-2000:]
    assert fake_systemd.receive()[-1].get("STOPPING") == "1"
    assert stat.S_IMODE((state / "retsync.db").stat().st_mode) == 0o600
    assert sandbox["client_secret"] not in err
