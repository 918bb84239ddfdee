"""A notification that cannot go out is retried with backoff, then marked failed, shown by `retsync channels`
and logged with the customer's address redacted."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine

from retsync import logs
from retsync.app.cli import main
from retsync.notify.events import Deriver
from retsync.notify.outbox import SENDING
from tests.notify.conftest import Mailbox, Receiver
from tests.notify.helpers import Clock, cli_config, make_config, notifier, outbox, shop


def test_a_temporary_smtp_refusal_is_retried_after_a_backoff(db: Engine, db_url: str, tmp_path: Path,
                                                             smtp: Mailbox) -> None:
    clock = Clock()
    config = make_config(tmp_path, db_url, {
        "enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
        "mail_from": "returns@shop.example", "retry_base": "10m"})
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    s.add_return()
    smtp.answers.append("451 4.3.0 mailbox busy, try later")
    summary = notifier(db, config, clock).run()
    assert (summary.sent, summary.retrying) == (0, 1)
    [row] = outbox(db)
    assert row.state == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
    assert row.next_attempt_at > clock() + timedelta(minutes=7)

    assert notifier(db, config, clock).run().sent == 0, "not due yet"
    clock.advance(minutes=13)
    assert notifier(db, config, clock).run().sent == 1
    [row] = outbox(db)
    assert row.state == "sent" and row.attempts == 2 and row.last_error is None
    assert len(smtp.messages) == 1


def test_failures_show_in_retsync_channels_and_logs_redact_the_customer(
        db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox, webhook: Receiver,
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    notify = {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
              "mail_from": "returns@shop.example", "webhook_url": webhook.url, "max_attempts": 2, "retry_base": "0s"}
    config = make_config(tmp_path, db_url, notify)
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    s.add_return(email="jan.kowalski@example.pl")
    smtp.answers.append("550 5.1.1 no such mailbox")
    webhook.statuses.extend([500, 500])
    buffer = io.StringIO()
    logs.configure(level="INFO", fmt="json", stream=buffer)
    try:
        first = notifier(db, config, clock).run()
        clock.advance(minutes=1)
        second = notifier(db, config, clock).run()
    finally:
        structlog.reset_defaults()
    assert (first.failed, first.retrying, second.failed) == (1, 1, 1)
    states = {row.transport: (row.state, row.attempts, row.last_error) for row in outbox(db)}
    assert states["email"] == ("failed", 1, "SMTP server said 550 5.1.1 no such mailbox")
    assert states["webhook"][:2] == ("failed", 2)
    assert states["webhook"][2].startswith("gave up after 2 attempts: webhook answered HTTP 500")

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    failed = [line for line in lines if line["event"] == "notification_failed"]
    assert len(failed) == 2 and any(line.get("customer_email") == "j***@e***.pl" for line in failed)
    assert "jan.kowalski@example.pl" not in buffer.getvalue()

    config_file = cli_config(tmp_path, db_url, f"""[notify]
enabled = true
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
smtp_security = "none"
mail_from = "returns@shop.example"
""")
    capsys.readouterr()
    assert main(["--config", str(config_file), "channels"]) == 0
    out = capsys.readouterr().out
    assert "notifications      2 failed, 0 retrying; last error:" in out
    assert main(["--config", str(config_file), "channels", "--format", "json"]) == 0
    [channel] = json.loads(capsys.readouterr().out)
    assert channel["notifications"]["failed"] == 2


def test_a_claim_left_by_a_crashed_daemon_is_sent_once_when_its_lease_runs_out(
        db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox) -> None:
    clock = Clock()
    config = make_config(tmp_path, db_url, {
        "enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
        "mail_from": "returns@shop.example"})
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    s.add_return()
    crashed = notifier(db, config, clock)
    Deriver(db, config.settings.notify, config.channels).derive(clock())
    [claimed] = crashed._claim(["email"], 10)  # claimed and committed, then the process died before sending
    assert outbox(db)[0].state == SENDING

    assert notifier(db, config, clock).run().sent == 0, "another daemon leaves a live claim alone"
    clock.advance(minutes=6)
    assert notifier(db, config, clock).run().sent == 1
    clock.advance(minutes=10)
    assert notifier(db, config, clock).run().sent == 0
    [row] = outbox(db)
    assert row.state == "sent" and row.attempts == 2 and len(smtp.messages) == 1
    assert smtp.messages[0]["Message-ID"] == f"<retsync-notification-{claimed.id}@shop.example>"
