"""Running channels: one pass (`retsync sync`) or on a schedule (`retsync run`).

Each channel is pulled by its own APScheduler job at its own interval (with
jitter, one instance at a time, missed runs coalesced); one push job sends
due decisions. A failing channel is logged once, paused with a growing
backoff, and never holds up the others; its recovery is logged once too.
Stopping waits for the page being written, never for a whole history.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import FrameType

import httpx
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from retsync import registry
from retsync.config import Config, require_secrets
from retsync.intake.jobs import IntakeJobs, start_listener
from retsync.kit.contract import Connector, Runtime
from retsync.kit.http import AuthError, ChannelError, HttpEvent, Stopped, observe
from retsync.kit.model import utcnow
from retsync.kit.settings import ChannelSettings
from retsync.logs import scrub
from retsync.notify.outbox import Notifier, NotifySummary
from retsync.ops.service import ServiceHooks
from retsync.outbox.backoffice import BackOffice
from retsync.outbox.push import Outbox, PushSummary
from retsync.reconcile.linking import recheck_push_failures, reconcile_channel
from retsync.store.channels import (
    add_rate_limit_waits,
    ensure_channel,
    mark_pull_failed,
    mark_pull_started,
    mark_pull_succeeded,
)
from retsync.store.db import database_problem, describe_database, make_engine, require_current_schema
from retsync.store.lease import ChannelLeases, LeaseLost, Taken, heartbeat_interval, lease_length
from retsync.sync.engine import SyncEngine, data_problem, is_data_error
from retsync.sync.progress import PullProgress

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 8.0
"""After SIGTERM, how long running jobs get to reach a page boundary before the daemon closes around them."""
STOP_LIMIT_SECONDS = 10.0
"""After SIGTERM the process is gone within this long, whatever still runs (a request, a database write waiting
for a lock): every write is a transaction, so nothing half-written is left. The unit's TimeoutStopSec (15 s)
would SIGKILL it later and without a word; this says in the log what was still busy."""


def threads_keeping_alive() -> list[threading.Thread]:
    """The threads other than the calling one that the interpreter would wait for at its exit."""
    return [thread for thread in threading.enumerate()
            if thread is not threading.current_thread() and not thread.daemon and thread.is_alive()]


def leave_now(code: int, exit: Callable[[int], object] = os._exit) -> None:
    """End the process with `code` once the log is out, without waiting for the threads still busy (as
    `sys.exit` would): nothing half-written can remain, every write is a transaction."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    exit(code)


def _busy_threads() -> dict[str, str]:
    """Each thread other than this one that keeps the process alive, and where it is: file, line and function
    of its innermost three frames (code locations only, never values)."""
    frames = sys._current_frames()
    busy = {}
    for thread in threads_keeping_alive():
        frame, where = frames.get(thread.ident or -1), []
        while frame is not None and len(where) < 3:
            where.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
            frame = frame.f_back
        busy[thread.name] = " < ".join(where)
    return busy


def stop_within(limit: float = STOP_LIMIT_SECONDS, exit: Callable[[int], object] = os._exit) -> threading.Timer:
    """Started when a stop is asked for: after `limit` seconds, say what was still busy and end the process
    (`leave_now`, through `exit`)."""
    def overran() -> None:
        log.warning("stop_overran", after_s=limit, busy=_busy_threads(),
                    reason="still busy after the stop was asked for; leaving anyway, the running transactions "
                           "roll back")
        leave_now(0, exit)

    timer = threading.Timer(limit, overran)
    timer.daemon = True  # never keeps the process alive itself
    timer.start()
    return timer


def describe_failure(exc: BaseException, database: str | None = None) -> str:
    """One line for the merchant: what failed, without a traceback and without secrets."""
    if isinstance(exc, AuthError):
        text = f"authentication failed: {exc}"
    elif isinstance(exc, ChannelError):
        text = str(exc)
    elif is_data_error(exc):  # a value the database would not take: the data's problem, not the database's
        text = f"a record could not be stored, and no single record of its page is to blame: {data_problem(exc)}"
    elif isinstance(exc, (SQLAlchemyError, OSError)):
        text = database_problem(exc, database)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text)


@dataclass
class ChannelOutcome:
    channel: str
    ok: bool
    error: str | None = None
    returns_new: int = 0
    returns_updated: int = 0
    skipped: str | None = None
    """Not pulled: another instance holds the channel (it is being pulled, just not here)."""
    quarantined: int = 0
    """Records of this pull set aside in the quarantine (`v_quarantine`) instead of stored."""


class RateLimitWaits:
    """The requests each channel held back because the channel blocked us, counted as they happen (from the HTTP
    layer's events) and written to the channel's row after each pull and push pass, where `retsync channels` and
    the web console read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, float]] = {}
        self._stop_observing = observe(self._seen)

    def _seen(self, event: HttpEvent) -> None:
        if event.rate_limit_wait > 0:
            with self._lock:
                waits, seconds = self._pending.get(event.channel, (0, 0.0))
                self._pending[event.channel] = (waits + 1, seconds + event.rate_limit_wait)

    def flush(self, db: Engine, channel_ids: Mapping[str, int], now: datetime) -> None:
        with self._lock:
            pending = {name: counted for name, counted in self._pending.items() if name in channel_ids}
            for name in pending:
                del self._pending[name]
        for name, (waits, seconds) in pending.items():
            add_rate_limit_waits(db, channel_ids[name], waits, round(seconds, 3), now)

    def close(self) -> None:
        self._stop_observing()


@dataclass
class Runner:
    """The channels of one config, opened against one database."""

    config: Config
    transports: Mapping[str, httpx.BaseTransport] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = utcnow
    db: Engine | None = None
    hold_leases: bool = False
    """`retsync run` keeps each channel it pulls until it stops; `retsync sync` hands it back after its pass."""
    progress: PullProgress = field(default_factory=PullProgress)
    rate_limit_waits: RateLimitWaits = field(default_factory=RateLimitWaits)
    """Logs how long pulls go (every 30 s); `retsync sync` adds a counter per channel on a terminal."""

    def __post_init__(self) -> None:
        self.db = self.db or make_engine(self.config.settings.database_url())
        self.leases = ChannelLeases(self.db, clock=self.clock)
        self._held: set[int] = set()
        self._heartbeat_failing = False
        self._push_failing = False
        self.connectors: dict[str, Connector] = {}
        self.channel_ids: dict[str, int] = {}
        self._paused_until: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._back_office: BackOffice | None = None

    def open(self, channels: Iterable[str] | None = None) -> None:
        """Check the schema and build the connectors of the enabled (or named) channels."""
        assert self.db is not None
        require_current_schema(self.db)
        wanted = list(channels) if channels else list(self.config.enabled_channels)
        require_secrets(self.config, wanted, notify=self.config.settings.notify.enabled)
        for name in wanted:
            settings = self.config.channels[name]
            cls = registry.get(settings.connector)
            assert cls is not None, "config validation guarantees the connector exists"
            runtime = Runtime(state_dir=self.config.settings.daemon.state_dir, stop=self.stop,
                              transport=self.transports.get(name))
            self.connectors[name] = cls(name, settings, runtime)
            self.channel_ids[name] = ensure_channel(self.db, name, settings.connector, self.clock())

    def close(self) -> None:
        self.rate_limit_waits.close()
        for connector in self.connectors.values():
            connector.close()
        try:
            self.leases.close()
        except Exception as exc:  # leases lapse by themselves
            log.debug("lease_not_released", error=describe_failure(exc))
        if self.db is not None:
            self.db.dispose()

    def settings(self, channel: str) -> ChannelSettings:
        return self.config.channels[channel]

    def pull(self, channel: str) -> ChannelOutcome:
        """Pull every stream of one channel, then link what arrived; never raises."""
        assert self.db is not None
        channel_id = self.channel_ids[channel]
        bound = log.bind(channel=channel)
        try:
            taken = self.leases.acquire(channel_id, lease_length(self.settings(channel).poll_interval))
        except Exception as exc:
            return self._failed(channel, exc)
        if not taken.ok:
            return self._held_elsewhere(channel, taken)
        self._held.add(channel_id)
        if taken.taken_over:
            bound.info("channel_taken_over", previous_owner=taken.holder.owner, instance=self.leases.owner,
                       lease_expired_at=taken.holder.expires_at.isoformat() if taken.holder.expires_at else None)
        structlog.contextvars.bind_contextvars(channel=channel)
        try:
            mark_pull_started(self.db, channel_id, self.clock())
            engine = SyncEngine(self.db, channel=channel, channel_id=channel_id, settings=self.settings(channel),
                                connector=self.connectors[channel], stop=self.stop, clock=self.clock,
                                page_guard=lambda conn: self.leases.renew_in(conn, channel_id),
                                progress=self.progress)
            results = engine.sync()
            if not self.stop.is_set():
                pulled = [r.stats for r in results]
                reconcile_channel(self.db, channel_id, self.connectors[channel], self.settings(channel), self.clock(),
                                  pulled_changes=any(s.returns_new or s.returns_updated or s.orders_new
                                                     or s.orders_updated for s in pulled))
                self.back_office().enqueue(channel)
                self.back_office().read_back(channel)
        except Stopped:
            bound.info("pull_interrupted", reason="shutting down; the last stored page and its cursor are intact")
            return ChannelOutcome(channel, ok=True)
        except LeaseLost:
            self._held.discard(channel_id)
            bound.warning("channel_lease_lost", instance=self.leases.owner,
                          reason="another instance took the channel over; the page in hand was rolled back")
            return ChannelOutcome(channel, ok=True, skipped="another instance took the channel over")
        except Exception as exc:
            return self._failed(channel, exc)
        finally:
            structlog.contextvars.unbind_contextvars("channel")
            if not self.hold_leases:
                self._hand_back(channel_id)
            self._record_waits()
        try:
            previous_failures = mark_pull_succeeded(self.db, channel_id, self.clock())
        except Exception as exc:
            return self._failed(channel, exc)
        if previous_failures:
            bound.info("channel_recovered", after_failures=previous_failures)
        return ChannelOutcome(
            channel, ok=True,
            returns_new=sum(r.stats.returns_new for r in results),
            returns_updated=sum(r.stats.returns_updated for r in results),
            quarantined=sum(r.quarantined for r in results),
        )

    def _failed(self, channel: str, exc: Exception) -> ChannelOutcome:
        """Record and log a failed pull once; a database that cannot even record it is said so, not raised."""
        assert self.db is not None
        bound = log.bind(channel=channel)
        message = describe_failure(exc, describe_database(self.config.settings.database_url()))
        try:
            failures = mark_pull_failed(self.db, self.channel_ids[channel], message, self.clock())
        except Exception as record_exc:
            failures = self._failures.get(channel, 0) + 1
            bound.debug("failure_not_recorded", error=describe_failure(record_exc))
        if failures == 1:  # logged once; the following failures only count up in `retsync channels`
            if isinstance(exc, (ChannelError, SQLAlchemyError, OSError)):
                bound.error("channel_failed", error=message)
            else:
                bound.exception("channel_failed", error=message)
        else:
            bound.debug("channel_still_failing", error=message, failures=failures)
        return ChannelOutcome(channel, ok=False, error=message)

    def _held_elsewhere(self, channel: str, taken: Taken) -> ChannelOutcome:
        until = taken.holder.expires_at.isoformat() if taken.holder.expires_at else "?"
        log.debug("channel_held_elsewhere", channel=channel, holder=taken.holder.owner, until=until)
        self._held.discard(self.channel_ids[channel])
        return ChannelOutcome(channel, ok=True,
                              skipped=f"pulled by the instance {taken.holder.owner} (its lease runs until {until})")

    def _hand_back(self, channel_id: int) -> None:
        self._held.discard(channel_id)
        try:
            self.leases.release([channel_id])
        except Exception as exc:  # the lease lapses by itself
            log.debug("lease_not_released", error=describe_failure(exc))

    def heartbeat(self, scheduler: BackgroundScheduler | None = None) -> None:
        """Renew the leases this instance holds; start the pull of a channel whose holder died."""
        before = set(self._held)  # a pull taking its lease meanwhile is not "lost"
        try:
            held, free = self.leases.heartbeat(self.channel_ids.values())
        except Exception as exc:
            if not self._heartbeat_failing:  # once; a database that stays broken fails every channel's pull too
                log.warning("lease_heartbeat_failed", error=describe_failure(
                    exc, describe_database(self.config.settings.database_url())))
            self._heartbeat_failing = True
            return
        if self._heartbeat_failing:
            log.info("lease_heartbeat_recovered")
            self._heartbeat_failing = False
        for name, channel_id in self.channel_ids.items():
            if channel_id in before and channel_id not in held:
                log.warning("channel_lease_lost", channel=name, instance=self.leases.owner,
                            reason="another instance holds the channel now")
            if channel_id in free and scheduler is not None and not self.stop.is_set():
                try:
                    scheduler.modify_job(f"pull:{name}", next_run_time=datetime.now(timezone.utc))
                except Exception:  # the scheduler is shutting down
                    return
        self._held = held | (self._held - before)

    def release_leases(self) -> None:
        try:
            self.leases.release()
        except Exception as exc:
            log.debug("lease_not_released", error=describe_failure(exc))

    def outbox(self) -> Outbox:
        assert self.db is not None
        daemon = self.config.settings.daemon
        return Outbox(self.db, self.connectors, max_attempts=daemon.push_max_attempts,
                      retry_base=daemon.push_retry_base, poll_after=min(daemon.push_interval, timedelta(seconds=30)),
                      clock=self.clock)

    def back_office(self) -> BackOffice:
        """Marketplace returns held in a shop (`decisions_from`), and the decisions read back from it."""
        assert self.db is not None
        if self._back_office is None:
            daemon = self.config.settings.daemon
            self._back_office = BackOffice(self.db, self.config, self.connectors, self.channel_ids,
                                           connector_for=registry.get, clock=self.clock,
                                           max_attempts=daemon.push_max_attempts, retry_base=daemon.push_retry_base)
        return self._back_office

    def push(self, channels: list[str] | None = None) -> PushSummary:
        """Hand due returns to the shops that hold them, then send due decisions."""
        assert self.db is not None
        held = self.back_office().hold_due()
        summary = self.outbox().push_due(channels)
        summary.errors.extend(held.errors)
        recheck_push_failures(self.db, {name: (self.channel_ids[name], self.settings(name))
                                        for name in (channels or list(self.connectors))}, self.clock())
        self._record_waits()
        self.notify()
        return summary

    def _record_waits(self) -> None:
        """Rate-limit waits onto the channels' rows; a database that cannot take them now gets them next time."""
        assert self.db is not None
        try:
            self.rate_limit_waits.flush(self.db, self.channel_ids, self.clock())
        except (SQLAlchemyError, OSError) as exc:
            log.debug("rate_limit_waits_not_recorded", error=describe_failure(exc))

    def notify(self) -> NotifySummary:
        """The notification pass of [notify], after the push pass; its failure never stops pulling or pushing."""
        assert self.db is not None
        try:
            return Notifier(self.db, self.config, clock=self.clock).run()
        except Exception:
            log.exception("notify_pass_failed")
            return NotifySummary()

    def sync_once(self, channels: list[str] | None = None) -> tuple[list[ChannelOutcome], PushSummary]:
        """One pull of each channel, then one push pass."""
        outcomes = [self.pull(name) for name in (channels or list(self.connectors))]
        return outcomes, self.push(channels)

    # --- the schedule ---------------------------------------------------------------------------

    def _pull_job(self, channel: str) -> None:
        if time.monotonic() < self._paused_until.get(channel, 0.0) or self.stop.is_set():
            return
        outcome = self.pull(channel)
        if outcome.ok:
            self._paused_until.pop(channel, None)
            self._failures.pop(channel, None)
            return
        failures = self._failures.get(channel, 0) + 1
        self._failures[channel] = failures
        interval = self.settings(channel).poll_interval.total_seconds()
        pause = min(interval * (2 ** (failures - 1)), self.config.settings.daemon.failure_backoff_max.total_seconds())
        self._paused_until[channel] = time.monotonic() + max(0.0, pause - interval)

    def _push_job(self) -> None:
        if not self.stop.is_set():
            try:
                self.push()
            except (SQLAlchemyError, OSError) as exc:  # the database: said once, in words, until it recovers
                if not self._push_failing:
                    log.error("push_job_failed", error=describe_failure(
                        exc, describe_database(self.config.settings.database_url())))
                self._push_failing = True
                return
            except Exception:
                log.exception("push_job_failed")
                return
            if self._push_failing:
                log.info("push_job_recovered")
                self._push_failing = False

    def _wake_push_job(self, scheduler: BackgroundScheduler) -> None:
        """A decision recorded (by `retsync decide`, the web console, a shop's back office) is pushed within
        `decision_check`, not at the next push pass: the push job is moved to now when anything is due."""
        if self.stop.is_set():
            return
        try:
            due = self.outbox().anything_due(list(self.connectors))
        except (SQLAlchemyError, OSError):
            return  # the push job says what is wrong with the database, once
        job = scheduler.get_job("push") if due else None
        if job is not None and job.next_run_time is not None and job.next_run_time > self.clock():
            scheduler.modify_job("push", next_run_time=self.clock())

    def schedule(self) -> BackgroundScheduler:
        """The jobs of `retsync run`: one pull job per channel, one push job; each runs once at start."""
        daemon = self.config.settings.daemon
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=min(8, len(self.connectors) + 1))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        now = self.clock()
        for name in self.connectors:
            scheduler.add_job(
                self._pull_job, "interval", args=[name], id=f"pull:{name}", name=f"pull {name}",
                seconds=self.settings(name).poll_interval.total_seconds(),
                jitter=daemon.jitter.total_seconds() or None, next_run_time=now,
            )
        scheduler.add_job(self._push_job, "interval", id="push", name="push decisions",
                          seconds=daemon.push_interval.total_seconds(), next_run_time=now + timedelta(seconds=2))
        scheduler.add_job(self._wake_push_job, "interval", args=[scheduler], id="push-wake",
                          name="push decisions as soon as they are recorded",
                          seconds=daemon.decision_check.total_seconds(), next_run_time=now + daemon.decision_check)
        IntakeJobs(self.db, self.config, clock=self.clock, stop=self.stop).schedule(scheduler, now)
        beat = heartbeat_interval(lease_length(self.settings(name).poll_interval) for name in self.connectors)
        scheduler.add_job(self.heartbeat, "interval", args=[scheduler], id="leases", name="renew channel leases",
                          seconds=beat.total_seconds(), next_run_time=now + beat)
        return scheduler


def run_forever(runner: Runner, *, install_signals: bool = True, stop_limit: float | None = None) -> int:
    """`retsync run`: schedule, wait for SIGTERM/SIGINT, stop within the grace period.

    With `stop_limit` (the CLI, which owns the process) the process ends that many seconds after the stop was
    asked for, even if something still hangs in the steps after the grace period or at the interpreter's exit."""
    runner.hold_leases = True
    scheduler = runner.schedule()
    service = ServiceHooks(runner)  # systemd's READY/STATUS/WATCHDOG, /metrics, the retention job
    service.prepare(scheduler)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        runner.stop.set()

    if install_signals:
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    assert runner.db is not None
    listener = start_listener(runner.config, runner.db)  # the returns webhook, where [returns_webhook] is set
    scheduler.start()
    service.started()
    log.info("daemon_started", channels=sorted(runner.connectors), push_interval_s=
             runner.config.settings.daemon.push_interval.total_seconds())
    runner.stop.wait()
    if stop_limit is not None:
        stop_within(stop_limit)
    service.stopping()
    # Jobs see the stop flag between pages and in every backoff wait; a page being written finishes or
    # rolls back as a whole. Whatever is still busy after the grace period is left to the OS.
    scheduler.shutdown(wait=False)
    if listener is not None:
        listener.stop()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for thread in threads_keeping_alive():
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    runner.release_leases()  # another instance takes the channels over at its next heartbeat, not after a lapse
    service.close()
    log.info("daemon_stopped")
    return 0
