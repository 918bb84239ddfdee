"""The daemon's `/metrics` (Prometheus' text format, by prometheus-client), `/healthz` and `/readyz`.

Opt-in (`[daemon] metrics_listen`) and on loopback only: the endpoint has no login. Figures the database holds
(returns stored, decisions and notifications by state, quarantined records, the last success of each channel)
are read at scrape time, so they are right after a restart and agree with `retsync channels`; what only the
running process sees (pulls, requests by status, rate-limit waits) is counted as it happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from retsync.kit.http import HttpEvent, observe
from retsync.kit.model import utcnow
from retsync.ops.health import age_seconds, read_figures, readiness_problems

log = structlog.get_logger(__name__)


class _StoreCollector(Collector):
    """The database's figures, read once per scrape."""

    def __init__(self, db: Engine, channels: Collection[str], clock: Callable[[], datetime]) -> None:
        self._db, self._channels, self._clock = db, channels, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("retsync_database_up", "1 when the last scrape could read the database")
        try:
            figures = read_figures(self._db, self._channels)
        except Exception as exc:  # noqa: BLE001 - a scrape of a daemon whose database is down says so
            log.debug("metrics_store_unreadable", error=f"{type(exc).__name__}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        success = GaugeMetricFamily("retsync_channel_last_success_timestamp_seconds",
                                    "when the channel's last pull succeeded (Unix time; absent: never)",
                                    labels=["channel"])
        failures = GaugeMetricFamily("retsync_channel_consecutive_failures", "failed polls in a row",
                                     labels=["channel"])
        stored = GaugeMetricFamily("retsync_returns_stored", "returns stored", labels=["channel"])
        quarantined = GaugeMetricFamily("retsync_quarantined_records", "records set aside and not read since",
                                        labels=["channel"])
        for channel in figures.channels:
            if channel.last_success_at is not None:
                success.add_metric([channel.name], channel.last_success_at.timestamp())
            failures.add_metric([channel.name], channel.consecutive_failures)
            stored.add_metric([channel.name], channel.returns)
            quarantined.add_metric([channel.name], channel.quarantined)
        decisions = GaugeMetricFamily("retsync_decisions", "decision lines by outbox state",
                                      labels=["channel", "state"])
        for (channel_name, state), count in sorted(figures.decisions.items()):
            decisions.add_metric([channel_name, state], count)
        oldest = GaugeMetricFamily("retsync_oldest_pending_decision_age_seconds",
                                   "age of the oldest decision waiting to be pushed (0: none waits)")
        oldest.add_metric([], age_seconds(figures.oldest_pending_at, self._clock))
        notifications = GaugeMetricFamily("retsync_notifications", "notifications by state", labels=["state"])
        for state, count in sorted(figures.notifications.items()):
            notifications.add_metric([state], count)
        yield from (success, failures, stored, quarantined, decisions, oldest, notifications)


class DaemonMetrics:
    """The registry of one daemon: the store's figures plus what the process counts itself."""

    def __init__(self, db: Engine, channels: Collection[str], clock: Callable[[], datetime] = utcnow) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.pulls = Counter("retsync_pulls", "pulls of a channel", ["channel"], registry=self.registry)
        self.pull_failures = Counter("retsync_pull_failures", "pulls that failed", ["channel"], registry=self.registry)
        self.requests = Counter("retsync_http_requests", "requests to a channel by the answer's status ('none': no "
                                "answer)", ["channel", "status"], registry=self.registry)
        self.rate_limit_waits = Counter("retsync_rate_limit_wait_seconds", "time requests were held because the "
                                        "channel was blocked (429, quota, Retry-After)", ["channel"],
                                        registry=self.registry)
        self.registry.register(_StoreCollector(db, channels, clock))
        self._stop_observing: Callable[[], None] | None = observe(self._request_seen)
        for channel in channels:  # every channel shows from the start, at zero
            self.pulls.labels(channel)
            self.pull_failures.labels(channel)
            self.rate_limit_waits.labels(channel)

    def _request_seen(self, event: HttpEvent) -> None:
        self.requests.labels(event.channel, str(event.status) if event.status is not None else "none").inc()
        if event.rate_limit_wait > 0:
            self.rate_limit_waits.labels(event.channel).inc(event.rate_limit_wait)

    def pull_done(self, channel: str, ok: bool) -> None:
        self.pulls.labels(channel).inc()
        if not ok:
            self.pull_failures.labels(channel).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None


class HealthServer:
    """`/metrics`, `/healthz` and `/readyz` on one loopback address, in a thread of their own."""

    def __init__(self, listen: str, metrics: DaemonMetrics, ready: Callable[[], list[str]]) -> None:
        host, _, port = listen.rpartition(":")
        self.metrics, self.ready = metrics, ready
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, server.metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._answer(200, b"ok\n")
                elif path == "/readyz":
                    problems = server.ready()
                    body = ("ready\n" if not problems else "".join(f"{p}\n" for p in problems)).encode()
                    self._answer(503 if problems else 200, body)
                else:
                    self._answer(404, b"not found: /metrics, /healthz, /readyz\n")

            def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - scrapes are not log lines
                pass

        self._server = _server_for(host.strip("[]"), int(port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="retsync-metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[0], self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _server_for(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    import socket

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    return Server((host, port), handler)


def ready_check(db: Engine, *, head: str | None, scheduler_running: Callable[[], bool], channels: Collection[str],
                threshold: int) -> Callable[[], list[str]]:
    return lambda: readiness_problems(db, head=head, scheduler_running=scheduler_running, channels=channels,
                                      threshold=threshold)
