"""What `retsync run` does for returns without an API: the import folders, the parcel tracker, the webhook.

The daemon adds these jobs beside its pulls (`schedule`) and starts the listener beside its scheduler
(`start_listener`); each job catches and logs its own failure, so a broken export or InPost being down never
stops a pull or a push.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine

from retsync.config import Config
from retsync.intake.folder import import_folder
from retsync.intake.records import IntakeWriter, entered_by_people
from retsync.intake.tracking import ParcelTracker
from retsync.intake.webhook import WebhookListener

log = structlog.get_logger(__name__)

TRACKING_PASS = timedelta(minutes=5)
"""How often the tracking job runs; each parcel is looked up only every `track_every`, so most passes ask for a
few parcels or none."""


class IntakeJobs:
    def __init__(self, db: Engine, config: Config, *, clock: Callable[[], datetime],
                 stop: threading.Event | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.stop = stop or threading.Event()
        self.transport = transport

    def folders(self) -> dict[str, Any]:
        return {name: settings for name, settings in self.config.enabled_channels.items()
                if entered_by_people(settings.connector) and getattr(settings, "import_dir", None) is not None}

    def manual_channels(self) -> dict[str, Any]:
        return {name: settings for name, settings in self.config.enabled_channels.items()
                if entered_by_people(settings.connector)}

    def link_orders(self, channel: str) -> None:
        """Returns of a manual channel whose order arrived since: linked to it and to its customer."""
        if self.stop.is_set():
            return
        settings = self.config.channels[channel]
        try:
            written = IntakeWriter(self.db, channel, settings, source="reconcile",
                                   orders_from=getattr(settings, "orders_from", ())).link_pending(self.clock())
            if written.linked:
                log.info("manual_returns_linked", channel=channel, linked=len(written.linked))
        except Exception:
            log.exception("manual_link_failed", channel=channel)

    def import_folder(self, channel: str) -> None:
        if self.stop.is_set():
            return
        try:
            import_folder(self.db, channel, self.config.channels[channel], self.clock(),
                          base=self.config.path.parent)
        except Exception:  # the database, the disk: logged, tried again on the next pass
            log.exception("import_folder_failed", channel=channel)

    def track(self) -> None:
        inpost = self.config.settings.carriers.inpost
        if inpost is None or self.stop.is_set():
            return
        tracker = ParcelTracker(self.db, inpost, self.config.channels, clock=self.clock, transport=self.transport,
                                stop=self.stop)
        try:
            result = tracker.run()
            if result.checked or result.errors:
                log.info("tracking_pass", carrier="inpost", checked=result.checked, in_transit=len(result.in_transit),
                         received=len(result.received), problems=len(result.problems), errors=len(result.errors))
        except Exception:
            log.exception("tracking_failed", carrier="inpost")
        finally:
            tracker.close()

    def schedule(self, scheduler: Any, now: datetime) -> None:
        """Per manual channel a job linking returns to orders stored since, and an import job where it has an
        `import_dir` (both at its poll_interval); one tracking job."""
        for name, settings in self.manual_channels().items():
            scheduler.add_job(self.link_orders, "interval", args=[name], id=f"link:{name}",
                              name=f"link returns of {name} to orders", seconds=settings.poll_interval.total_seconds(),
                              next_run_time=now + timedelta(seconds=2))
        for name, settings in self.folders().items():
            scheduler.add_job(self.import_folder, "interval", args=[name], id=f"import:{name}",
                              name=f"import folder of {name}", seconds=settings.poll_interval.total_seconds(),
                              next_run_time=now)
        if self.config.settings.carriers.inpost is not None:
            scheduler.add_job(self.track, "interval", id="tracking:inpost", name="follow InPost parcels",
                              seconds=TRACKING_PASS.total_seconds(), next_run_time=now + timedelta(seconds=3))


def start_listener(config: Config, db: Engine) -> WebhookListener | None:
    """The returns webhook of `retsync run`, when `[returns_webhook]` is configured."""
    if config.settings.returns_webhook is None:
        return None
    listener = WebhookListener(config, db)
    listener.start()
    log.info("webhook_listening", host=config.settings.returns_webhook.host, port=config.settings.returns_webhook.port)
    return listener
