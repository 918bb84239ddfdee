"""The config file: every mistake named by file, table and key, exit code 2; secrets resolved, never shown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import keyring
import pytest
from keyring.backend import KeyringBackend

from retsync.app.cli import main
from retsync.config import ConfigError, config_path, load_config
from retsync.kit.secrets import Secret
from retsync.kit.settings import ChannelSettings
from tests.fakes import ScriptedConnector


class SecretSettings(ChannelSettings):
    api_key: Secret
    shop_id: int = 1


class SecretConnector(ScriptedConnector):
    name: ClassVar[str] = "withsecret"
    settings_model: ClassVar[type[ChannelSettings]] = SecretSettings


MODELS = {"scripted": ChannelSettings, "withsecret": SecretSettings}


def _load(path: Path):
    return load_config(path, MODELS.get, lambda: sorted(MODELS))


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_durations_and_defaults(tmp_path: Path) -> None:
    config = _load(_write(tmp_path, """
[daemon]
push_interval = "90s"
[channels.a]
connector = "scripted"
poll_interval = "5m"
[channels.b]
connector = "scripted"
poll_interval = 45
enabled = false
"""))
    assert config.settings.daemon.push_interval == timedelta(seconds=90)
    assert config.channels["a"].poll_interval == timedelta(minutes=5)
    assert config.channels["b"].poll_interval == timedelta(seconds=45)
    assert list(config.enabled_channels) == ["a"]
    assert config.settings.database_url().startswith("sqlite:///") and config.settings.database_url().endswith("retsync.db")


@pytest.mark.parametrize("body, expected", [
    ('[channels.bol]\nconnector = "scripted"\npoll_interval = "5 minutes"\n',
     "[channels.bol] key `poll_interval`: '5 minutes' is not a duration"),
    ('[channels.bol]\nconnector = "scripted"\npoll_intervall = "5m"\n',
     "[channels.bol] key `poll_intervall`: unknown key"),
    ('[channels.bol]\nconnector = "nosuch"\n',
     "[channels.bol] key `connector`: no connector named 'nosuch' is installed (installed: scripted, withsecret)"),
    ('[channels.bol]\nenabled = true\n', "[channels.bol] key `connector`: is required but missing"),
    ('[daemon]\nlog_level = "LOUD"\n', "[daemon] key `log_level`: Input should be"),
    ('[databse]\nurl = "x"\n', "key `databse`: unknown key"),
    ('[channels.x]\nconnector = "withsecret"\napi_key = "keyring:no-slash"\n',
     "[channels.x] key `api_key`: `keyring:no-slash` must look like `keyring:service/username`"),
    ('[channels.x]\nconnector = "withsecret"\n', "[channels.x] key `api_key`: is required but missing"),
    ('[channels\nconnector = 1', "not valid TOML"),
])
def test_bad_config_names_file_table_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as error:
        _load(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_cli_exits_2_with_one_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            extra_connectors: dict) -> None:
    extra_connectors["scripted"] = ScriptedConnector
    path = _write(tmp_path, '[channels.bol]\nconnector = "scripted"\npoll_interval = "soon"\n')
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: [channels.bol] key `poll_interval`" in err
    assert "Traceback" not in err


def test_missing_file_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "sync"]) == 2
    assert "config file not found; copy config.example.toml" in capsys.readouterr().err


def test_config_path_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert str(config_path(None)) == "/etc/retsync/config.toml"
    monkeypatch.setenv("RETSYNC_CONFIG", str(tmp_path / "env.toml"))
    assert config_path(None) == tmp_path / "env.toml"
    assert config_path(str(tmp_path / "arg.toml")) == tmp_path / "arg.toml"


def test_environment_overrides_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETSYNC_DATABASE__URL", "sqlite:////tmp/elsewhere.db")
    monkeypatch.setenv("RETSYNC_CHANNELS__A__POLL_INTERVAL", "1h")
    config = _load(_write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n[channels.a]\nconnector = "scripted"\n'
                                    'poll_interval = 60\n'))
    assert config.settings.database_url() == "sqlite:////tmp/elsewhere.db"
    assert config.channels["a"].poll_interval == timedelta(hours=1)
    assert config.channels["a"].connector == "scripted", "an override merges into the table, it does not replace it"


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


def test_secret_references_env_file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    memory = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: memory)
    keyring.set_keyring(memory)
    monkeypatch.setenv("SHOP_KEY", "from-env-1234")
    (tmp_path / "cred").write_text("from-file-5678\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("from-keyring-9012\n"))
    assert main(["secret", "set", "c", "api_key", "--stdin"]) == 0
    assert 'api_key = "keyring:retsync/c.api_key"' in capsys.readouterr().out
    config = _load(_write(tmp_path, """
[channels.a]
connector = "withsecret"
api_key = "env:SHOP_KEY"
[channels.b]
connector = "withsecret"
api_key = "file:${CREDENTIALS_DIRECTORY}/cred"
[channels.c]
connector = "withsecret"
api_key = "keyring:retsync/c.api_key"
"""))
    values = {name: ch.api_key.get_secret_value() for name, ch in config.channels.items()}  # type: ignore[attr-defined]
    assert values == {"a": "from-env-1234", "b": "from-file-5678", "c": "from-keyring-9012"}
    assert "from-env-1234" not in repr(config.channels["a"]) and "**" in str(config.channels["a"].api_key)  # type: ignore[attr-defined]


def test_config_check_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra_connectors: dict,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra_connectors["withsecret"] = SecretConnector
    monkeypatch.setenv("SHOP_KEY", "very-secret-value")
    path = _write(tmp_path, '[database]\nurl = "postgresql://u:dbpassword@localhost/x"\n'
                            '[channels.a]\nconnector = "withsecret"\napi_key = "env:SHOP_KEY"\n')
    assert main(["--config", str(path), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "very-secret-value" not in out and "dbpassword" not in out
    assert '"api_key": "env:SHOP_KEY"' in out, "where the secret comes from, which is no secret"


def test_decisions_from_must_name_another_channel_that_can_hold_returns(tmp_path: Path) -> None:
    def load(body: str):
        return load_config(_write(tmp_path, body), MODELS.get, lambda: sorted(MODELS),
                           holds_returns=lambda connector: connector == "withsecret")

    shop = '[channels.shop]\nconnector = "withsecret"\napi_key = "env:HOME"\n'
    assert load(shop + '[channels.market]\nconnector = "scripted"\ndecisions_from = "shop"\n') \
        .channels["market"].decisions_from == "shop"
    cases = {
        '[channels.market]\nconnector = "scripted"\ndecisions_from = "shopp"\n':
            "[channels.market] key `decisions_from`: no channel named 'shopp' is configured (channels: shop)",
        '[channels.market]\nconnector = "scripted"\ndecisions_from = "market"\n':
            "[channels.market] key `decisions_from`: a channel cannot take its decisions from itself",
        '[channels.market]\nconnector = "scripted"\n[channels.other]\nconnector = "scripted"\n'
        'decisions_from = "market"\n':
            "[channels.other] key `decisions_from`: channel 'market' (scripted) cannot hold other channels' returns",
    }
    for body, message in cases.items():
        with pytest.raises(ConfigError) as raised:
            load(shop + body)
        assert message in str(raised.value) and str(tmp_path / "config.toml") in str(raised.value)
