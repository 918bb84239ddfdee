"""Settings that would expose credentials or customer data, or let a channel name climb out of the state directory,
are refused at start-up with one line naming the file, the table and the key (exit code 2), unless the table says
`allow_insecure = true`. Sandboxes and tests on this machine (127.0.0.1, ::1, localhost) need no flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from retsync import registry
from retsync.app.cli import main
from retsync.config import ConfigError, load_config
from retsync.kit.tokens import TokenStore, TokenStoreError

SECRET = "cs_live_0123456789abcdef"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _load(path: Path):
    return load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)


def _shop(url_lines: str, extra: str = "", name: str = "shop") -> str:
    return (f'[channels."{name}"]\nconnector = "woocommerce"\nconsumer_key = "ck_0123456789"\n'
            f'consumer_secret = "{SECRET}"\n{url_lines}\n{extra}\n')


def _bol(url_lines: str, extra: str = "") -> str:
    return f'[channels.market]\nconnector = "bol"\nclient_id = "id"\nclient_secret = "{SECRET}"\n{url_lines}\n{extra}'


@pytest.mark.parametrize(("body", "key", "host"), [
    (_shop('base_url = "http://shop.example.com"'), "base_url", "shop.example.com"),
    (_bol('token_url = "http://login.example.com/token"'), "token_url", "login.example.com"),
    (_bol('base_url = "HTTP://10.0.0.8:8080"'), "base_url", "10.0.0.8"),
    # a credential in the query string over http: refused, and the URL carrying it is not repeated
    (_shop(f'base_url = "http://shop.example.com/?consumer_secret={SECRET}"'), "base_url", "shop.example.com"),
])
def test_plain_http_to_another_machine_is_refused(tmp_path: Path, body: str, key: str, host: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        _load(path)
    table = "market" if "bol" in body else "shop"
    message = str(caught.value)
    assert message.startswith(f"{path}: [channels.{table}] key `{key}`: plain http:// to {host}: ")
    assert f"allow_insecure = true in [channels.{table}]" in message and "https://" in message
    assert SECRET not in message and len(message.splitlines()) == 1


def test_allow_insecure_accepts_it_for_its_own_table_only(tmp_path: Path) -> None:
    config = _load(_write(tmp_path, _shop('base_url = "http://shop.lan"', "allow_insecure = true")))
    assert config.channels["shop"].base_url == "http://shop.lan"
    body = (_shop('base_url = "http://shop.lan"', "allow_insecure = true")
            + _shop('base_url = "http://other.lan"', name="other"))
    with pytest.raises(ConfigError, match=r"\[channels.other\] key `base_url`") as caught:
        _load(_write(tmp_path, body))
    assert "[channels.shop]" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8081", "http://127.3.4.5", "http://[::1]:8080/",
                                 "http://localhost:8080", "http://sandbox.localhost", "http://sandbox.invalid",
                                 "https://shop.example.com"])
def test_this_machine_and_https_need_no_flag(tmp_path: Path, url: str) -> None:
    assert _load(_write(tmp_path, _shop(f'base_url = "{url}"'))).channels["shop"].base_url == url


def test_smtp_password_without_tls_to_another_host_is_refused(tmp_path: Path) -> None:
    notify = ('[notify]\nsmtp_host = "mail.example.com"\nsmtp_security = "none"\nsmtp_user = "u"\n'
              f'smtp_password = "{SECRET}"\nmail_from = "returns@example.com"\n')
    path = _write(tmp_path, notify)
    with pytest.raises(ConfigError) as caught:
        _load(path)
    assert str(caught.value) == (
        f'{path}: [notify] key `smtp_security`: "none" would send smtp_password to mail.example.com unencrypted; '
        f'use "starttls" or "tls", or, on a network you trust, set allow_insecure = true in [notify]')
    assert _load(_write(tmp_path, notify + "allow_insecure = true\n")).settings.notify.allow_insecure
    assert _load(_write(tmp_path, notify.replace("mail.example.com", "127.0.0.1")))
    assert _load(_write(tmp_path, notify.replace('"none"', '"starttls"')))
    assert _load(_write(tmp_path, notify.replace(f'smtp_user = "u"\nsmtp_password = "{SECRET}"\n', "")))


def test_plain_http_webhook_to_another_host_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '[notify]\nwebhook_url = "http://hooks.example.com/T0/B0/xoxb"\n')
    with pytest.raises(ConfigError, match=r"\[notify\] key `webhook_url`: plain http:// to hooks.example.com") as caught:
        _load(path)
    assert "xoxb" not in str(caught.value)


@pytest.mark.parametrize("name", ["../../escaped", "a/b", ".hidden", "-x", "x" * 65, "shop..pl", "sklep ü"])
def test_a_channel_name_that_is_not_a_safe_file_name_is_refused(tmp_path: Path, name: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, f'[channels."{name}"]\nconnector = "bol"\nclient_id = "id"\nclient_secret = "s3cret"\n')
    with pytest.raises(ConfigError) as caught:
        _load(path)
    assert str(caught.value).startswith(f"{path}: [channels.{name}]: {name!r} cannot name a channel")
    assert main(["--config", str(path), "sync"]) == 2
    error = capsys.readouterr().err
    assert "cannot name a channel" in error and "Traceback" not in error


def test_good_channel_names_still_load(tmp_path: Path) -> None:
    body = "".join(_shop('base_url = "https://s.example.com"', name=name) for name in ("shop", "Shop_2", "sklep.pl-b"))
    assert sorted(_load(_write(tmp_path, body)).channels) == ["Shop_2", "shop", "sklep.pl-b"]


def test_the_token_store_refuses_a_name_that_escapes_the_state_directory(tmp_path: Path) -> None:
    with pytest.raises(TokenStoreError, match="cannot name a token file"):
        TokenStore("../../escaped", tmp_path / "state", backend="file")
    assert not (tmp_path / "escaped.json").exists()


# --- [database] url --------------------------------------------------------------------------------------------------


def test_a_postgres_url_is_read_as_postgresql(tmp_path: Path) -> None:
    config = _load(_write(tmp_path, '[database]\nurl = "postgres://retsync:pw@db.example.com:5433/retsync"\n'))
    assert config.settings.database_url() == "postgresql://retsync:pw@db.example.com:5433/retsync"


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://retsync:pw@db:5432x/retsync", "the port is not a number"),
    ("postgresql://retsync:pw@db:70000/retsync", "port 70000 is out of range (1-65535)"),
    ("mysql://retsync:pw@db/retsync", "mysql:// is not a database retsync works with"),
    ("not a url", "is not a database URL"),
])
def test_a_bad_database_url_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str,
                                                   expected: str) -> None:
    path = _write(tmp_path, f'[database]\nurl = "{url}"\n')
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"config error: {path}: [database] key `url`: {expected}"), error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error and ":pw@" not in error


def test_a_database_url_from_the_environment_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RETSYNC_DATABASE__URL", "postgresql://retsync:pw@db:abc/retsync")
    assert main(["--config", str(_write(tmp_path, "")), "db", "upgrade"]) == 2
    assert "[database] key `url`: the port is not a number" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["team@example.com, other@evil.example", "not-an-address", "a@b@c.example"])
def test_a_team_email_that_is_not_one_address_is_a_config_error(address: str, tmp_path: Path) -> None:
    """Caught when the admin runs `config check`, not when the first team e-mail fails at 3 a.m."""
    path = tmp_path / "config.toml"
    path.write_text('[notify]\nenabled = true\nsmtp_host = "127.0.0.1"\nmail_from = "retsync@shop.example"\n'
                    f'team_emails = ["{address}"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)
    assert "team_emails" in str(caught.value) and repr(address) in str(caught.value)
