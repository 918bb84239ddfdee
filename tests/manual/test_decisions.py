"""A decision on a manual return: "pushed" is recorded at once, and the customer hears of it once, by e-mail,
only where the channel's customer e-mails are on."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.intake.manual import Entry, add
from retsync.kit.model import DecisionKind, ReturnStatus
from retsync.notify.events import Deriver
from retsync.outbox.decisions import record_decision
from retsync.testing.config import config_for

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def runner_for(db: Engine, db_url: str, tmp_path: Path, notify_customers: bool) -> Runner:
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual", "notify_customers": notify_customers}},
                        notify={"smtp_host": "127.0.0.1", "mail_from": "shop@example.com"})
    runner = Runner(config, db=db, clock=lambda: NOW)
    runner.open()
    return runner


@pytest.mark.parametrize("notify_customers", [True, False])
def test_a_decision_is_pushed_at_once_and_the_customer_told_once_where_e_mails_are_on(
        db: Engine, db_url: str, tmp_path: Path, notify_customers: bool) -> None:
    runner = runner_for(db, db_url, tmp_path, notify_customers)
    try:
        settings = runner.config.channels["paper"]
        Deriver(db, runner.config.settings.notify, runner.config.channels).derive(NOW - timedelta(hours=1))
        external_id, _ = add(db, "paper", settings, Entry(lines=[("SKU-1", 2)], email="anna@example.com",
                                                           created_at=NOW), NOW)
        record_decision(db, f"paper/{external_id}", DecisionKind.ACCEPT, note="refund sent by bank transfer",
                        connector_for=registry.get, now=NOW)
        summary = runner.outbox().push_due()
        assert (summary.pushed, summary.failed, summary.unsupported) == (1, 0, 0)
        deriver = Deriver(db, runner.config.settings.notify, runner.config.channels)
        deriver.derive(NOW + timedelta(minutes=1))
        deriver.derive(NOW + timedelta(minutes=2))
        assert runner.outbox().push_due().attempted == 0, "pushed once, never again"
        with db.connect() as conn:
            state = conn.execute(text("SELECT state, reference FROM decisions")).one()
            told = conn.execute(text("SELECT recipient, payload FROM notifications WHERE kind = 'customer_decided'"
                                     )).all()
        assert state[0] == "pushed" and state[1]
        if notify_customers:
            assert [(row[0], (json.loads(row[1]) if isinstance(row[1], str) else row[1])["decisions"])
                    for row in told] == [
                ("anna@example.com", ["accept"])]
        else:
            assert told == []
    finally:
        runner.close()


def test_the_connector_pulls_nothing_and_takes_every_decision_kind() -> None:
    cls = registry.get("manual")
    assert cls is not None and cls.capabilities.streams == ()
    assert all(cls.capabilities.supports(kind) for kind in DecisionKind)
    assert ReturnStatus.REQUESTED  # the status a person's entry starts in
