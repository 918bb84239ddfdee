"""A console over a database the scripted channel filled, with one user of each role."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from starlette.testclient import TestClient

from retsync.kit.contract import Runtime, Stream
from retsync.kit.model import Customer, ReturnStatus
from retsync.kit.settings import ChannelSettings
from retsync.store.channels import ensure_channel
from retsync.sync.engine import SyncEngine
from retsync.testing.config import config_for
from retsync.web import auth
from retsync.web.app import create_app
from tests.fakes import BASE, ScriptedConnector, make_return

PASSWORD = "correct horse battery"
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""For tests whose outcome cannot depend on the database: the suite keeps PostgreSQL to the queries."""
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Clock:
    def __init__(self) -> None:
        self.now = BASE + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


def fill(db: Engine, tmp_path: Path, n: int = 4) -> None:
    """`n` returns of channel `shop`; R1 refunded, R3 with a hostile customer name and reason."""
    ScriptedConnector.reset(n)
    ScriptedConnector.returns[1] = make_return(1, ReturnStatus.REFUNDED)
    hostile = make_return(3)
    ScriptedConnector.returns[3] = hostile.model_copy(update={
        "customer": Customer(email="evil@example.com", name=HOSTILE), "channel_reason": HOSTILE})
    connector = ScriptedConnector("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    channel_id = ensure_channel(db, "shop", "scripted", BASE)
    SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings,
               connector=connector).sync_stream(Stream.RETURNS)


@pytest.fixture(autouse=True)
def quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with its smallest costs: the same hashing and checks, milliseconds instead of a second per test."""
    quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", quick)
    dummy = quick.hash("not a password anyone has")
    monkeypatch.setattr(auth, "_dummy_hash", lambda: dummy)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def console(db: Engine, tmp_path: Path, clock: Clock) -> Any:
    fill(db, tmp_path)
    for name, role in (("vera", "viewer"), ("dan", "decider"), ("ada", "admin")):
        auth.add_user(db, name, role, PASSWORD)
    config = config_for(tmp_path, str(db.url), {})
    return create_app(db, config, clock=clock, connector_for=lambda name: ScriptedConnector)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"name": name, "password": password, "csrf": csrf_of(page.text),
                                       "next": "/returns"}, follow_redirects=False)


@pytest.fixture
def as_user(console: Any) -> Any:
    """A logged-in client for a user name."""
    def make(name: str) -> TestClient:
        client = TestClient(console, base_url="http://127.0.0.1")
        assert login(client, name).status_code == 303
        return client
    return make
