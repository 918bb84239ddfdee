"""What `retsync run` does beside its jobs, as a service: tells systemd it is ready, how the channels fare and that
the scheduler lives (the watchdog), and serves /metrics, /healthz and /readyz where the config asks for them."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from retsync.ops.health import read_figures, status_line
from retsync.ops.metrics import DaemonMetrics, HealthServer, ready_check
from retsync.ops.sdnotify import SystemdNotifier
from retsync.store.db import head_revision

log = structlog.get_logger(__name__)

STATUS_EVERY_SECONDS = 30.0
"""How often STATUS= is refreshed when systemd asks for no watchdog."""
RETENTION_EVERY_HOURS = 24
"""Personal data past its retention goes within a day; the first pass runs a minute after the start."""
EXECUTOR = "service"
"""The service's jobs run on an executor of their own: channels busy on every worker must not starve the watchdog,
while a scheduler whose loop died stops it, which is what the watchdog is for."""


class ServiceHooks:
    """Built by `run_forever` around a `Runner` (typed loosely: the daemon imports this module, not the reverse)."""

    def __init__(self, runner: Any, notifier: SystemdNotifier | None = None) -> None:
        self.runner = runner
        self.notifier = notifier or SystemdNotifier()
        self.daemon = runner.config.settings.daemon
        self.channels = sorted(runner.connectors)
        self.metrics: DaemonMetrics | None = None
        self.server: HealthServer | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._saying = threading.Lock()
        self._stopping = False

    def prepare(self, scheduler: BackgroundScheduler) -> None:
        """Before the scheduler starts: the service's jobs, and the metrics endpoint (so a bad address stops the
        start with its reason instead of a daemon half up)."""
        self._scheduler = scheduler
        scheduler.add_executor(ThreadPoolExecutor(max_workers=1), EXECUTOR)
        if self.notifier.enabled:
            every = self.notifier.watchdog_seconds / 2 if self.notifier.watchdog_seconds else STATUS_EVERY_SECONDS
            scheduler.add_job(self.beat, "interval", id="service:watchdog", name="systemd watchdog and status",
                              seconds=every, executor=EXECUTOR)
        keep = self.runner.config.settings.privacy.retain_personal_data
        if keep is not None:
            from retsync.ops.privacy import retention_job

            scheduler.add_job(retention_job(self.runner.db, keep, self.daemon.state_dir, self.runner.clock), "interval",
                              id="privacy:retention", name="erase personal data past retain_personal_data",
                              hours=RETENTION_EVERY_HOURS, next_run_time=datetime.now(timezone.utc) +
                              timedelta(minutes=1))  # default executor: a long pass must not hold up the watchdog
        if self.daemon.metrics_listen:
            self._start_metrics()

    def _start_metrics(self) -> None:
        runner = self.runner
        self.metrics = DaemonMetrics(runner.db, self.channels, clock=runner.clock)
        pull, metrics = runner.pull, self.metrics

        def counted_pull(channel: str) -> Any:
            outcome = pull(channel)
            if not outcome.skipped:
                metrics.pull_done(channel, outcome.ok)
            return outcome

        runner.pull = counted_pull  # the Runner is the daemon's; counting wraps it instead of reaching into it
        ready = ready_check(runner.db, head=head_revision(runner.db), scheduler_running=self.scheduler_healthy,
                            channels=self.channels, threshold=self.daemon.ready_failed_polls)
        try:
            self.server = HealthServer(self.daemon.metrics_listen, self.metrics, ready)
        except OSError as exc:
            self.metrics.close()
            from retsync.config import ConfigError

            raise ConfigError(f"{runner.config.path}: [daemon] key `metrics_listen`: cannot listen on "
                              f"{self.daemon.metrics_listen}: {exc.strerror or exc}") from None
        self.server.start()
        host, port = self.server.address
        log.info("metrics_listening", address=f"{host}:{port}", paths=["/metrics", "/healthz", "/readyz"])

    def scheduler_healthy(self) -> bool:
        """The scheduler runs and every channel still has its pull job."""
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running or self.runner.stop.is_set():
            return False
        return all(scheduler.get_job(f"pull:{name}") is not None for name in self.channels)

    def status(self) -> str:
        try:
            return status_line(read_figures(self.runner.db, self.channels))
        except Exception as exc:  # noqa: BLE001 - the status line reports the database, it must not fail with it
            return f"{len(self.channels)} channels; the database cannot be read ({type(exc).__name__})"

    def started(self) -> None:
        """After the scheduler started (the schema was checked when the runner opened): READY=1."""
        self.notifier.ready(self.status())

    def beat(self) -> None:
        """WATCHDOG=1 with the channels' state, only while the scheduler is healthy: otherwise systemd restarts us."""
        with self._saying:
            if self._stopping:
                return  # STOPPING=1 was said, and systemd stops watching
            if not self.scheduler_healthy():
                self.notifier.status("the scheduler is not running its jobs")
                return
            self.notifier.watchdog()  # first: a database slow to answer the status must not cost a restart
        status = self.status()
        with self._saying:
            if not self._stopping:
                self.notifier.status(status)

    def stopping(self) -> None:
        with self._saying:
            self._stopping = True
            self.notifier.stopping("stopping: finishing the page being written")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
