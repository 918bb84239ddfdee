"""`retsync as-service`: a CLI command started by systemd with the service's user, files, credentials and
environment. systemd does not run in the test machine, so a stand-in `systemd-run` records what it was asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from retsync.app.as_service import PACKAGED_UNIT, systemd_run_command

RETSYNC = Path(sys.executable).with_name("retsync")


def test_the_command_carries_the_units_identity_state_credentials_and_environment() -> None:
    argv = systemd_run_command(PACKAGED_UNIT, ["decide", "bol/123", "accept"])
    assert argv[:6] == ["systemd-run", "--pty", "--wait", "--collect", "--quiet", "--service-type=exec"]
    properties = [a.removeprefix("--property=") for a in argv if a.startswith("--property=")]
    assert "DynamicUser=yes" in properties and "User=retsync" in properties, "the daemon's own dynamic user"
    assert "StateDirectory=retsync" in properties and "UMask=0077" in properties
    assert any(p.startswith("LoadCredential=") for p in properties), "the secrets the daemon reads"
    assert "Environment=RETSYNC_CONFIG=/etc/retsync/config.toml" in properties
    assert not any(p.startswith(("SystemCallFilter", "MemoryMax", "Restart")) for p in properties)
    assert argv[-4:] == ["/usr/local/bin/retsync", "decide", "bol/123", "accept"]


def test_it_runs_systemd_run_and_passes_on_its_exit_code(tmp_path: Path) -> None:
    record = tmp_path / "argv"
    fake = tmp_path / "bin" / "systemd-run"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit 3\n')
    fake.chmod(0o755)
    unit = tmp_path / "retsync.service"
    unit.write_text("[Service]\nDynamicUser=yes\nExecStart=/opt/retsync/.venv/bin/retsync run\n"
                    "LoadCredential=shop_key:/etc/retsync/credentials/shop_key\n")
    result = subprocess.run([str(RETSYNC), "as-service", "--unit", str(unit), "--", "returns", "list"],
                            env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    argv = record.read_text().splitlines()
    assert "--property=LoadCredential=shop_key:/etc/retsync/credentials/shop_key" in argv
    assert argv[-3:] == ["/opt/retsync/.venv/bin/retsync", "returns", "list"]


def test_a_unit_without_execstart_is_said_so(tmp_path: Path) -> None:
    unit = tmp_path / "retsync.service"
    unit.write_text("[Service]\nDynamicUser=yes\n")
    result = subprocess.run([str(RETSYNC), "as-service", "--unit", str(unit), "--print", "--", "channels"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "has no ExecStart=" in result.stderr
