"""Channels that report a delivered parcel or a refund without saying when (Allegro has no time for DELIVERED):
the change retsync itself saw after the watermark counts, a return first seen already in that state does not."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select

from retsync.store.models import Return, ReturnEvent
from tests.notify.conftest import Mailbox
from tests.notify.helpers import T0, Clock, Shop, make_config, notifier, outbox, shop

TEAM = "team@shop.example"


def status_seen(s: Shop, return_id: int, old: str | None, new: str, at: datetime) -> None:
    """What retsync's page writer records when a pull finds a return in a new status."""
    s.change(return_id, status=new)
    with s.db.begin() as conn:
        conn.execute(insert(ReturnEvent).values(return_id=return_id, return_line_id=None, at=at, kind="status",
                                                old_value=old, new_value=new, source="pull", detail=None))


def test_a_parcel_received_without_a_channel_time_is_told_once(db: Engine, db_url: str, tmp_path: Path,
                                                               smtp: Mailbox) -> None:
    clock = Clock(T0 - timedelta(days=2))
    config = make_config(tmp_path, db_url, {
        "enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
        "mail_from": "returns@shop.example", "team_emails": [TEAM], "team_events": ["received"]})
    s = shop(db, clock)
    before, _ = s.add_return()
    status_seen(s, before, "requested", "received", clock())  # delivered before notifications were switched on
    waiting, _ = s.add_return()
    clock.now = T0
    assert notifier(db, config, clock).run().derived == 0

    clock.advance(minutes=1)
    status_seen(s, waiting, "requested", "received", clock())
    backfilled, _ = s.add_return(created=T0 - timedelta(days=40), status="received")  # first seen as received
    status_seen(s, backfilled, None, "received", clock())
    refunded, _ = s.add_return()
    clock.advance(minutes=1)
    status_seen(s, refunded, "requested", "refunded", clock())

    summary = notifier(db, config, clock).run()
    with db.connect() as conn:
        names = dict(conn.execute(select(Return.id, Return.external_id)).all())
    assert {(row.kind, names[row.return_id]) for row in outbox(db) if row.audience == "team"} == {
        ("received", names[waiting])}
    assert f"[retsync] Parcel back, waiting for your decision: shop/{names[waiting]}" in {
        m["Subject"] for m in smtp.to(TEAM)}
    customers = {(row.kind, names[row.return_id]) for row in outbox(db) if row.audience == "customer"}
    assert ("customer_received", names[waiting]) in customers
    assert ("customer_refunded", names[refunded]) in customers
    assert ("customer_received", names[backfilled]) not in customers
    assert ("customer_received", names[before]) not in customers
    assert summary.failed == 0

    sent = len(smtp.messages)
    clock.advance(minutes=5)
    assert notifier(db, config, clock).run().derived == 0
    assert len(smtp.messages) == sent
