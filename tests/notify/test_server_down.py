"""An SMTP server that cannot be used costs one try per pass, not one timeout per e-mail: the others wait, their
attempts uncounted, and all go out once it is back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from tests.notify.conftest import Mailbox, free_port
from tests.notify.helpers import Clock, make_config, notifier, outbox, shop


@dataclass
class HangUp:
    """Accepts each connection and closes it at once, as a broken or overloaded mail server does."""

    port: int
    connections: int = 0


@pytest.fixture
def hang_up() -> Iterator[HangUp]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)  # close() does not wake a blocked accept(); the loop looks at `stop` instead
    server = HangUp(port=listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server.connections += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_server_that_hangs_up_is_tried_once_per_pass_and_the_rest_wait(db: Engine, db_url: str, tmp_path: Path,
                                                                       hang_up: HangUp) -> None:
    clock = Clock()
    notify = {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": hang_up.port, "smtp_security": "none",
              "mail_from": "returns@shop.example", "team_emails": ["team@shop.example"], "retry_base": "10m"}
    config = make_config(tmp_path, db_url, notify)
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    for _ in range(3):
        s.add_return()

    summary = notifier(db, config, clock).run()
    assert hang_up.connections == 1, "one try, then the pass stops using the server"
    assert (summary.derived, summary.sent, summary.retrying, summary.deferred) == (6, 0, 1, 5)
    rows = outbox(db)
    assert all(row.state == "pending" for row in rows)
    assert sorted(row.attempts for row in rows) == [0, 0, 0, 0, 0, 1]
    tried = next(row for row in rows if row.attempts == 1)
    assert "cannot reach SMTP server 127.0.0.1" in (tried.last_error or "")
    assert all(row.next_attempt_at == tried.next_attempt_at for row in rows), "all wait for the same retry"

    assert notifier(db, config, clock).run().deferred == 0 and hang_up.connections == 1, "not due yet"
    clock.advance(minutes=13)
    notifier(db, config, clock).run()
    assert hang_up.connections == 2
    assert sorted(row.attempts for row in outbox(db)) == [0, 0, 0, 0, 0, 2]


def test_when_the_server_is_back_everything_waiting_goes_out_once(db: Engine, db_url: str, tmp_path: Path,
                                                                 hang_up: HangUp) -> None:
    clock = Clock()
    notify = {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": hang_up.port, "smtp_security": "none",
              "mail_from": "returns@shop.example", "team_emails": ["team@shop.example"], "retry_base": "1m"}
    s = shop(db, clock)
    notifier(db, make_config(tmp_path, db_url, notify), clock).run()
    clock.advance(minutes=1)
    for _ in range(2):
        s.add_return()
    assert notifier(db, make_config(tmp_path, db_url, notify), clock).run().deferred == 3

    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        back = make_config(tmp_path, db_url, {**notify, "smtp_port": box.port})
        clock.advance(minutes=2)
        assert notifier(db, back, clock).run().sent == 4
        clock.advance(minutes=10)
        assert notifier(db, back, clock).run().sent == 0
    finally:
        controller.stop()
    assert len(box.messages) == 4
    assert sorted(row.attempts for row in outbox(db)) == [1, 1, 1, 2]
