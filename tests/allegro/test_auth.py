"""Signing in with the device flow, and keeping the rotating refresh token through refreshes and crashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from retsync.kit.contract import Stream
from retsync.kit.http import AuthError
from retsync.kit.secrets import known_secrets
from retsync.kit.tokens import TokenStore
from retsync.testing.memory import InMemoryStore
from retsync_connectors.allegro.emulator import DEVICE_GRANT, AllegroEmulator

from .conftest import FakeClock, MakeConnector


@pytest.fixture
def emu(clock: FakeClock) -> AllegroEmulator:
    return AllegroEmulator(seed=3, n_returns=30, clock=clock)


def token_file(tmp_path: Path, channel: str = "allegro-test") -> Path:
    return tmp_path / "tokens" / f"{channel}.json"


def polls(emu: AllegroEmulator) -> list[str]:
    return [r.body for r in emu.requests if r.path == "/auth/oauth/token"]


def signed_in(emu: AllegroEmulator, make_connector: MakeConnector, tmp_path: Path) -> None:
    """A merchant who ran `retsync auth allegro allegro-test` (no sandbox shortcut token)."""
    make_connector(emu, refresh_token=None).authorize(lambda line: None)
    emu.requests.clear()


# --- device flow ---------------------------------------------------------------------------


def test_the_device_flow_shows_the_code_polls_and_stores_the_refresh_token(
        emu: AllegroEmulator, make_connector: MakeConnector, tmp_path: Path, sleeps: list[float]) -> None:
    emu.device_script = ["authorization_pending", "slow_down", "authorization_pending", "approved"]
    said: list[str] = []
    make_connector(emu, refresh_token=None).authorize(said.append)

    start = next(r for r in emu.requests if r.path == "/auth/oauth/device")
    assert start.headers["authorization"].startswith("Basic ") and "client_id=" in start.body
    assert "skojarz-aplikacje?code=" in said[0] and any(char.isdigit() for char in said[0])
    assert len(polls(emu)) == 4 and all(f"grant_type={DEVICE_GRANT.replace(':', '%3A')}" in body for body in polls(emu))
    assert sleeps == [5, 5, 10, 10], "polls at `interval`, five seconds slower after slow_down"
    stored = token_file(tmp_path)
    assert stored.is_file() and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "kept in" in said[-1]
    assert TokenStore("allegro-test", tmp_path, "file").load() in known_secrets()


@pytest.mark.parametrize(("answer", "words"), [("access_denied", "refused"), ("expired_token", "run `retsync auth"),
                                               ("Invalid device code", "run `retsync auth")])
def test_a_refused_or_expired_code_stops_with_a_clear_message(
        emu: AllegroEmulator, make_connector: MakeConnector, tmp_path: Path, answer: str, words: str) -> None:
    emu.device_script = ["authorization_pending", answer]
    with pytest.raises(AuthError, match=words.replace("`", ".")):
        make_connector(emu, refresh_token=None).authorize(lambda line: None)
    assert not token_file(tmp_path).exists()


def test_the_flow_gives_up_when_the_code_runs_out(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    emu.device_expires_in = 12
    emu.device_polls_until_approved = 100
    with pytest.raises(AuthError, match="expired"):
        make_connector(emu, refresh_token=None).authorize(lambda line: None)
    assert len(polls(emu)) <= 3


# --- refresh-token rotation ----------------------------------------------------------------


def test_every_refresh_stores_the_new_refresh_token(emu: AllegroEmulator, make_connector: MakeConnector,
                                                   tmp_path: Path, clock: FakeClock) -> None:
    signed_in(emu, make_connector, tmp_path)
    store = TokenStore("allegro-test", tmp_path, "file")
    first = store.load()
    connector = make_connector(emu, refresh_token=None)
    InMemoryStore().run(connector)
    second = store.load()
    assert second and second != first
    emu.expire_tokens()  # the access token ran out: the next call refreshes again
    InMemoryStore().run(connector)
    assert store.load() not in (first, second)
    assert connector.auth.refreshes == 2


def test_a_reused_refresh_token_is_refused_after_a_minute(emu: AllegroEmulator, make_connector: MakeConnector,
                                                         tmp_path: Path, clock: FakeClock) -> None:
    signed_in(emu, make_connector, tmp_path)
    store = TokenStore("allegro-test", tmp_path, "file")
    old = store.load()
    InMemoryStore().run(make_connector(emu, refresh_token=None))
    assert old is not None
    store.save(old)  # as if the rotated token had never been stored
    clock.advance(61)
    with pytest.raises(AuthError, match="run `retsync auth allegro allegro-test` again"):
        InMemoryStore().run(make_connector(emu, refresh_token=None))


class Crash(BaseException):
    """The process dying: nothing after it runs."""


def test_a_crash_between_receiving_and_storing_the_new_token_does_not_log_the_merchant_out(
        emu: AllegroEmulator, make_connector: MakeConnector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        clock: FakeClock) -> None:
    signed_in(emu, make_connector, tmp_path)
    stored = TokenStore("allegro-test", tmp_path, "file").load()

    def die_mid_write(src: str, dst: str) -> None:  # the new token is in a temp file, not yet renamed
        raise Crash()

    monkeypatch.setattr(os, "replace", die_mid_write)
    with pytest.raises(Crash):
        InMemoryStore().run(make_connector(emu, refresh_token=None))
    monkeypatch.undo()
    assert TokenStore("allegro-test", tmp_path, "file").load() == stored, "the last good token is intact"
    assert [p.name for p in token_file(tmp_path).parent.iterdir()] == [token_file(tmp_path).name], "no temp left"

    clock.advance(20)  # the daemon restarts within Allegro's minute of grace
    store = InMemoryStore()
    store.run(make_connector(emu, refresh_token=None))
    assert store.returns, "signed in still"
    fresh = TokenStore("allegro-test", tmp_path, "file").load()
    assert fresh not in (None, stored)
    clock.advance(3600)
    emu.expire_tokens()
    InMemoryStore().run(make_connector(emu, refresh_token=None))  # and the rotated one keeps working


def test_a_revoked_sign_in_fails_that_channel_only_with_what_to_do(
        emu: AllegroEmulator, make_connector: MakeConnector, tmp_path: Path) -> None:
    other = AllegroEmulator(seed=4, n_returns=30)
    signed_in(emu, make_connector, tmp_path)
    emu.revoke_refresh_tokens()
    with pytest.raises(AuthError, match="run `retsync auth allegro allegro-test` again"):
        list(make_connector(emu, refresh_token=None).pull(Stream.RETURNS, InMemoryStore().context()))
    healthy = InMemoryStore()
    healthy.run(make_connector(other, channel="allegro-other"))
    assert healthy.returns


def test_a_channel_never_signed_in_says_how(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    with pytest.raises(AuthError, match="no Allegro sign-in yet.*retsync auth allegro allegro-test"):
        InMemoryStore().run(make_connector(emu, refresh_token=None))


# --- the token store -----------------------------------------------------------------------


def test_the_token_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    store = TokenStore("shop", tmp_path, "file")
    assert store.load() is None
    store.save("first-refresh-token")
    store.save("second-refresh-token")
    assert store.load() == "second-refresh-token"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert "second-refresh-token" in known_secrets()
    store.clear()
    assert store.load() is None


def test_auto_uses_a_working_keyring_and_falls_back_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backend import KeyringBackend
    from keyring.backends.fail import Keyring as NoKeyring

    monkeypatch.setattr(keyring, "get_keyring", lambda: NoKeyring())
    assert TokenStore("shop", tmp_path).backend == "file", "a headless server without a keyring backend"

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            self.values: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.values.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.values[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.values.pop((service, username), None)

    memory = Memory()
    monkeypatch.setattr(keyring, "get_keyring", lambda: memory)
    monkeypatch.setattr(keyring, "get_password", memory.get_password)
    monkeypatch.setattr(keyring, "set_password", memory.set_password)
    store = TokenStore("shop", tmp_path)
    assert store.backend == "keyring"
    store.save("kept-in-the-keyring")
    assert memory.values == {("retsync", "shop.refresh_token"): "kept-in-the-keyring"}
    assert store.load() == "kept-in-the-keyring" and not store.path.exists()
