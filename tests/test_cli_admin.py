"""What an admin types by mistake gets an answer, not a traceback, and the same exit code everywhere; what the
terminal shows reads as a person expects (amounts in major units, "8 of 93", plurals, durations as configured)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from retsync.app.cli import main
from retsync.store.db import make_engine
from tests.fakes import ScriptedConnector


@pytest.fixture
def config_file(tmp_path: Path, extra_connectors: dict) -> Path:
    extra_connectors.update(scripted=ScriptedConnector)
    ScriptedConnector.reset(12)
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'retsync.db'}"
[daemon]
state_dir = "{tmp_path}"
[channels.shop]
connector = "scripted"
poll_interval = "90s"
""")
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [["push", "--channel", "nope"], ["sync", "--channel", "nope"]])
def test_an_unknown_channel_to_push_or_sync_is_a_config_error_not_a_traceback(
        config_file: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, _, err = run(capsys, config_file, *command)
    assert code == 2 and "no channel nope (configured: shop)" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["returns", "list"], ["report"]])
def test_a_date_that_is_none_exits_2_in_every_command(config_file: Path, capsys: pytest.CaptureFixture[str],
                                                      command: list[str]) -> None:
    code, _, err = run(capsys, config_file, *command, "--since", "notadate")
    assert code == 2 and "notadate" in err


@pytest.mark.parametrize("command", [["returns", "list"], ["report"]])
def test_an_unknown_channel_to_list_or_report_exits_2_naming_the_known_ones(
        config_file: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    run(capsys, config_file, "sync")
    code, out, err = run(capsys, config_file, *command, "--channel", "nope")
    assert code == 2 and "no channel nope" in err and "known: shop" in err and out == ""


def test_a_postgresql_url_without_its_driver_is_said_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "postgresql://retsync@localhost/retsync"\n'
                    f'[daemon]\nstate_dir = "{tmp_path}"\n')
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on a server where the [postgres] extra is missing
    for command in (["config", "check"], ["db", "upgrade"], ["returns", "list"]):
        code, _, err = run(capsys, path, *command)
        assert code == 1, (command, err)
        assert "driver (psycopg) is not installed: pip install 'retsync[postgres]'" in err and "Traceback" not in err


def test_a_wrong_base_url_names_the_host_it_could_not_reach(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'retsync.db'}"
[daemon]
state_dir = "{tmp_path}"
[channels.shop]
connector = "woocommerce"
base_url = "http://127.0.0.1:9"
consumer_key = "ck_test"
consumer_secret = "cs_test"
max_retries = 0
""")
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    code, _, err = run(capsys, path, "sync")
    assert code == 1 and "cannot connect to 127.0.0.1:9" in err


def test_the_list_says_how_many_of_how_many_and_counts_in_words(config_file: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, config_file, "sync")
    _, out, _ = run(capsys, config_file, "returns", "list", "--limit", "8")
    assert out.rstrip().endswith("(8 of 12 returns)")
    _, out, _ = run(capsys, config_file, "returns", "list", "--limit", "20")
    assert out.rstrip().endswith("(12 returns)")
    _, out, _ = run(capsys, config_file, "returns", "list", "--limit", "1", "--status", "requested",
                    "--since", "2026-11-01T08:11")
    assert out.rstrip().endswith("(1 return)")


def test_show_gives_amounts_in_major_units_and_counts_in_words(config_file: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, config_file, "sync")
    engine = make_engine(f"sqlite:///{config_file.parent / 'retsync.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE order_lines SET unit_price = 6995, currency = 'EUR'"))
        group = conn.execute(text("INSERT INTO customer_groups (created_at, updated_at) VALUES (CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id")
                             ).scalar_one()
        conn.execute(text("UPDATE returns SET customer_group_id = :g, customer_match = 'email' "
                          "WHERE external_id = 'R3'"), {"g": group})
    engine.dispose()
    _, out, _ = run(capsys, config_file, "returns", "show", "shop/R3")
    assert "69.95 EUR" in out and "6995" not in out
    assert "1 return, 0 orders on 1 channel" in out


def test_channels_say_where_each_stream_resumes_in_words(config_file: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, config_file, "sync")
    _, out, _ = run(capsys, config_file, "channels")
    assert "shop (scripted, enabled): 12 returns" in out
    assert "resumes returns    offset 12" in out and "{" not in out


def test_channels_say_a_first_pull_is_still_backfilling(config_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, config_file, "sync")
    engine = make_engine(f"sqlite:///{config_file.parent / 'retsync.db'}")
    with engine.begin() as conn:  # as while the first pull is still walking its pages
        conn.execute(text("UPDATE channels SET last_success_at = NULL"))
    engine.dispose()
    _, out, _ = run(capsys, config_file, "channels")
    assert "backfilling        12 returns so far" in out


def test_config_check_shows_durations_as_a_config_file_writes_them(config_file: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, config_file, "config", "check")
    shown = json.loads(out)
    assert code == 0 and shown["channels"]["shop"]["poll_interval"] == "90s"
    assert shown["daemon"]["push_interval"] == "1m" and "PT" not in out


@pytest.fixture
def service_config(tmp_path: Path) -> Path:
    """A config as the systemd unit reads it: the shop's secrets are credentials only the service can see."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'retsync.db'}"
[daemon]
state_dir = "{tmp_path}"
[channels.shop]
connector = "woocommerce"
base_url = "https://shop.example.com"
consumer_key = "file:{tmp_path / 'credentials' / 'shop-key'}"
consumer_secret = "file:{tmp_path / 'credentials' / 'shop-secret'}"
""")
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    return path


@pytest.mark.parametrize("command", [["returns", "list"], ["report"], ["channels"], ["connectors"],
                                     ["config", "check"]])
def test_commands_that_talk_to_no_channel_need_none_of_its_secrets(
        service_config: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, _, err = run(capsys, service_config, *command)
    assert code == 0, err
    if command == ["config", "check"]:
        assert "not readable from here (sync, push and run need it)" in err and "`consumer_key`" in err


@pytest.mark.parametrize("command", [["sync"], ["push"]])
def test_commands_that_talk_to_the_channel_stop_first_naming_each_secret_they_cannot_read(
        service_config: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, _, err = run(capsys, service_config, *command)
    assert code == 2 and "[channels.shop] key `consumer_key`: cannot read secret file" in err
    assert "[channels.shop] key `consumer_secret`" in err and "Traceback" not in err


def test_a_reference_on_a_key_that_is_not_secret_is_a_config_error(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{tmp_path}"
[channels.shop]
connector = "woocommerce"
base_url = "env:SHOP_URL"
consumer_key = "ck"
consumer_secret = "cs"
""")
    code, _, err = run(capsys, path, "config", "check")
    assert code == 2 and "[channels.shop] key `base_url`: 'env:SHOP_URL' looks like a secret reference" in err
    assert "consumer_key, consumer_secret" in err


def test_run_stops_first_naming_a_carrier_secret_it_cannot_read(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The daemon follows parcels too: a tracking token it cannot read stops `run` at once, as a channel's does,
    not every tracking pass later."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'retsync.db'}"
[daemon]
state_dir = "{tmp_path}"
[carriers.inpost]
api_token = "file:{tmp_path / 'credentials' / 'inpost_token'}"
organization_id = 1234
""")
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    code, _, err = run(capsys, path, "run")
    assert code == 2 and "[carriers.inpost] key `api_token`: cannot read secret file" in err
    code, _, err = run(capsys, path, "config", "check")
    assert code == 0 and "[carriers.inpost] key `api_token`" in err
