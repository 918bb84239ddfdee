"""Logs: JSON for journald, secrets blanked, customer data redacted, channel and stream on every sync line."""

from __future__ import annotations

import io
import json

import structlog

from retsync import logs
from retsync.secrets import remember


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_secrets_blanked_and_personal_data_redacted() -> None:
    stream = io.StringIO()
    logs.configure(fmt="auto", stream=stream)  # not a TTY: JSON
    remember("s3cr3t-token-value")
    log = structlog.get_logger("t")
    structlog.contextvars.bind_contextvars(channel="bol", stream="returns")
    try:
        log.error("failed", error="401 for token s3cr3t-token-value", customer_email="jan.kowalski@example.pl",
                  customer_name="Jan Kowalski", client_secret="whatever", detail={"email": "a@b.nl"})
        try:
            raise RuntimeError("boom with s3cr3t-token-value inside")
        except RuntimeError:
            log.exception("crashed")
    finally:
        structlog.contextvars.clear_contextvars()
    first, second = _lines(stream)
    text = stream.getvalue()
    assert "s3cr3t-token-value" not in text and "jan.kowalski" not in text and "Kowalski" not in text
    assert first["channel"] == "bol" and first["stream"] == "returns" and first["level"] == "error"
    assert first["customer_email"] == "j***@e***.pl" and first["customer_name"] == "J***"
    assert first["client_secret"] == "***" and first["detail"] == {"email": "a***@b***.nl"}
    assert "RuntimeError: boom with *** inside" in second["exception"]


def test_console_format_on_request() -> None:
    stream = io.StringIO()
    logs.configure(fmt="console", stream=stream)
    structlog.get_logger("t").info("pull_finished", pages=3)
    assert "pull_finished" in stream.getvalue() and "pages=3" in stream.getvalue()
    assert not stream.getvalue().startswith("{")


def test_level_filter() -> None:
    stream = io.StringIO()
    logs.configure(level="WARNING", fmt="json", stream=stream)
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").warning("loud")
    assert [line["event"] for line in _lines(stream)] == ["loud"]
