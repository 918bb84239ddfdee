"""What /metrics says about decisions, notifications and the quarantine, read from the store at scrape time."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Engine, func, select

from retsync import registry
from retsync.kit.model import DecisionKind
from retsync.ops.metrics import DaemonMetrics
from retsync.outbox.decisions import record_decision
from retsync.store.models import Decision
from tests.ops.test_privacy import _stored


def _value(body: str, sample: str) -> float | None:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", body, flags=re.M)
    return float(match.group(1)) if match else None


def test_decisions_waiting_and_their_age_notifications_and_quarantine(db: Engine) -> None:
    _stored(db)
    record_decision(db, "shop/R2", DecisionKind.ACCEPT, connector_for=registry.get)
    with db.connect() as conn:
        created = conn.execute(select(func.min(Decision.created_at))).scalar_one()
    metrics = DaemonMetrics(db, ["shop"], clock=lambda: created + timedelta(seconds=90))
    try:
        body = metrics.exposition().decode()
    finally:
        metrics.close()
    assert _value(body, 'retsync_decisions{channel="shop",state="pending"}') == 1
    assert _value(body, "retsync_oldest_pending_decision_age_seconds") == 90.0
    assert _value(body, 'retsync_notifications{state="sent"}') == 1
    assert _value(body, 'retsync_quarantined_records{channel="shop"}') == 0, "a resolved record is not counted"
    assert _value(body, 'retsync_returns_stored{channel="shop"}') == 3
