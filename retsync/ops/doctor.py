"""`retsync doctor`: everything a first start (or a bad night) depends on, checked in one go, one line each.

Each check says what it found in the admin's words and what to do; the command exits 1 when any fails, so it
fits a deploy script or a monitoring probe. Nothing is written: a database that does not exist yet is reported,
not created, and a channel is asked one read (the first page of its returns), never sent a change.
"""

from __future__ import annotations

import email.utils
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from retsync import registry
from retsync.config import Config, ConfigError, config_path, load_config
from retsync.kit.contract import Connector, PullContext, Runtime, Stream
from retsync.kit.http import HttpEvent, observe
from retsync.kit.model import utcnow
from retsync.kit.secrets import SecretError, unreadable_secrets
from retsync.logs import scrub
from retsync.store.db import current_revision, database_problem, describe_database, head_revision, make_engine

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE_BYTES = 500 * 1024 * 1024
"""Below this the next backfill or `VACUUM` may fill the disk; SQLite needs room for its WAL beside the file."""
MAX_CLOCK_SKEW = timedelta(seconds=60)
"""Beyond a minute, date cursors and OAuth token lifetimes go wrong: records updated at the edge are missed."""


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def run_checks(config_file: str | None, *, clock: Callable[[], datetime] = utcnow,
               transports: dict[str, httpx.BaseTransport] | None = None) -> list[Check]:
    """Every check, in the order a first start needs them; the ones needing the config only if it loads."""
    path = config_path(config_file)
    try:
        config = load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)
    except ConfigError as exc:
        return [Check("config", FAIL, str(exc))]
    enabled = len(config.enabled_channels)
    checks = [Check("config", OK, f"{path}: {enabled} of {len(config.channels)} channel"
                                  f"{'s' if len(config.channels) != 1 else ''} enabled")]
    checks.append(_database(config))
    checks.extend(_state_dir(config))
    checks.append(_keyring(config))
    if config.settings.notify.enabled:
        checks.append(_secrets("notify secrets", config.settings.notify, "[notify]"))
    for name in config.channels:
        checks.extend(_channel(config, name, clock, (transports or {}).get(name)))
    return checks


def _database(config: Config) -> Check:
    url = config.settings.database_url()
    where = describe_database(url)
    if url.startswith("sqlite:///") and where != ":memory:" and not Path(where).exists():
        return Check("database", FAIL, f"{where} does not exist yet: run `retsync db upgrade` to create it")
    try:
        engine = make_engine(url)
    except Exception as exc:  # noqa: BLE001 - every way a database cannot be opened is this check's answer
        return Check("database", FAIL, scrub(str(exc)))
    try:
        current, head = current_revision(engine), head_revision(engine)
    except Exception as exc:  # noqa: BLE001
        return Check("database", FAIL, database_problem(exc, where))
    finally:
        engine.dispose()
    if current != head:
        return Check("database", FAIL, f"{where}: schema at {current or 'nothing (empty database)'}, this retsync "
                                       f"needs {head}: run `retsync db upgrade`")
    return Check("database", OK, f"{where}: reachable, schema {head} is current")


def _state_dir(config: Config) -> Iterator[Check]:
    state = config.settings.daemon.state_dir
    if not state.exists():
        yield Check("state directory", WARN, f"{state} does not exist yet: systemd's StateDirectory= creates it at "
                                             f"the first start (or `install -d -m 700 {state}`)")
        folder = state.parent
        while not folder.exists():
            folder = folder.parent
    else:
        folder = state
        mode = stat.S_IMODE(state.stat().st_mode)
        if not state.is_dir():
            yield Check("state directory", FAIL, f"{state} is not a directory")
        elif mode & 0o022:
            yield Check("state directory", FAIL, f"{state} is writable by other users (mode {mode:04o}): "
                                                 f"`chmod 700 {state}`; it holds the database and token files")
        elif not os.access(state, os.W_OK | os.X_OK):
            yield Check("state directory", FAIL, f"{state} is not writable by this user (uid {os.getuid()}); under "
                                                 f"the unit it belongs to the service's dynamic user: run the CLI "
                                                 f"as that user, or as root")
        elif mode & 0o007:
            yield Check("state directory", WARN, f"{state} is readable by other users (mode {mode:04o}): "
                                                 f"`chmod 700 {state}` keeps customer data to retsync")
        else:
            yield Check("state directory", OK, f"{state}: mode {mode:04o}, writable")
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        yield Check("disk space", FAIL, f"cannot read the free space of {folder}: {exc.strerror or exc}")
        return
    free = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.1f} GiB on {folder}"
    if usage.free < MIN_FREE_BYTES:
        yield Check("disk space", FAIL, f"only {free}: free some space (a backfill and SQLite's WAL need room)")
    else:
        yield Check("disk space", OK, free)


def _keyring(config: Config) -> Check:
    import keyring
    from keyring.backends import fail

    used = any("keyring:" in line for line in config.path.read_text(encoding="utf-8", errors="replace").splitlines()
               if not line.lstrip().startswith("#"))
    try:
        backend = keyring.get_keyring()
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        usable = not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 1) > 0
    except Exception as exc:  # noqa: BLE001 - a broken backend is what this check reports
        name, usable = f"unusable ({type(exc).__name__})", False
    if usable:
        return Check("keyring", OK, f"backend {name}")
    if used:
        return Check("keyring", FAIL, f"the config has keyring: references, but there is no usable keyring "
                                      f"backend ({name}); under systemd use file: references with LoadCredential=")
    return Check("keyring", OK, f"no usable backend ({name}); not needed: the config has no keyring: references")


class _Watch:
    """The requests one channel's check sends, as the kit reports them (host, status, the channel's Date)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.events: list[HttpEvent] = []

    def __call__(self, event: HttpEvent) -> None:
        if event.channel == self.channel:
            self.events.append(event)


def _channel(config: Config, name: str, clock: Callable[[], datetime],
             transport: httpx.BaseTransport | None) -> Iterator[Check]:
    settings = config.channels[name]
    label = f"channel {name}"
    if not settings.enabled:
        yield Check(label, OK, "disabled: not checked")
        return
    cls = registry.get(settings.connector)
    assert cls is not None, "config validation guarantees the connector exists"
    host = urlsplit(settings.base_url or "").hostname or settings.connector
    secrets = _secrets(label, settings, f"[channels.{name}]")
    if secrets.failed:
        yield secrets
        return
    watch = _Watch(name)
    stop_watching = observe(watch)
    connector: Connector | None = None
    try:
        runtime = Runtime(state_dir=config.settings.daemon.state_dir, transport=transport)
        connector = cls(name, settings, runtime)
        probe(connector, clock())
        failure = None
    except SecretError as exc:
        failure = f"a secret cannot be read: {exc}"
    except Exception as exc:  # noqa: BLE001 - whatever the channel answers is this check's answer
        failure = scrub(str(exc) or type(exc).__name__)
    finally:
        stop_watching()
        if connector is not None:
            connector.close()
    hosts = sorted({event.host for event in watch.events if event.host}) or [host]
    if failure is not None:
        yield Check(label, FAIL, f"{' / '.join(hosts)}: {failure}")
    else:
        yield Check(label, OK, f"{' / '.join(hosts)}: signed in, returns readable")
    if watch.events:
        yield _clock_skew(label, watch.events, clock(), host)


def _secrets(label: str, model: Any, table: str) -> Check:
    """Every secret of a table that cannot be read from here, each named, before anything is sent."""
    missing = unreadable_secrets(model)
    if not missing:
        return Check(label, OK, "every secret readable")
    detail = "; ".join(f"{table} key `{key}`: {why}" for key, why in missing)
    if "CREDENTIALS_DIRECTORY" in detail and not os.environ.get("CREDENTIALS_DIRECTORY"):
        detail += ("; ${CREDENTIALS_DIRECTORY} is set only inside the service (LoadCredential=): run "
                   "`retsync as-service -- doctor` to check as the service sees it, or as root "
                   "`CREDENTIALS_DIRECTORY=/etc/retsync/credentials retsync doctor` (the same files)")
    return Check(label, FAIL, f"secrets not readable here: {detail}")


def probe(connector: Connector, now: datetime) -> None:
    """One cheap authenticated read: the connector's own `check_access()` where it has one, else the first page
    of its returns since yesterday, with every order taken as stored so none is fetched."""
    check_access = getattr(connector, "check_access", None)
    if callable(check_access):
        check_access()
        return
    streams = connector.capabilities.streams
    stream = Stream.RETURNS if Stream.RETURNS in streams else streams[0]
    context = PullContext(channel=connector.channel, stream=stream, cursor=None, now=now,
                          backfill_since=now - timedelta(days=1), overlap=connector.settings.overlap,
                          stored_revisions=lambda ids: {}, stored_orders=lambda ids: set(ids))
    pages = connector.pull(stream, context)
    try:
        next(iter(pages), None)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def _clock_skew(label: str, events: list[HttpEvent], now: datetime, host: str) -> Check:
    check = f"{label} clock"
    dated = [event for event in events if event.date]
    if not dated:
        return Check(check, WARN, f"{host} sent no Date header (or no answer): clock skew not checked")
    try:
        theirs = email.utils.parsedate_to_datetime(dated[-1].date or "")
    except (TypeError, ValueError):
        return Check(check, WARN, f"{dated[-1].host} sent an unreadable Date header: clock skew not checked")
    skew = (now - theirs).total_seconds()
    where = dated[-1].host
    if abs(skew) > MAX_CLOCK_SKEW.total_seconds():
        side = "ahead of" if skew > 0 else "behind"
        return Check(check, FAIL, f"this machine's clock is {abs(skew):.0f} s {side} {where}: set up time "
                                  f"synchronisation (systemd-timesyncd, chrony); cursors and tokens depend on it")
    return Check(check, OK, f"within {max(1, round(abs(skew)))} s of {where}")


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]}
