"""The one TOML file a merchant writes, read with pydantic-settings.

Every mistake is reported once, naming the file, the table and the key, so an
admin reading journalctl knows exactly which line to fix. Each channel table
is validated by its connector's own settings model, so a typo in a
connector-specific key is caught at start-up, not at the first pull.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from retsync.intake.settings import CarrierSettings, ReturnsWebhookSettings
from retsync.kit.secrets import Secret, SecretError, is_reference, unreadable_secrets
from retsync.kit.settings import CHANNEL_NAME, ChannelSettings, Duration
from retsync.notify.address import single_address
from retsync.ops.settings import PrivacySettings
from retsync.web.settings import WebSettings

DEFAULT_CONFIG_PATH = Path("/etc/retsync/config.toml")
DEFAULT_STATE_DIR = Path("/var/lib/retsync")

class ConfigError(Exception):
    """The config cannot be used; `str()` is the message for the admin (exit code 2)."""


def _readable_now(secret: SecretStr | None) -> str | None:
    """A secret's value for a check at load time, or None when it is not set or cannot be read from here (it
    is read, and checked, where it is used)."""
    if secret is None:
        return None
    try:
        return secret.get_secret_value()
    except SecretError:
        return None


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the state directory")

    @field_validator("url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        return None if url is None else checked_database_url(url)


def checked_database_url(url: str) -> str:
    """The URL as retsync opens it, or ValueError saying what is wrong (never echoing the password).

    `postgres://` (what Heroku-style hosts and many PostgreSQL tools print) is taken as `postgresql://`: it can
    only mean PostgreSQL, and SQLAlchemy dropped the alias. Other databases are refused here rather than at the
    first connection, because retsync's migrations are written for SQLite and PostgreSQL only.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = re.sub(r"^postgres(?=[+:])", "postgresql", url.strip())
    scheme = url.partition(":")[0]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("is not a database URL; write sqlite:////var/lib/retsync/retsync.db or "
                         "postgresql://user:password@host:5432/dbname") from None
    except ValueError:
        raise ValueError("the port is not a number; write postgresql://user:password@host:5432/dbname") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"{scheme}:// is not a database retsync works with; use sqlite:///… or postgresql://…")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port {parsed.port} is out of range (1-65535)")
    return url


class DaemonSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("STATE_DIRECTORY", str(DEFAULT_STATE_DIR)).split(":")[0])
    )
    push_interval: Duration = timedelta(seconds=60)
    decision_check: Duration = Field(
        default=timedelta(seconds=2), description="how often the daemon asks whether a decision waits to be pushed "
        "(one indexed query) and then pushes at once; push_interval stays the pass that retries and follows up")
    jitter: Duration = Field(default=timedelta(seconds=10), description="random delay added to each poll")
    failure_backoff_max: Duration = Field(
        default=timedelta(minutes=30), description="longest pause of a failing channel"
    )
    push_max_attempts: int = Field(default=8, ge=1)
    push_retry_base: Duration = timedelta(seconds=30)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_listen: str | None = Field(
        default=None, description="HOST:PORT on this machine where `retsync run` serves /metrics, /healthz and /readyz "
        "(unset: no endpoint)")
    ready_failed_polls: int = Field(
        default=3, ge=1, description="/readyz fails once a channel has failed this many polls in a row")

    @field_validator("metrics_listen")
    @classmethod
    def _loopback_only(cls, value: str | None) -> str | None:
        """The endpoint has no login: it shows which channels exist and how they fare, so it stays on this machine
        (a Prometheus elsewhere scrapes it through a tunnel or a local agent)."""
        if value is None:
            return None
        host, sep, port = value.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"{value!r} is not HOST:PORT; write \"127.0.0.1:9464\"")
        if not is_this_machine(host):
            raise ValueError(f"{host} is not this machine: the metrics endpoint has no login, so it listens on "
                             f"loopback only (127.0.0.1, ::1, localhost)")
        return value.strip()


TEAM_EVENTS = ("new_return", "received", "new_flag", "push_failed", "record_quarantined")
"""What the team can be told about: a new return, a parcel back and waiting for a decision, a new anomaly flag, a
decision the channel would not take after every retry, a record set aside because retsync could not read or store
it (nothing else makes anyone look at the quarantine)."""
BUILT_IN_LANGUAGES = ("en", "pl")


class NotifySettings(BaseModel):
    """`[notify]`: e-mail over SMTP and/or a signed webhook, for the team and (per channel) for customers."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="run the notification pass after each push pass")
    smtp_host: str | None = Field(default=None, description="SMTP server; unset: no e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="STARTTLS on a plain port (587), TLS from the first byte (465), or none")
    smtp_user: str | None = None
    smtp_password: Secret | None = None
    smtp_timeout: Duration = timedelta(seconds=30)
    mail_from: str | None = Field(default=None, description="From address of every e-mail")
    sender_name: str | None = Field(default=None, description="display name in From and the e-mails' sign-off")
    team_emails: list[str] = Field(default_factory=list, description="who gets the team e-mails")
    team_events: list[Literal["new_return", "received", "new_flag", "push_failed", "record_quarantined"]] = Field(
        default_factory=lambda: list(TEAM_EVENTS))
    team_language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    customer_language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    customer_languages: dict[str, str] = Field(
        default_factory=dict, description="channel name -> language of its customer e-mails")
    templates_dir: Path | None = Field(
        default=None, description="directory of <language>/<template>.txt files that replace the built-in ones")
    webhook_url: Secret | None = Field(
        default=None, description="team events are POSTed here as JSON; a Slack or Teams webhook URL is itself "
        "a credential, so it is masked and may be an env:, file: or keyring: reference")
    webhook_secret: Secret | None = Field(default=None, description="HMAC-SHA256 key of X-Retsync-Signature")
    webhook_timeout: Duration = timedelta(seconds=10)
    allow_insecure: bool = Field(
        default=False, description="accept an SMTP password sent without TLS, or a plain http:// webhook_url, "
        "to a host other than this machine")
    max_attempts: int = Field(default=8, ge=1)
    retry_base: Duration = Field(default=timedelta(minutes=1), description="first retry delay; doubles each time")

    @field_validator("team_emails", "mail_from")
    @classmethod
    def _one_address_each(cls, value: list[str] | str | None) -> list[str] | str | None:
        """Caught at `config check`, not when the first team e-mail fails: each entry is exactly one address."""
        for address in [value] if isinstance(value, str) else value or []:
            single_address(address, "the")  # NotOneAddress is a ValueError: pydantic reports it under the key
        return value

    @model_validator(mode="after")
    def _usable(self) -> NotifySettings:
        url = _readable_now(self.webhook_url)
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        if self.smtp_host and not self.mail_from:
            raise ValueError("smtp_host is set but mail_from is not: e-mails need a From address")
        if self.team_emails and not self.smtp_host:
            raise ValueError("team_emails is set but smtp_host is not: e-mail needs an SMTP server")
        if self.smtp_password is not None and not self.smtp_user:
            raise ValueError("smtp_password is set but smtp_user is not")
        if self.enabled and not (self.smtp_host or self.webhook_url):
            raise ValueError("enabled, but neither smtp_host nor webhook_url is set: nothing to send with")
        if self.templates_dir is not None and not self.templates_dir.is_dir():
            raise ValueError(f"templates_dir {str(self.templates_dir)!r} is not a directory")
        for language in {self.team_language, self.customer_language, *self.customer_languages.values()}:
            if language not in BUILT_IN_LANGUAGES and not (self.templates_dir and (self.templates_dir / language).is_dir()):
                raise ValueError(f"no templates in language {language!r}: built in are {', '.join(BUILT_IN_LANGUAGES)}; "
                                 f"others need templates_dir/{language}/")
        return self

    def language_of(self, channel: str) -> str:
        return self.customer_languages.get(channel, self.customer_language)


class Settings(BaseSettings):
    """The whole file. `RETSYNC_*` variables override keys (nested with `__`)."""

    model_config = SettingsConfigDict(env_prefix="RETSYNC_", env_nested_delimiter="__", extra="forbid")

    database: DatabaseSettings = DatabaseSettings()
    daemon: DaemonSettings = DaemonSettings()
    notify: NotifySettings = NotifySettings()
    carriers: CarrierSettings = CarrierSettings()
    returns_webhook: ReturnsWebhookSettings | None = None
    web: WebSettings = WebSettings()
    privacy: PrivacySettings = PrivacySettings()
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init values; the environment wins over it.
        return (env_settings, init_settings)

    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.daemon.state_dir / 'retsync.db'}"


class Config(BaseModel):
    """The checked configuration: core settings plus each channel's validated settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    path: Path
    settings: Settings
    channels: dict[str, ChannelSettings]

    @property
    def enabled_channels(self) -> dict[str, ChannelSettings]:
        return {name: channel for name, channel in self.channels.items() if channel.enabled}


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("RETSYNC_CONFIG"):
        return Path(os.environ["RETSYNC_CONFIG"])
    return DEFAULT_CONFIG_PATH


def _where(loc: tuple[int | str, ...]) -> str:
    """`('channels', 'shop', 'poll_interval')` -> `[channels.shop] poll_interval`."""
    parts = [str(p) for p in loc]
    if len(parts) == 1:
        return f"key `{parts[0]}`"
    return f"[{'.'.join(parts[:-1])}] key `{parts[-1]}`"


def _messages(path: Path, error: ValidationError, prefix: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        loc = prefix + tuple(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; config.example.toml lists every key)"
        elif item["type"] == "missing":
            message = "is required but missing"
        lines.append(f"{path}: {_where(loc)}: {message}")
    return lines


def load_config(
    path: Path,
    settings_model_for: Callable[[str], type[ChannelSettings] | None],
    known_connectors: Callable[[], list[str]] = lambda: [],
    holds_returns: Callable[[str], bool] = lambda connector: True,
) -> Config:
    """Read and check the file; raise ConfigError with every problem found, each on its own line."""
    try:
        raw_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found; copy config.example.toml there, or pass --config / set RETSYNC_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    try:
        data = tomllib.loads(raw_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None

    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_messages(path, exc))) from None

    problems: list[str] = []
    channels: dict[str, ChannelSettings] = {}
    for name, table in settings.channels.items():
        if not CHANNEL_NAME.fullmatch(name) or ".." in name:
            problems.append(f"{path}: [channels.{name}]: {name!r} cannot name a channel: it names files (its "
                            f"token file, its log lines), so use 1-64 letters, digits, `_`, `.` or `-`, "
                            f"starting with a letter or digit, without `..`")
            continue
        if not isinstance(table, Mapping):
            problems.append(f"{path}: [channels] key `{name}`: must be a table [channels.{name}]")
            continue
        connector = table.get("connector")
        if not connector:
            problems.append(f"{path}: [channels.{name}] key `connector`: is required but missing")
            continue
        model = settings_model_for(str(connector))
        if model is None:
            known = ", ".join(known_connectors()) or "none"
            problems.append(
                f"{path}: [channels.{name}] key `connector`: no connector named {connector!r} is installed "
                f"(installed: {known})"
            )
            continue
        try:
            channels[name] = model(**table)
        except ValidationError as exc:
            problems.extend(_messages(path, exc, ("channels", name)))
            continue
        problems.extend(_literal_references(path, name, table, channels[name]))
    problems.extend(_back_office_problems(path, channels, holds_returns))
    problems.extend(_notify_problems(path, settings.notify, channels))
    problems.extend(_insecure_problems(path, settings.notify, channels))
    if problems:
        raise ConfigError("\n".join(problems))
    return Config(path=path, settings=settings, channels=channels)


def _literal_references(path: Path, name: str, table: Mapping[str, Any], channel: ChannelSettings) -> list[str]:
    """`client_id = "env:BOL_CLIENT_ID"` on a key that is not a secret would be sent as those very words (a
    401 much later): say so now, and which keys do read references."""
    secret_keys = sorted(key for key, value in channel if isinstance(value, SecretStr))
    return [f"{path}: [channels.{name}] key `{key}`: {value!r} looks like a secret reference, but `{key}` is not "
            f"a secret key and would be taken literally; write the value itself"
            + (f" (keys that read env:/file:/keyring: here: {', '.join(secret_keys)})" if secret_keys else "")
            for key, value in table.items()
            if isinstance(value, str) and is_reference(value) and not isinstance(getattr(channel, key, None), SecretStr)]


def unreadable(config: Config, channels: Iterable[str] | None = None, notify: bool = False,
               carriers: bool = False) -> list[str]:
    """One line per secret of these channels (all when None), and of [notify] and [carriers] when asked, that
    cannot be read here: which file, table and key, and why."""
    lines = []
    for name, channel in config.channels.items():
        if channels is not None and name not in channels:
            continue
        lines += [f"{config.path}: [channels.{name}] key `{key}`: {why}" for key, why in unreadable_secrets(channel)]
    if notify:
        lines += [f"{config.path}: [notify] key `{key}`: {why}"
                  for key, why in unreadable_secrets(config.settings.notify)]
    if carriers:  # `[carriers.inpost] api_token` -> table carriers.inpost, key api_token
        for key, why in unreadable_secrets(config.settings.carriers):
            table, _, name = key.rpartition(".")
            lines.append(f"{config.path}: [carriers.{table}] key `{name}`: {why}")
    return lines


def require_secrets(config: Config, channels: Iterable[str] | None = None, notify: bool = False,
                    carriers: bool = False) -> None:
    """Before talking to channels (sync, push, run): every secret they need is readable, or a ConfigError
    naming each one that is not. The daemon (`run`) also follows parcels: it asks for the carriers' too."""
    lines = unreadable(config, channels, notify, carriers)
    if lines:
        raise ConfigError("\n".join(lines))


def _back_office_problems(
    path: Path, channels: Mapping[str, ChannelSettings], holds_returns: Callable[[str], bool]
) -> list[str]:
    """`decisions_from` must name another configured shop channel that can hold returns, one hop only."""
    problems = []
    for name, channel in channels.items():
        shop = channel.decisions_from
        if shop is None:
            continue
        where = f"{path}: [channels.{name}] key `decisions_from`"
        target = channels.get(shop)
        if shop == name:
            problems.append(f"{where}: a channel cannot take its decisions from itself")
        elif target is None:
            known = ", ".join(sorted(n for n in channels if n != name)) or "none"
            problems.append(f"{where}: no channel named {shop!r} is configured (channels: {known})")
        elif not holds_returns(target.connector):
            problems.append(
                f"{where}: channel {shop!r} ({target.connector}) cannot hold other channels' returns; "
                f"name a shop channel (see `retsync connectors`)"
            )
        elif target.decisions_from is not None:
            problems.append(f"{where}: channel {shop!r} takes its own decisions from {target.decisions_from!r}; "
                            f"the shop that holds returns must decide them itself")
    return problems


def _notify_problems(path: Path, notify: NotifySettings, channels: Mapping[str, ChannelSettings]) -> list[str]:
    """Customer e-mails need an SMTP server, and per-channel languages must name configured channels."""
    problems = [f"{path}: [notify] key `customer_languages`: no channel named {name!r} is configured"
                for name in notify.customer_languages if name not in channels]
    wanting = sorted(name for name, channel in channels.items() if channel.notify_customers and channel.enabled)
    if notify.enabled and wanting and not notify.smtp_host:
        problems.append(f"{path}: [notify] key `smtp_host`: channels {', '.join(wanting)} have notify_customers = "
                        f"true, which needs an SMTP server")
    return problems



def is_this_machine(host: str | None) -> bool:
    """Loopback, `localhost`, or a name that can never resolve (`*.invalid`, RFC 6761): traffic that never
    crosses a network, as to a sandbox on 127.0.0.1 or a test's in-process transport."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host in ("localhost", "invalid") or host.endswith((".localhost", ".invalid")):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _plain_http_host(url: object) -> str | None:
    """The host of a plain-http URL leaving this machine, else None."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or is_this_machine(host):
        return None
    return host or "?"


_INSECURE_WHY = ("credentials and customer data would cross the network readable by anyone on the way; use "
                 "https://, or, on a network you trust, set allow_insecure = true in")


def _insecure_problems(path: Path, notify: NotifySettings, channels: Mapping[str, ChannelSettings]) -> list[str]:
    """Plain http to another machine, or an SMTP password without TLS, is refused unless the table allows it.

    Every `*_url` key counts (base_url, token_url, auth_url, admin_api_url, …), so a credential in a query
    string over http is refused with the URL that carries it. The URL itself is not repeated: it may hold one.
    """
    problems = []
    for name, channel in channels.items():
        if channel.allow_insecure:
            continue
        for key, value in channel:
            host = _plain_http_host(value) if key.endswith("_url") else None
            if host is not None:
                problems.append(f"{path}: [channels.{name}] key `{key}`: plain http:// to {host}: {_INSECURE_WHY} "
                                f"[channels.{name}]")
    if notify.allow_insecure:
        return problems
    url = _readable_now(notify.webhook_url)
    if url is not None:
        host = _plain_http_host(url)
        if host is not None:
            problems.append(f"{path}: [notify] key `webhook_url`: plain http:// to {host}: {_INSECURE_WHY} [notify]")
    if notify.smtp_password is not None and notify.smtp_security == "none" and not is_this_machine(notify.smtp_host):
        problems.append(f"{path}: [notify] key `smtp_security`: \"none\" would send smtp_password to "
                        f"{notify.smtp_host} unencrypted; use \"starttls\" or \"tls\", or, on a network you "
                        f"trust, set allow_insecure = true in [notify]")
    return problems
