"""STARTTLS and login against a real SMTP server that insists on both; the password stays out of the database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER, Mailbox
from tests.notify.helpers import Clock, make_config, notifier, outbox, shop


def settings(smtp: Mailbox, password: str, **overrides: object) -> dict[str, object]:
    return {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "starttls",
            "smtp_user": SMTP_USER, "smtp_password": password, "mail_from": "returns@shop.example",
            "team_emails": ["team@shop.example"], "smtp_timeout": "10s", **overrides}


def test_starttls_and_login(db: Engine, db_url: str, tmp_path: Path, smtp_starttls: Mailbox) -> None:
    clock = Clock()
    config = make_config(tmp_path, db_url, settings(smtp_starttls, SMTP_PASSWORD), notify_customers=False)
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    s.add_return()
    assert notifier(db, config, clock).run().sent == 1
    assert smtp_starttls.logins == [(SMTP_USER, SMTP_PASSWORD)]
    assert [e.rcpt_tos for e in smtp_starttls.envelopes] == [["team@shop.example"]]


def test_a_wrong_password_is_reported_without_the_password(db: Engine, db_url: str, tmp_path: Path,
                                                           smtp_starttls: Mailbox) -> None:
    clock = Clock()
    wrong = "wrong-pass-91c0ab"
    config = make_config(tmp_path, db_url, settings(smtp_starttls, wrong, max_attempts=1), notify_customers=False)
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    s.add_return()
    summary = notifier(db, config, clock).run()
    assert summary.failed == 1 and smtp_starttls.messages == []
    [row] = outbox(db)
    assert "SMTP login as smtp_user failed" in row.last_error
    with db.connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM notifications")))
    assert wrong not in dump and wrong not in " ".join(summary.errors)


def test_plain_smtp_to_a_server_that_wants_starttls_explains_itself(db: Engine, db_url: str, tmp_path: Path,
                                                                   smtp_starttls: Mailbox) -> None:
    clock = Clock()
    config = make_config(tmp_path, db_url, settings(smtp_starttls, SMTP_PASSWORD, smtp_security="tls",
                                                    max_attempts=1), notify_customers=False)
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    s.add_return()
    assert notifier(db, config, clock).run().failed == 1
    [row] = outbox(db)
    assert "check smtp_security" in row.last_error
