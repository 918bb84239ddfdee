"""Logs for journald and for a person at a terminal, with secrets and customer data kept out.

JSON lines when stdout is not a TTY (journald keeps them whole), a readable
console format on a TTY. Two processors stand between every log call and the
output: one blanks any value resolved from a secret reference or token
endpoint, one redacts customer e-mail addresses, names and phone numbers, so
a log shared in a support ticket leaks nothing.

Keys say what is personal (`customer_name`, `phone`, ...), but error texts are
free text: a channel's error body may echo the buyer's name, and a database
error may quote the row it could not store. So `scrub` also redacts the
customer values of the records the thread is handling (`remember_customers`)
and cuts the parameters SQLAlchemy appends to a failed statement and the input
pydantic quotes in a validation error.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from retsync.kit.secrets import known_secrets
from retsync.safe_text import for_terminal

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})")
_PERSONAL_KEYS = {"email", "customer_email", "name", "customer_name", "phone", "customer_phone", "first_name",
                  "surname", "last_name", "address", "street", "postcode", "customer_postcode"}
_SECRET_KEYS = {"password", "secret", "client_secret", "token", "access_token", "refresh_token", "api_key",
                "authorization"}
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*\]")
_INPUT_VALUE = re.compile(r"input_value=.*?, input_type=")
_SHORTEST_KNOWN = 3
"""Known values shorter than this are not searched for in text: a two-letter name would blank half a message."""
_known = threading.local()


def redact_email(value: str) -> str:
    """`jan.kowalski@example.pl` -> `j***@e***.pl`: enough to tell two customers apart, not to contact one."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***{m.group(3)}", value)


def redact_personal(value: object) -> str:
    """An e-mail address as `redact_email` shows it; anything else (a name, a phone, a name with an `@` in it)
    down to its first character."""
    text = str(value)
    if _EMAIL.fullmatch(text.strip()):
        return redact_email(text)
    return f"{text[:1]}***" if text else text


def _customer_values(values: Iterable[object]) -> list[str]:
    """Distinct values worth searching for, the longest first, so a full name goes before the surname in it."""
    found = {text for text in (str(v).strip() for v in values if v is not None) if len(text) >= _SHORTEST_KNOWN}
    return sorted(found, key=len, reverse=True)


def remember_customers(values: Iterable[object]) -> None:
    """The names, e-mail addresses and phones of the records this thread is handling now (a page, a decision).

    `scrub` redacts them inside any text until the thread remembers others, so an error raised while handling
    those records, and described after it left them, still hides them.
    """
    _known.values = tuple(_customer_values(values))  # normalised once here, not on every log line


def _redact_known(text: str, values: Iterable[str]) -> str:
    """`text` with each value (prepared by `_customer_values`) replaced by its redacted form, case-insensitive."""
    lowered = text.lower()
    for value in values:
        if value.lower() in lowered:
            text = re.sub(re.escape(value), redact_personal(value), text, flags=re.IGNORECASE)
            lowered = text.lower()
    return text


def scrub(text: str, customers: Iterable[object] = ()) -> str:
    """Blank every known secret and redact customer data in free text (error messages, URLs): e-mail addresses,
    the customer values this thread handles, and `customers`; SQL parameters and pydantic's quoted input are cut."""
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, "***")
    text = _SQL_PARAMETERS.sub("[parameters hidden]", text)
    text = _INPUT_VALUE.sub("input_value=hidden, input_type=", text)
    remembered: tuple[str, ...] = getattr(_known, "values", ())
    text = _redact_known(text, _customer_values([*remembered, *customers]) if customers else remembered)
    return redact_email(text) if "@" in text else text


def _scrub_value(key: str, value: Any, customers: tuple[str, ...] = ()) -> Any:
    lowered = key.lower()
    if lowered in _SECRET_KEYS:
        return "***"
    if lowered in _PERSONAL_KEYS and value is not None:
        return redact_personal(value)
    if isinstance(value, str):
        return scrub(value, customers)
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v, customers) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(key, v, customers) for v in value]
    return value


def scrub_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # a line that names the customer (`customer_name=...`) has their name redacted in its error text too
    customers = tuple(str(value) for key, value in event_dict.items()
                      if key.lower() in _PERSONAL_KEYS and isinstance(value, str))
    for key in list(event_dict):
        event_dict[key] = _scrub_value(key, event_dict[key], customers)
    return event_dict


_PRINTED_RAW = ("event", "exception", "stack")
"""What the console renderer prints as it is; every other value it prints as a Python repr, escapes and all."""


def terminal_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Console lines reach a terminal (JSON escapes control characters itself): channel text in a message or a
    traceback gets its escape sequences shown, not obeyed."""
    for key in _PRINTED_RAW:
        if isinstance(event_dict.get(key), str):
            event_dict[key] = for_terminal(event_dict[key], keep_newlines=True)
    return event_dict


class _StderrLoggerFactory:
    """Writes to whatever `sys.stderr` is at the time of the call, not the stream that was there at start-up."""

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        return structlog.PrintLogger(sys.stderr)


def configure(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    target = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not target.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(
        colors=target.isatty()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # tracebacks become text before scrubbing, so a secret in a local variable or message is blanked too
            structlog.processors.format_exc_info,
            scrub_processor,
            *([] if use_json else [terminal_processor]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level, stream, [*([] if use_json else [terminal_processor]), renderer])


QUIET_LIBRARIES = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "apscheduler": logging.WARNING}
"""Libraries whose INFO lines are one per request or per job run: kept to their warnings (APScheduler's "job
skipped: maximum number of running instances reached" is one), which still reach the log."""


class _StdlibHandler(logging.Handler):
    """Hands the standard library's records (APScheduler, alembic, httpx) to structlog's renderer, so journald
    gets JSON lines only, scrubbed like retsync's own; writes to `sys.stderr` as it is at the time."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            (self._stream or sys.stderr).write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def unroute_stdlib() -> None:
    """The standard library's logging as it was before `configure` (for tests that configure it in turn)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    root.setLevel(logging.WARNING)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET)


def _route_stdlib(level: str, stream: TextIO | None, rendering: list[Any]) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, scrub_processor, *rendering],
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    handler = _StdlibHandler(stream)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(logging.getLevelName(level))
    for name, floor in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(floor, logging.getLevelName(level)))
