"""What customers and channels write never decides who gets an e-mail, never pings a chat, never reaches the team.

The customer's address, the reason they typed, a product title and a channel's error body all come from outside.
A second address in the billing e-mail must not get the customer's mail, `<!channel>` in a title must not ping a
Slack workspace, and the team's e-mails and webhook carry no personal data, the customer's own words included.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine, update

from retsync import logs
from retsync.app.cli import main
from retsync.config import Config
from retsync.notify import send
from retsync.store.models import ReturnLine
from tests.notify.conftest import Mailbox, Receiver
from tests.notify.helpers import T0, Clock, Shop, cli_config, make_config, notifier, outbox, shop

TEAM = "team@shop.example"
TYPED_REASON = "Jan Kowalski, ul. Długa 5 Gdańsk: my son broke it, call +48 600 100 200"


def _notify(smtp: Mailbox, **more: object) -> dict[str, object]:
    return {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
            "mail_from": "returns@shop.example", **more}


def _switched_on(db: Engine, db_url: str, tmp_path: Path, notify: dict[str, object]) -> tuple[Clock, Config, Shop]:
    """Notifications switched on a minute before T0, so what happens from T0 on is told."""
    clock = Clock(T0 - timedelta(minutes=1))
    config = make_config(tmp_path, db_url, notify)
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.now = T0
    return clock, config, s


@pytest.mark.parametrize("address", [
    "victim@example.com, second@evil.example",
    "victim@example.com; second@evil.example",
    "Victim <victim@example.com>, <second@evil.example>",
    "victim@example.com\r\nBcc: second@evil.example",
    "victim@example.com\nBcc: second@evil.example",
    "not an address",
    "victim@localhost",
])
def test_a_customer_address_that_is_not_exactly_one_address_fails_the_notification_unsent(
        db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox, address: str) -> None:
    clock, config, s = _switched_on(db, db_url, tmp_path, _notify(smtp))
    s.add_return(email=address)
    summary = notifier(db, config, clock).run()
    assert smtp.envelopes == [], "nothing was sent to anyone"
    assert (summary.sent, summary.failed) == (0, 1)
    [row] = outbox(db)
    assert row.state == "failed" and row.attempts == 1
    assert "e-mail address" in (row.last_error or "") and "not sent" in (row.last_error or "")
    assert "victim@example.com" not in (row.last_error or "") and "second@evil.example" not in (row.last_error or "")


def test_a_display_name_around_one_address_is_fine(db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox) -> None:
    clock, config, s = _switched_on(db, db_url, tmp_path, _notify(smtp))
    s.add_return(email="Anna Nowak <anna.nowak@example.pl>")
    assert notifier(db, config, clock).run().sent == 1
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["anna.nowak@example.pl"]


def test_team_messages_carry_neither_the_typed_reason_nor_chat_markup(db: Engine, db_url: str, tmp_path: Path,
                                                                       smtp: Mailbox, webhook: Receiver) -> None:
    clock, config, s = _switched_on(db, db_url, tmp_path, _notify(smtp, team_emails=[TEAM], webhook_url=webhook.url))
    ret, line = s.add_return(channel_reason=TYPED_REASON, customer_phone="+48 600 100 200")
    s.change(ret, order_external_id="<!channel>")
    with db.begin() as conn:
        conn.execute(update(ReturnLine).where(ReturnLine.id == line).values(
            title="Lamp @everyone <@U024BE7LH> [invoice](https://evil.example) <https://evil.example|pay here>"))
    s.decision(ret, line, "accept", "failed", attempts=8,
               last_error="HTTP 422: customer Anna Nowak (+48 600 100 200, anna.nowak@example.pl) is blocked")
    summary = notifier(db, config, clock).run()
    assert summary.failed == 0 and summary.sent > 0

    team_mail = "\n".join(m.get_content() for m in smtp.to(TEAM))
    hooks = [r.json for r in webhook.requests]
    hook_text = "\n".join(h["text"] + h["subject"] for h in hooks)
    for told in (team_mail, hook_text, str([h["data"] for h in hooks])):
        assert "Kowalski" not in told and "Długa" not in told and "600 100 200" not in told
        assert "Anna Nowak" not in told and "anna.nowak@example.pl" not in told
    assert "Reason:   wrong_size" in team_mail
    assert "HTTP 422: customer A*** (+***, a***@e***.pl) is blocked" in team_mail

    new_return = next(h for h in hooks if h["event"] == "new_return")
    assert "&lt;!channel&gt;" in new_return["text"] and "<!channel>" not in new_return["text"]
    assert "@\u200beveryone" in new_return["text"] and "&lt;@\u200bU024BE7LH&gt;" in new_return["text"]
    assert "[invoice]\u200b(https://evil.example)" in new_return["text"]
    assert "&lt;https://evil.example|pay here&gt;" in new_return["text"]
    assert "<!channel>" in team_mail, "an e-mail is plain text: it shows the order number as the channel wrote it"

    customer_mail = "\n".join(m.get_content() for m in smtp.to("anna.nowak@example.pl"))
    assert customer_mail, "the customer's own e-mail goes out"


def test_a_line_break_in_channel_text_cannot_add_a_header(db: Engine, db_url: str, tmp_path: Path,
                                                          smtp: Mailbox) -> None:
    clock, config, s = _switched_on(db, db_url, tmp_path, _notify(smtp, team_emails=[TEAM]))
    ret, _ = s.add_return()
    with db.begin() as conn:
        from retsync.store.models import Return

        conn.execute(update(Return).where(Return.id == ret).values(
            external_id="R1\r\nBcc: spy@evil.example\r\n\r\nbody"))
    summary = notifier(db, config, clock).run()
    assert summary.failed == 0 and summary.retrying == 0
    assert all("spy@evil.example" not in envelope.rcpt_tos for envelope in smtp.envelopes)
    [message] = smtp.to(TEAM)
    assert message["Bcc"] is None
    assert "R1 Bcc: spy@evil.example body" in " ".join(message["Subject"].split()), "one line, as text"


def test_failed_notifications_show_in_channels_with_the_address_redacted(
        db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    clock, config, s = _switched_on(db, db_url, tmp_path, _notify(smtp))
    s.add_return(email="victim@example.com, second@evil.example")
    notifier(db, config, clock).run()
    config_file = cli_config(tmp_path, db_url)
    capsys.readouterr()
    assert main(["--config", str(config_file), "channels"]) == 0
    out = capsys.readouterr().out
    assert "notifications      1 failed, 0 retrying; last error: the customer's e-mail address" in out
    assert "is not one address (2 found); not sent" in out
    assert "victim" not in out and "evil.example" not in out


def test_a_crash_quoting_the_customer_is_logged_and_stored_redacted(db: Engine, db_url: str, tmp_path: Path,
                                                                    smtp: Mailbox,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clock, config, s = _switched_on(db, db_url, tmp_path, _notify(smtp))
    s.add_return()

    def crash(settings: object, mail: object) -> None:
        raise RuntimeError("cannot encode 'Anna Nowak' for anna.nowak@example.pl")

    monkeypatch.setattr(send, "send_email", crash)
    buffer = io.StringIO()
    logs.configure(fmt="json", stream=buffer)
    try:
        assert notifier(db, config, clock).run().retrying == 1
    finally:
        structlog.reset_defaults()
    [row] = outbox(db)
    assert row.last_error == "RuntimeError: cannot encode 'A***' for a***@e***.pl"
    assert "notification_crashed" in buffer.getvalue() and "Nowak" not in buffer.getvalue()
    assert "anna.nowak" not in buffer.getvalue()
