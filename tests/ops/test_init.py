"""`retsync init`: the admin's first files, from the templates the installed package carries."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from retsync.app.cli import main
from retsync.ops.init import config_for_systemd, template
from tests.test_service_unit import parse_unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_templates_are_what_the_repository_links_to() -> None:
    assert template("config.example.toml") == (ROOT / "config.example.toml").read_text(encoding="utf-8")
    assert template("retsync.service") == (ROOT / "retsync.service").read_text(encoding="utf-8")


def test_init_writes_the_commented_config_and_the_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc, units = tmp_path / "etc" / "retsync", tmp_path / "units"
    assert main(["init", "--dir", str(etc), "--systemd", "--unit-dir", str(units)]) == 0
    config, unit = etc / "config.toml", units / "retsync.service"
    assert config.read_text(encoding="utf-8") == config_for_systemd(template("config.example.toml"))[0]
    assert stat.S_IMODE(config.stat().st_mode) == 0o644, "the service's dynamic user must be able to read it"
    assert stat.S_IMODE((etc / "credentials").stat().st_mode) == 0o700
    service = parse_unit(unit)["Service"]
    assert f"RETSYNC_CONFIG={config}" in service["Environment"], "the unit reads the config init wrote"
    assert all(source.split(":", 1)[1].startswith(f"{etc}/credentials/") for source in service["LoadCredential"])
    out = capsys.readouterr().out
    assert str(config) in out and str(unit) in out and "config check" in out


def test_init_without_systemd_writes_only_the_config(tmp_path: Path) -> None:
    assert main(["init", "--dir", str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "units")]) == 0
    assert (tmp_path / "etc" / "config.toml").read_text(encoding="utf-8") == template("config.example.toml")
    assert not (tmp_path / "units").exists() and not (tmp_path / "etc" / "credentials").exists()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc, units = tmp_path / "etc", tmp_path / "units"
    units.mkdir()
    (units / "retsync.service").write_text("# the admin's own unit\n")
    assert main(["init", "--dir", str(etc), "--systemd", "--unit-dir", str(units)]) == 1
    err = capsys.readouterr().err
    assert f"{units / 'retsync.service'} already exists" in err and "nothing was written" in err
    assert not (etc / "config.toml").exists(), "a refused init writes no file at all"
    assert (units / "retsync.service").read_text() == "# the admin's own unit\n"

    etc.mkdir()
    (etc / "config.toml").write_text("# edited\n")
    assert main(["init", "--dir", str(etc)]) == 1
    assert (etc / "config.toml").read_text() == "# edited\n"


def test_init_names_a_folder_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["init", "--dir", str(blocked / "etc")]) == 1
    assert f"cannot write {blocked / 'etc'}" in capsys.readouterr().err


def test_init_for_systemd_reads_every_secret_from_a_credential_the_unit_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import subprocess

    from retsync import registry
    from retsync.config import load_config
    from tests.test_service_unit import _systemd_analyze

    etc, units = tmp_path / "etc", tmp_path / "units"
    assert main(["init", "--dir", str(etc), "--systemd", "--unit-dir", str(units)]) == 0
    active = [line for line in (etc / "config.toml").read_text().splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in active if '"env:' in line], "the unit sets no environment for secrets"
    read = {m.group(1) for line in active for m in re.finditer(r'"file:\$\{CREDENTIALS_DIRECTORY\}/([\w.-]+)"', line)}
    loaded = {entry.split(":", 1)[0] for entry in parse_unit(units / "retsync.service")["Service"]["LoadCredential"]}
    assert read and read == loaded
    credentials = tmp_path / "run-credentials"  # what systemd makes of LoadCredential= inside the service
    credentials.mkdir()
    for name in read:
        (credentials / name).write_text("s" * 32)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = load_config(etc / "config.toml", registry.settings_model_for, registry.names, registry.holds_returns)
    assert config.channels["shop"].consumer_key.get_secret_value() == "s" * 32
    rated = subprocess.run([_systemd_analyze(), "security", "--offline=true", "--threshold=20", "--no-pager",
                            str(units / "retsync.service")], capture_output=True, text=True, timeout=120)
    assert rated.returncode == 0, rated.stdout[-2000:] + rated.stderr[-2000:]


def test_init_systemd_refuses_a_retsync_the_unit_cannot_see(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from retsync.ops import init

    monkeypatch.setattr(init, "installed_executable", lambda: "/home/admin/.local/bin/retsync")
    assert main(["init", "--dir", str(tmp_path / "etc"), "--systemd", "--unit-dir", str(tmp_path / "units")]) == 1
    err = capsys.readouterr().err
    assert "installed under /home (/home/admin/.local/bin/retsync)" in err and "ProtectHome=yes" in err
    assert not (tmp_path / "etc").exists() and not (tmp_path / "units").exists()
