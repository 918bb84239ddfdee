"""Through the real path: a sandbox shop, the Runner's pull → push → notification pass, a real SMTP server and a
webhook receiver on loopback, and restarts in between."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.kit.emulator import Emulator
from retsync.store.models import Notification, Return
from retsync.testing.config import config_for
from retsync.testing.contract import FAST, SANDBOX_URL
from tests.notify.conftest import Mailbox, Receiver

TEAM = "returns-team@example.com"
WEBHOOK_SECRET = "whsec-4c1d2e9a8b7f"


def notify_table(smtp: Mailbox, webhook: Receiver, **overrides: Any) -> dict[str, Any]:
    return {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
            "mail_from": "returns@shop.example", "sender_name": "Example Shop", "team_emails": [TEAM],
            "webhook_url": webhook.url, "webhook_secret": WEBHOOK_SECRET, "retry_base": "0s", **overrides}


def make_runner(db: Engine, db_url: str, tmp_path: Path, emulator: Emulator, notify: dict[str, Any]) -> Runner:
    cls = registry.get("woocommerce")
    assert cls is not None
    table = {**cls.sandbox_channel(SANDBOX_URL), **FAST, "notify_customers": True}
    config = config_for(tmp_path, db_url, {"shop": table}, notify=notify)
    runner = Runner(config, transports={"shop": emulator.transport()}, db=db)
    runner.open()
    return runner


def rows(db: Engine) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(Notification).order_by(Notification.id)))


def customer_of(db: Engine, order_id: int) -> tuple[str, str]:
    with db.connect() as conn:
        row = conn.execute(select(Return.customer_email, Return.external_id)
                           .where(Return.order_external_id == str(order_id))).one()
    return row.customer_email, row.external_id


def test_new_return_is_told_once_and_never_again_after_restarts(db: Engine, db_url: str, tmp_path: Path,
                                                                smtp: Mailbox, webhook: Receiver) -> None:
    emulator = registry.get("woocommerce").sandbox(seed=7)  # type: ignore[union-attr]
    notify = notify_table(smtp, webhook)
    runner = make_runner(db, db_url, tmp_path, emulator, notify)
    outcomes, _ = runner.sync_once()
    assert all(o.ok for o in outcomes)
    with db.connect() as conn:
        history = conn.execute(text("SELECT COUNT(*) FROM returns")).scalar_one()
    assert history > 0
    assert smtp.messages == [] and webhook.requests == [] and rows(db) == [], \
        "switching notifications on does not mail out the returns and flags that were already there"

    order_id = emulator.request_return()  # type: ignore[attr-defined]
    runner.sync_once()
    customer, external_id = customer_of(db, order_id)

    team_mail = smtp.to(TEAM)
    assert [m["Subject"] for m in team_mail] == [f"[retsync] New return shop/{external_id}"]
    assert "retsync returns show" in team_mail[0].get_content()
    assert customer not in team_mail[0].as_string(), "the team e-mail carries no customer address"
    customer_mail = smtp.to(customer)
    assert [m["Subject"] for m in customer_mail] == [f"We have registered your return for order {order_id}"]
    assert customer_mail[0]["From"] == "Example Shop <returns@shop.example>"
    assert customer_mail[0].get_content().rstrip().endswith("Example Shop")

    assert len(webhook.requests) == 1
    hook = webhook.requests[0]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-retsync-signature"] == expected
    assert hook.json["event"] == "new_return" and hook.json["data"]["external_id"] == external_id
    assert hook.headers["x-retsync-event"] == "new_return"
    assert customer not in hook.body.decode()

    sent = rows(db)
    assert {(r.kind, r.transport) for r in sent} == {("new_return", "email"), ("new_return", "webhook"),
                                                     ("customer_registered", "email")}
    assert all(r.state == "sent" and r.attempts == 1 for r in sent)
    runner.close()

    # a restart: a new Runner, new process state; the same database
    again = make_runner(db, db_url, tmp_path, emulator, notify)
    again.sync_once()
    assert len(smtp.messages) == 2 and len(webhook.requests) == 1, "nothing is sent twice"

    # refunded in the shop, pulled, and the daemon stops before its notification pass
    emulator.refund_in_admin(order_id, item_quantity=1)  # type: ignore[attr-defined]
    assert again.pull("shop").ok
    again.close()
    third = make_runner(db, db_url, tmp_path, emulator, notify)
    third.sync_once()
    refunds = [m for m in smtp.to(customer) if m["Subject"] == f"Refund for order {order_id}"]
    assert len(refunds) == 1
    assert "refunded" in refunds[0].get_content()
    third.close()
    fourth = make_runner(db, db_url, tmp_path, emulator, notify)
    fourth.sync_once()
    fourth.close()
    assert len(smtp.to(customer)) == 2 and len(webhook.requests) == 1
    assert all(r.state == "sent" and r.attempts == 1 for r in rows(db))

    with db.connect() as conn:
        stored = " ".join(str(row) for row in conn.execute(text("SELECT * FROM notifications")))
    assert WEBHOOK_SECRET not in stored
