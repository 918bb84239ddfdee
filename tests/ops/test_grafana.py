"""contrib/grafana-retsync.json charts only metrics the daemon serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from retsync.kit.http import HttpEvent
from retsync.ops.metrics import DaemonMetrics
from retsync.store.db import make_engine

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana-retsync.json"


def test_every_chart_reads_a_metric_the_daemon_serves(migrated_sqlite: Path) -> None:
    db = make_engine(f"sqlite:///{migrated_sqlite}")
    metrics = DaemonMetrics(db, ["shop"])
    metrics._request_seen(HttpEvent("shop", "GET", "shop.example.com", 429, rate_limit_wait=0.5))
    try:
        served = set(re.findall(r"^# TYPE (\S+) (\w+)$", metrics.exposition().decode(), flags=re.M))
    finally:
        metrics.close()
        db.dispose()
    names = {name for name, _kind in served if not name.endswith("_created")}
    dashboard = json.loads(DASHBOARD.read_text())
    charted = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"retsync_\w+", target["expr"])}
    assert charted and charted <= names, f"charted but not served: {sorted(charted - names)}"
    uncharted = names - charted - {"retsync_database_up"}
    assert not uncharted, f"served but not charted: {sorted(uncharted)}"
