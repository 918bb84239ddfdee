"""The returns webhook over real HTTP on loopback: a signed post creates a return; an unsigned, stale, forged,
replayed or oversized one changes nothing and is told why."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from retsync.intake.webhook import WebhookListener, sign
from retsync.testing.config import config_for
from tests.intake.conftest import sqlite_only

SECRET = "s3cret-webhook-key-0123456789"


@pytest.fixture
def hook(db: Engine, db_url: str, tmp_path: Path) -> Iterator[str]:
    config = config_for(tmp_path, db_url, {
        "paper": {"connector": "manual", "webhook_secret": SECRET, "tracking_carrier": "inpost"},
        "nohook": {"connector": "manual"}})
    listener = WebhookListener(config, db, host="127.0.0.1", port=0)
    listener.start()
    assert listener.wait_started()
    try:
        yield f"http://127.0.0.1:{listener.port}"
    finally:
        listener.stop()


def body(**changes: object) -> bytes:
    payload = {"id": "WZ-77", "order": "1001", "reason": "za duże", "customer": {"email": "ewa@example.com"},
               "tracking_number": "620000014433330021832001",
               "lines": [{"sku": "BUT-40", "quantity": 1, "unit_price": "129.99"}], **changes}
    return json.dumps(payload).encode()


def post(url: str, data: bytes, *, delivery: str = "d-1", stamp: int | None = None, secret: str = SECRET,
         signature: str | None = None, channel: str = "paper") -> httpx.Response:
    when = str(int(time.time()) if stamp is None else stamp)
    headers = {"X-Retsync-Delivery": delivery, "X-Retsync-Timestamp": when,
               "X-Retsync-Signature": signature or sign(secret, when, data), "Content-Type": "application/json"}
    return httpx.post(f"{url}/hooks/{channel}", content=data, headers=headers, timeout=5)


def stored(db: Engine) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT r.external_id, r.status, r.tracking_number, r.carrier, r.customer_email, rl.quantity, "
            "rl.unit_price FROM returns r JOIN return_lines rl ON rl.return_id = r.id ORDER BY r.id, rl.id"))]


def test_a_signed_post_creates_a_return_and_its_replay_changes_nothing(hook: str, db: Engine) -> None:
    answer = post(hook, body())
    assert answer.status_code == 201, answer.text
    assert answer.json()["result"] == "created" and answer.json()["return"] == "paper/WZ-77"
    assert stored(db) == [("WZ-77", "requested", "620000014433330021832001", "inpost", "ewa@example.com", 1, 12999)]
    again = post(hook, body(status="received"))  # same delivery id, even with another body: a replay
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert stored(db)[0][1] == "requested"
    update = post(hook, body(status="received", received_at="2026-12-05T10:00:00+01:00"), delivery="d-2")
    assert update.status_code == 200 and update.json()["result"] == "updated"
    assert stored(db)[0][1] == "received"
    with db.connect() as conn:
        events = conn.execute(text("SELECT new_value, source FROM return_events WHERE kind = 'status' ORDER BY id")).all()
        deliveries = conn.execute(text("SELECT delivery_id FROM webhook_deliveries ORDER BY id")).scalars().all()
    assert [tuple(e) for e in events] == [("requested", "webhook:d-1"), ("received", "webhook:d-2")]
    assert deliveries == ["d-1", "d-2"]


@sqlite_only
def test_what_is_not_the_channels_is_refused_with_a_clear_4xx_and_nothing_stored(hook: str, db: Engine) -> None:
    data = body()
    now = int(time.time())
    cases = [
        (post(hook, data, signature="sha256=" + "0" * 64), 401, "does not match"),
        (post(hook, data, secret="someone-elses-secret"), 401, "does not match"),
        (post(hook, data, stamp=now - 301), 401, "away from this server's clock"),
        (post(hook, data, stamp=now + 400), 401, "away from this server's clock"),
        (httpx.post(f"{hook}/hooks/paper", content=data, timeout=5), 401, "X-Retsync-Delivery is missing"),
        (post(hook, data, channel="nohook"), 404, "no returns webhook for channel 'nohook'"),
        (post(hook, data, channel="unknown"), 404, "no returns webhook"),
        (post(hook, b"x" * (256 * 1024 + 1)), 413, "larger than"),
        (post(hook, b"{not json"), 400, "not JSON"),
        (post(hook, b"[" * 100_000 + b"]" * 100_000), 400, "not JSON"),
        (post(hook, body(lines=[])), 422, "cannot be taken"),
        (post(hook, body(lines=[{"sku": "A", "quantity": 0}], status="lost")), 422, "cannot be taken"),
    ]
    for answer, status, message in cases:
        assert answer.status_code == status and message in answer.json()["error"], answer.text
    problems = cases[-1][0].json()["problems"]
    assert any(p.startswith("status:") for p in problems) and any(p.startswith("lines.0.quantity") for p in problems)
    assert stored(db) == []
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM webhook_deliveries")).scalar() == 0
    assert post(hook, data, delivery="fresh").status_code == 201, "a refused delivery id is not used up"


@sqlite_only
def test_retsync_run_serves_the_webhook_and_imports_the_folder_beside_its_pulls(
        db: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket
    import threading

    from retsync import registry
    from retsync.app.daemon import Runner, run_forever
    from retsync.config import load_config

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    export = inbox / "export.csv"
    export.write_text("Numer zwrotu;SKU;Ilość\nF-1;A;1\n", encoding="utf-8")
    old = time.time() - 60
    os.utime(export, (old, old))
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[daemon]
state_dir = "{tmp_path}"
jitter = 0
[returns_webhook]
port = {port}
[channels.paper]
connector = "manual"
poll_interval = "1h"
import_dir = "{inbox}"
webhook_secret = "{SECRET}"
""")
    runner = Runner(load_config(path, registry.settings_model_for, registry.names, registry.holds_returns))
    runner.open()
    seen: dict[str, object] = {}

    def beside() -> None:
        try:
            for _ in range(500):
                try:
                    seen["answer"] = post(f"http://127.0.0.1:{port}", body()).status_code
                    break
                except httpx.TransportError:
                    time.sleep(0.01)
            for _ in range(500):
                if (inbox / "done").is_dir() and any((inbox / "done").iterdir()):
                    break
                time.sleep(0.01)
        finally:
            runner.stop.set()

    helper = threading.Thread(target=beside, daemon=True)
    helper.start()
    try:
        assert run_forever(runner, install_signals=False) == 0
    finally:
        runner.stop.set()
        helper.join(timeout=30)
        runner.close()
    assert seen["answer"] == 201
    with db.connect() as conn:
        assert sorted(conn.execute(text("SELECT external_id FROM returns")).scalars()) == ["F-1", "WZ-77"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/hooks/paper", timeout=1)
