"""Which events become notifications: after the watermark only, each once, in the right words."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from retsync.store.models import Return
from tests.notify.conftest import Mailbox, Receiver
from tests.notify.helpers import T0, Clock, make_config, notifier, outbox, shop

TEAM = "team@shop.example"


def test_every_event_kind_is_derived_once_and_history_is_not(db: Engine, db_url: str, tmp_path: Path,
                                                              smtp: Mailbox, webhook: Receiver) -> None:
    clock = Clock(T0 - timedelta(days=1))
    config = make_config(tmp_path, db_url, {
        "enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
        "mail_from": "returns@shop.example", "team_emails": [TEAM], "webhook_url": webhook.url,
        "customer_languages": {"shop": "pl"}})
    s = shop(db, clock)
    old, old_line = s.add_return()
    s.flag(old, "past_return_window")
    clock.now = T0
    first = notifier(db, config, clock).run()
    assert (first.derived, first.sent) == (0, 0) and outbox(db) == []

    clock.advance(minutes=1)
    fresh, _ = s.add_return()
    s.change(old, status="received", received_at=clock())
    s.flag(old, "refund_overdue", "received 20 days ago, not refunded")
    s.flag(old, "decision_push_failed")  # told as push_failed, per decision, not as a flag
    backfilled, _ = s.add_return(created=T0 - timedelta(days=30))  # first seen now, but registered long ago
    failing, failing_line = s.add_return()
    s.decision(failing, failing_line, "accept", "failed", attempts=8, last_error="HTTP 409: already refunded")
    decided, decided_line = s.add_return(status="decided")
    s.decision(decided, decided_line, "accept", "pushed", pushed_at=clock())
    s.flag(fresh, "not_shipped_by_customer", "registered 7 days ago, no parcel movement")

    summary = notifier(db, config, clock).run()
    with db.connect() as conn:
        names = dict(conn.execute(select(Return.id, Return.external_id)).all())
    got = {(row.kind, names[row.return_id], row.transport) for row in outbox(db)}
    team = {("new_return", names[r]) for r in (fresh, failing, decided)} | {
        ("received", names[old]), ("new_flag", names[old]), ("new_flag", names[fresh]),
        ("push_failed", names[failing])}
    customers = {("customer_registered", names[r]) for r in (fresh, failing, decided)} | {
        ("customer_received", names[old]), ("customer_decided", names[decided]),
        ("customer_reminder", names[fresh])}
    assert got == {(k, r, t) for k, r in team for t in ("email", "webhook")} | {(k, r, "email") for k, r in customers}
    assert names[backfilled] not in {r for _, r, _ in got}
    assert summary.sent == len(got) and summary.failed == 0

    subjects = {m["Subject"] for m in smtp.to(TEAM)}
    assert f"[retsync] Flag refund_overdue on shop/{names[old]}" in subjects
    assert f"[retsync] Decision not accepted by shop: shop/{names[failing]}" in subjects
    assert f"[retsync] Parcel back, waiting for your decision: shop/{names[old]}" in subjects
    failed_mail = next(m for m in smtp.to(TEAM) if m["Subject"].startswith("[retsync] Decision not accepted"))
    assert "HTTP 409: already refunded" in failed_mail.get_content() and "8 attempt" in failed_mail.get_content()
    polish = {m["Subject"]: m.get_content() for m in smtp.to("anna.nowak@example.pl")}
    assert "Zarejestrowaliśmy zwrot do zamówienia O2" in polish
    assert "zwrot został przyjęty" in polish[f"Decyzja w sprawie zwrotu do zamówienia {names[decided].replace('R', 'O')}"]
    reminder = polish["Przypomnienie: zwrot do zamówienia O2 nie został jeszcze wysłany"]
    assert "2 × Blue shirt (SH-1)" in reminder and "Dzień dobry Anna Nowak" in reminder
    assert {r.json["event"] for r in webhook.requests} == {k for k, _ in team}

    mails, hooks = len(smtp.messages), len(webhook.requests)
    clock.advance(minutes=5)
    again = notifier(db, config, clock).run()
    assert (again.derived, again.sent) == (0, 0)
    assert (len(smtp.messages), len(webhook.requests)) == (mails, hooks)


def test_customer_emails_only_where_the_channel_asks_and_an_address_is_known(db: Engine, db_url: str,
                                                                           tmp_path: Path, smtp: Mailbox) -> None:
    clock = Clock()
    notify = {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
              "mail_from": "returns@shop.example"}
    s = shop(db, clock)
    notifier(db, make_config(tmp_path, db_url, notify, notify_customers=False), clock).run()
    clock.advance(minutes=1)
    s.add_return()
    assert notifier(db, make_config(tmp_path, db_url, notify, notify_customers=False), clock).run().derived == 0

    # switched on for the channel later: its own watermark starts now, the return above is not mailed
    clock.advance(minutes=10)
    on = make_config(tmp_path, db_url, notify)
    assert notifier(db, on, clock).run().derived == 0
    clock.advance(minutes=1)
    s.add_return(email=None)
    s.add_return(email="piotr@example.com")
    assert notifier(db, on, clock).run().sent == 1
    assert [e.rcpt_tos for e in smtp.envelopes] == [["piotr@example.com"]]
    assert "Hello Anna Nowak," in smtp.messages[0].get_content()


def test_a_failed_act_on_a_two_line_return_is_told_once(db: Engine, db_url: str, tmp_path: Path,
                                                          webhook: Receiver) -> None:
    """A whole-return decision is one act at the channel; when the channel refuses it, the team hears it once,
    not once per line."""
    clock = Clock(T0)
    config = make_config(tmp_path, db_url, {"enabled": True, "webhook_url": webhook.url,
                                            "team_events": ["push_failed"]})
    s = shop(db, clock)
    notifier(db, config, clock).run()
    clock.advance(minutes=1)
    failing, first_line = s.add_return()
    second_line = s.add_line(failing)
    for line in (first_line, second_line):
        s.decision(failing, line, "accept", "failed", act_key="act-1", last_error="HTTP 409: already refunded")
    notifier(db, config, clock).run()
    assert [(row.kind, row.transport) for row in outbox(db)] == [("push_failed", "webhook")]
