"""`retsync auth allegro CHANNEL` and `retsync decide` as a merchant types them, against the sandbox on loopback."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from retsync.app.cli import main
from retsync.app.demo import write_config
from retsync.kit.tokens import TokenStore
from retsync_connectors.allegro.connector import AllegroConnector
from retsync_connectors.allegro.emulator import AllegroEmulator


@pytest.fixture
def emu() -> AllegroEmulator:
    return AllegroEmulator(seed=9, n_returns=40, device_interval=0, device_polls_until_approved=2)


@pytest.fixture
def config_file(tmp_path: Path, emu: AllegroEmulator) -> Iterator[Path]:
    with emu.serve() as base_url:
        table = {**AllegroConnector.sandbox_channel(base_url), "max_retries": 1, "max_backoff": "0.05s"}
        del table["refresh_token"]  # a real channel: signed in with the device flow, not the sandbox shortcut
        path = tmp_path / "config.toml"
        write_config(path, tmp_path, {"shop": table})
        assert main(["--config", str(path), "db", "upgrade"]) == 0
        yield path


def test_auth_signs_the_channel_in(config_file: Path, tmp_path: Path, emu: AllegroEmulator,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "auth", "allegro", "shop"]) == 0
    out = capsys.readouterr().out
    assert "skojarz-aplikacje?code=" in out and "channel shop is signed in" in out
    store = TokenStore("shop", tmp_path, "file")
    assert store.load() and stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert main(["--config", str(config_file), "sync"]) == 0
    assert store.load() is not None


def test_a_refused_sign_in_is_a_message_not_a_traceback(config_file: Path, tmp_path: Path, emu: AllegroEmulator,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    emu.device_script = ["access_denied"]
    assert main(["--config", str(config_file), "auth", "allegro", "shop"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("retsync: the sign-in was refused") and "Traceback" not in err
    assert not (tmp_path / "tokens" / "shop.json").exists()


def test_an_unsigned_channel_says_how_to_sign_in(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "sync"]) == 1
    assert "run `retsync auth allegro shop` again" in capsys.readouterr().err
