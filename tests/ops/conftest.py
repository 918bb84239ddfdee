"""What the operations tests share: a config of sandbox channels, a fake systemd notify socket, loopback HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retsync.app.demo import write_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused


def config_file(tmp_path: Path, db_url: str, channels: dict[str, dict[str, Any]], daemon: str = "",
                extra: str = "") -> Path:
    """A config of these channel tables on `db_url`, with lines added under [daemon] and at the end."""
    path = tmp_path / "config.toml"
    write_config(path, tmp_path, channels)
    text = path.read_text().replace(f"sqlite:///{tmp_path / 'demo.db'}", db_url)
    path.write_text(text.replace('log_level = "WARNING"', f'log_level = "WARNING"\n{daemon}') + "\n" + extra)
    return path


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll a condition the daemon's threads make true (a real wait on them, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class FakeSystemd:
    """A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: it keeps every message it is sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.01)
        self.messages: list[dict[str, str]] = []

    def receive(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def first(self, key: str) -> dict[str, str] | None:
        return next((m for m in self.receive() if key in m), None)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.close()


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5)
