"""Logs for journald and for a person at a terminal, with secrets and customer data kept out.

JSON lines when stdout is not a TTY (journald keeps them whole), a readable
console format on a TTY. Two processors stand between every log call and the
output: one blanks any value resolved from a secret reference or token
endpoint, one redacts customer e-mail addresses, names and phone numbers, so
a log shared in a support ticket leaks nothing.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from retsync.secrets import known_secrets

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})")
_PERSONAL_KEYS = {"email", "customer_email", "name", "customer_name", "phone", "customer_phone", "first_name",
                  "surname", "last_name", "address", "street", "postcode", "customer_postcode"}
_SECRET_KEYS = {"password", "secret", "client_secret", "token", "access_token", "refresh_token", "api_key",
                "authorization"}


def redact_email(value: str) -> str:
    """`jan.kowalski@example.pl` -> `j***@e***.pl`: enough to tell two customers apart, not to contact one."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}***{m.group(3)}", value)


def redact_personal(value: object) -> str:
    text = str(value)
    if "@" in text:
        return redact_email(text)
    return f"{text[:1]}***" if text else text


def scrub(text: str) -> str:
    """Blank every known secret and redact e-mail addresses in free text (error messages, URLs)."""
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, "***")
    return redact_email(text) if "@" in text else text


def _scrub_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if lowered in _SECRET_KEYS:
        return "***"
    if lowered in _PERSONAL_KEYS and value is not None:
        return redact_personal(value)
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(key, v) for v in value]
    return value


def scrub_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _scrub_value(key, event_dict[key])
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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )
