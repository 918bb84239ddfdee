"""`retsync doctor` against the bundled sandboxes: one line per check, exit 1 on any failure, --format json."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from retsync import registry
from retsync.app.cli import main
from retsync.kit.model import utcnow
from retsync.ops.doctor import run_checks
from retsync.store.db import make_engine, upgrade
from tests.ops.conftest import config_file, dead_url


def _lines(out: str) -> dict[str, str]:
    """`check name -> the whole line`, from doctor's text output."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition("  ")
        name = rest.strip().split("  ")[0]
        found[name] = line
    return found


def test_doctor_checks_everything_and_names_the_host_that_fails(db: Engine, db_url: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    cls = registry.get("bol")
    assert cls is not None
    os.chmod(tmp_path, 0o700)
    with cls.sandbox(seed=2, returns=5).serve() as base_url:
        dead = dead_url()
        path = config_file(tmp_path, db_url, {
            "live": cls.sandbox_channel(base_url),
            "refused": {**cls.sandbox_channel(base_url), "client_secret": "not-the-secret"},
            "gone": {**cls.sandbox_channel(dead), "max_retries": 0},
            "off": {**cls.sandbox_channel(dead), "enabled": False},
        })
        code = main(["--config", str(path), "doctor"])
    out = capsys.readouterr().out
    lines = _lines(out)
    assert code == 1, out
    assert lines["config"].startswith("ok") and "3 of 4 channels enabled" in lines["config"]
    assert lines["database"].startswith("ok") and "is current" in lines["database"]
    assert lines["state directory"].startswith("ok") and "mode 0700" in lines["state directory"]
    assert lines["disk space"].startswith("ok") and "GiB free" in lines["disk space"]
    assert lines["keyring"].startswith("ok")
    assert lines["channel live"].startswith("ok") and "127.0.0.1: signed in" in lines["channel live"]
    assert lines["channel live clock"].startswith("ok") and "of 127.0.0.1" in lines["channel live clock"]
    assert lines["channel refused"].startswith("FAIL") and "127.0.0.1" in lines["channel refused"]
    assert "check client_id and client_secret" in lines["channel refused"]
    assert "not-the-secret" not in out
    host_port = dead.removeprefix("http://").split(":")[0]
    assert lines["channel gone"].startswith("FAIL") and f"{host_port}: " in lines["channel gone"]
    assert "Connection refused" in lines["channel gone"]
    assert lines["channel off"].startswith("ok") and "disabled" in lines["channel off"]
    assert [line.split()[0] for line in out.splitlines()].count("FAIL") == 2


def test_doctor_json_and_a_database_behind_and_a_clock_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cls = registry.get("bol")
    assert cls is not None
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0010")
    engine.dispose()
    with cls.sandbox(seed=2, returns=5).serve() as base_url:
        path = config_file(tmp_path, url, {"live": cls.sandbox_channel(base_url)})
        assert main(["--config", str(path), "doctor", "--format", "json"]) == 1
        report = json.loads(capsys.readouterr().out)
        checks = run_checks(str(path), clock=lambda: utcnow() + timedelta(minutes=5))
    assert report["ok"] is False
    database = next(c for c in report["checks"] if c["check"] == "database")
    assert database["status"] == "FAIL" and "schema at 0010" in database["detail"] and "retsync db upgrade" in \
        database["detail"]
    clock = next(c for c in checks if c.check == "channel live clock")
    assert clock.failed and re.search(r"clock is 30[01] s ahead of 127\.0\.0\.1", clock.detail), clock.detail


def test_doctor_reports_a_missing_database_without_creating_it(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = config_file(tmp_path, f"sqlite:///{tmp_path / 'state' / 'retsync.db'}", {})
    assert main(["--config", str(path), "doctor"]) == 1
    assert "does not exist yet: run `retsync db upgrade`" in _lines(capsys.readouterr().out)["database"]
    assert not (tmp_path / "state" / "retsync.db").exists()


def test_doctor_on_a_config_that_does_not_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[daemon]\npoll = 1\n")
    assert main(["--config", str(path), "doctor"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  config  ") and "[daemon] key `poll`: unknown key" in out


def test_a_state_directory_others_can_write_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chmod(tmp_path, 0o777)
    path = config_file(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {})
    assert main(["--config", str(path), "doctor"]) == 1
    line = _lines(capsys.readouterr().out)["state directory"]
    assert line.startswith("FAIL") and "writable by other users (mode 0777)" in line


def test_doctor_names_every_secret_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cls = registry.get("bol")
    assert cls is not None
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = config_file(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {"bol": {
        **cls.sandbox_channel(dead_url()), "client_id": "id",
        "client_secret": "file:${CREDENTIALS_DIRECTORY}/bol_client_secret"}})
    assert main(["--config", str(path), "doctor"]) == 1
    line = _lines(capsys.readouterr().out)["channel bol"]
    assert line.startswith("FAIL") and "[channels.bol] key `client_secret`: cannot read secret file" in line
    assert "`retsync as-service -- doctor`" in line
    assert "CREDENTIALS_DIRECTORY=/etc/retsync/credentials retsync doctor" in line
