"""A record set aside in the quarantine is told to the team once, by e-mail and webhook, without the customer."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from retsync.kit.records import Quarantined
from retsync.notify.outbox import notification_problems
from retsync.store.models import QuarantinedRecord
from retsync.store.quarantine import resolve, set_aside
from tests.notify.conftest import Mailbox, Receiver
from tests.notify.helpers import T0, Clock, Shop, make_config, notifier, outbox, shop

TEAM = "team@shop.example"
BUYER = {"id": 77, "billing": {"first_name": "Jan", "last_name": "Kowalski", "email": "jan.kowalski@example.pl",
                               "phone": "+48 600 100 200"}, "line_items": [{"quantity": "1e30"}]}


def _set_aside(s: Shop, kind: str, external_id: str | None, reason: str, payload: Any = None) -> int:
    with s.db.begin() as conn:
        set_aside(conn, s.channel_id, "returns", [Quarantined(kind, external_id, reason, payload)], s.clock())
        return int(conn.execute(select(QuarantinedRecord.id).order_by(QuarantinedRecord.id.desc())).scalars().first())


def _notify(smtp: Mailbox, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
            "mail_from": "returns@shop.example", "team_emails": [TEAM], **extra}


def test_a_quarantined_record_reaches_the_team_once_without_the_customer(
        db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox, webhook: Receiver) -> None:
    clock = Clock(T0 - timedelta(days=1))
    config = make_config(tmp_path, db_url, _notify(smtp, webhook_url=webhook.url))
    s = shop(db, clock)
    _set_aside(s, "return", "R1", "quantity out of range")  # before notifications were on: history
    clock.now = T0
    assert notifier(db, config, clock).run().derived == 0

    clock.advance(minutes=1)
    told = _set_aside(s, "return", "R77", "line_items.0.quantity: invalid literal 'Jan Kowalski' (+48 600 100 200)",
                      BUYER)
    _set_aside(s, "order", None, "missing field 'id'", {"total": "12.00"})
    fixed = _set_aside(s, "order", "O5", "the database refused it: DataError: value too long")
    with db.begin() as conn:
        resolve(conn, s.channel_id, "order", ["O5"], clock())  # read normally before anyone was told

    first = notifier(db, config, clock).run()
    assert (first.sent, first.failed) == (4, 0), "two records, each by e-mail and by webhook"
    assert {row.event_key for row in outbox(db)} == {f"record_quarantined:{told}", f"record_quarantined:{told + 1}"}
    assert f"record_quarantined:{fixed}" not in {row.event_key for row in outbox(db)}
    assert all(row.channel_id == s.channel_id and row.return_id is None for row in outbox(db))

    mails = {m["Subject"]: m.get_content() for m in smtp.to(TEAM)}
    assert set(mails) == {"[retsync] Set aside: return shop/R77 could not be stored",
                          "[retsync] Set aside: order shop/- could not be stored"}
    body = mails["[retsync] Set aside: return shop/R77 could not be stored"]
    assert "Reason: line_items.0.quantity: invalid literal 'J*** K***' (+***)" in body
    assert "Seen 1 time(s)" in body and f"quarantine_id {told}" in body
    hooks = {r.json["data"]["external_id"]: r for r in webhook.requests}
    assert set(hooks) == {"R77", "-"}
    hook = hooks["R77"]
    assert hook.headers["x-retsync-event"] == "record_quarantined"
    assert hook.json["event"] == "record_quarantined" and hook.json["key"] == f"record_quarantined:{told}"
    assert hook.json["data"] == {
        "quarantine_id": told, "channel": "shop", "stream": "returns", "record_kind": "return", "external_id": "R77",
        "reason": "line_items.0.quantity: invalid literal 'J*** K***' (+***)", "times_seen": 1,
        "first_seen_at": clock().isoformat()}
    sent = json.dumps([r.json for r in webhook.requests]) + json.dumps(list(mails.values()))
    assert "Kowalski" not in sent and "600 100 200" not in sent and "jan.kowalski" not in sent
    assert "1e30" not in sent, "the payload is never sent"

    clock.advance(minutes=5)
    _set_aside(s, "return", "R77", "still unreadable", BUYER)  # seen again: the same row, already told
    again = notifier(db, config, clock).run()
    assert (again.derived, again.sent) == (0, 0)
    assert (len(smtp.messages), len(webhook.requests)) == (2, 2)


def test_a_record_read_normally_before_its_notification_went_out_is_dropped(
        db: Engine, db_url: str, tmp_path: Path, smtp: Mailbox) -> None:
    clock = Clock()
    config = make_config(tmp_path, db_url, _notify(smtp, retry_base="10m"))
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    _set_aside(s, "return", "R9", "missing field 'date_created_gmt'")
    _set_aside(s, "return", "R10", "missing field 'date_created_gmt'")
    smtp.answers += ["451 4.3.0 try later", "451 4.3.0 try later"]
    assert notifier(db, config, clock).run().retrying == 2
    with db.begin() as conn:
        resolve(conn, s.channel_id, "return", ["R9"], clock())  # the channel fixed it meanwhile

    clock.advance(minutes=15)
    summary = notifier(db, config, clock).run()
    assert (summary.sent, summary.retrying, summary.failed) == (1, 0, 0)
    assert [m["Subject"] for m in smtp.messages] == ["[retsync] Set aside: return shop/R10 could not be stored"]
    states = {row.event_key.rsplit(":", 1)[1]: (row.state, row.last_error) for row in outbox(db)}
    assert sorted(states.values()) == [("dropped", None), ("sent", None)]
    assert notification_problems(db) == {}, "a dropped notification is no problem to show"
    clock.advance(hours=1)
    assert notifier(db, config, clock).run().sent == 0 and len(smtp.messages) == 1


def test_in_polish_and_only_when_the_team_asked_for_it(db: Engine, db_url: str, tmp_path: Path,
                                                        smtp: Mailbox) -> None:
    clock = Clock()
    s = shop(db, clock)
    without = make_config(tmp_path, db_url, _notify(smtp, team_events=["new_return", "new_flag"]))
    notifier(db, without, clock).run()
    clock.advance(minutes=1)
    _set_aside(s, "order", "O3", "order O3: a return without any date")
    assert notifier(db, without, clock).run().derived == 0

    polish = make_config(tmp_path, db_url, _notify(smtp, team_language="pl"))
    assert notifier(db, polish, clock).run().sent == 1
    [mail] = smtp.messages
    assert mail["Subject"] == "[retsync] Odłożono zamówienie shop/O3: nie udało się go zapisać"
    assert "Powód: order O3: a return without any date" in mail.get_content()
    assert "Kanał shop przysłał zamówienie O3" in mail.get_content()
