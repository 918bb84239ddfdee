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


def test_http_retries_during_a_sync_name_channel_and_stream(tmp_path) -> None:
    """A line logged deep in the HTTP layer still says which channel and stream it belongs to."""
    import httpx

    from retsync.config import ChannelSettings
    from retsync.connector import Runtime, Stream
    from retsync.engine import SyncEngine
    from retsync.http import ChannelHttp, RetryPolicy
    from retsync.store.channels import ensure_channel
    from retsync.store.db import make_engine, upgrade
    from tests.fakes import BASE, ScriptedConnector

    class Flaky(ScriptedConnector):
        def pull(self, stream, context):
            calls = iter([httpx.Response(503), httpx.Response(200, json={})])
            http = ChannelHttp("shop", base_url="http://x", retry=RetryPolicy(max_retries=2),
                               transport=httpx.MockTransport(lambda request: next(calls)), sleep=lambda s: None)
            http.request("GET", "/returns")
            yield from super().pull(stream, context)

    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    db = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(db)
    ScriptedConnector.reset(1)
    connector = Flaky("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    SyncEngine(db, channel="shop", channel_id=ensure_channel(db, "shop", "scripted", BASE), settings=connector.settings,
               connector=connector).sync_stream(Stream.RETURNS)
    retry = next(line for line in _lines(stream) if line["event"] == "http_retry")
    assert retry["channel"] == "shop" and retry["stream"] == "returns"
