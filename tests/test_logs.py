"""Logs: JSON for journald, secrets blanked, customer data redacted, channel and stream on every sync line."""

from __future__ import annotations

import io
import json

import httpx
import pytest
import structlog
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from retsync import logs
from retsync.app.daemon import describe_failure
from retsync.kit.contract import Page, Runtime, Stream
from retsync.kit.http import ApiError, ChannelHttp, RetryPolicy
from retsync.kit.model import Customer, DecisionKind
from retsync.kit.records import Quarantined
from retsync.kit.secrets import remember
from retsync.kit.settings import ChannelSettings
from retsync.outbox.decisions import record_decision
from retsync.outbox.push import Outbox
from retsync.store.channels import ensure_channel
from retsync.store.db import make_engine, upgrade
from retsync.sync.engine import SyncEngine
from tests.fakes import BASE, ScriptedConnector


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


def test_names_are_redacted_with_or_without_an_at_sign() -> None:
    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    log = structlog.get_logger("t")
    log.info("stored", customer_name="Jan @ Kowalski", name="@nna Nowak", customer_email="Jan <jan.k@example.pl>",
             phone="+48 600 100 200")
    [line] = _lines(stream)
    assert line["customer_name"] == "J***" and line["name"] == "@***" and line["phone"] == "+***"
    assert "Kowalski" not in stream.getvalue() and "Nowak" not in stream.getvalue()
    assert "jan.k@example.pl" not in stream.getvalue()
    assert logs.redact_personal("jan.kowalski@example.pl") == "j***@e***.pl"


def test_customer_values_are_redacted_inside_error_texts() -> None:
    """A channel's error body echoing the buyer, a database error quoting the row: free text, still redacted."""
    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    log = structlog.get_logger("t")
    log.error("push_failed", customer_name="Anna Nowak",
              error="HTTP 422: customer anna nowak may not return this")
    logs.remember_customers(["Jan Kowalski", "+48 600 100 200", None, "Jo"])
    try:
        log.error("page_failed", error="value too long: 'Jan Kowalski', '+48 600 100 200' (Jo)")
        log.error("store_failed", error="(psycopg.errors.StringDataRightTruncation) value too long\n"
                                        "[SQL: INSERT INTO returns ...]\n"
                                        "[parameters: {'customer_postcode': '00-950 Warszawa ul. Długa 5'}]")
        try:
            raise ValueError("cannot read phone '+48 600 100 200' of Jan Kowalski")
        except ValueError:
            log.exception("mapping_crashed")
        try:
            Customer(email=["Ewa Zielińska <ewa@x.pl>"], name=5)  # type: ignore[arg-type]
        except ValidationError as exc:
            log.error("mapping_failed", error=str(exc))
        described = describe_failure(RuntimeError("customer Jan Kowalski is blocked"))
    finally:
        logs.remember_customers([])
    text = stream.getvalue()
    assert "Nowak" not in text and "Kowalski" not in text and "600 100 200" not in text and "Długa" not in text
    assert "Zieli" not in text and "input_value=hidden, input_type=list" in text
    first, second, third, fourth, _ = _lines(stream)
    assert first["error"] == "HTTP 422: customer A*** may not return this"
    assert second["error"] == "value too long: 'J***', '+***' (Jo)", "values under 3 characters are left alone"
    assert "[parameters hidden]" in third["error"] and "ValueError: cannot read phone '+***' of J***" in fourth[
        "exception"]
    assert described == "RuntimeError: customer J*** is blocked"
    assert logs.scrub("customer Jan Kowalski") == "customer Jan Kowalski", "forgotten once the thread moved on"


def test_console_lines_show_escape_sequences_as_text() -> None:
    stream = io.StringIO()
    logs.configure(fmt="console", stream=stream)
    log = structlog.get_logger("t")
    log.warning("channel_failed", error="HTTP 500: \x1b]0;pwned\x07\x1b[2J\u202eboom")
    try:
        raise RuntimeError("body: \x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\")
    except RuntimeError:
        log.exception("crashed")
    text = stream.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "pwned" in text and "RuntimeError: body: \\x1b]8;;https://evil.example/" in text


JAN = Customer(name="Jan Kowalski", email="jan.kowalski@example.pl", phone="+48 600 100 200")
QUOTED = "customer 'Jan Kowalski' <jan.kowalski@example.pl>, +48 600 100 200"


def _shop_with_jan(db, tmp_path):
    """A scripted channel whose return R0 and its order were bought by Jan Kowalski."""
    ScriptedConnector.reset(1)
    ScriptedConnector.returns[0] = ScriptedConnector.returns[0].model_copy(update={"customer": JAN})
    ScriptedConnector.orders["O0"] = ScriptedConnector.orders["O0"].model_copy(update={"customer": JAN})
    connector = ScriptedConnector("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    return connector, ensure_channel(db, "shop", "scripted", BASE)


def _no_customer_in(text: str) -> None:
    assert "Kowalski" not in text and "600 100 200" not in text and "jan.kowalski" not in text


def test_a_page_the_database_refuses_is_logged_without_its_customers(db, tmp_path) -> None:
    """The database's refusal quotes the row; the warning and the channel's failure line redact the buyer."""
    connector, channel_id = _shop_with_jan(db, tmp_path)

    def refuse(conn) -> None:
        raise IntegrityError("INSERT INTO returns ...", {}, Exception(f"duplicate key for {QUOTED}"))

    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    log = structlog.get_logger("t")
    engine = SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings,
                        connector=connector, page_guard=refuse)
    try:
        with pytest.raises(IntegrityError) as failed:
            engine.sync_stream(Stream.RETURNS)
        log.error("channel_failed", channel="shop", error=describe_failure(failed.value))  # as the daemon logs it
    finally:
        logs.remember_customers(())
    refused, channel_failed = (line for line in _lines(stream)
                               if line["event"] in ("page_refused_by_database", "channel_failed"))
    assert "duplicate key for customer 'J***' <j***@e***.pl>, +***" in refused["problem"]
    assert "duplicate key for customer 'J***' <j***@e***.pl>, +***" in channel_failed["error"]
    _no_customer_in(stream.getvalue())


def test_a_record_set_aside_is_logged_without_the_customer_its_reason_quotes(db, tmp_path) -> None:
    """A mapping error quoting the value it could not read: redacted by the record's own name/phone keys."""
    connector, channel_id = _shop_with_jan(db, tmp_path)
    raw = {"id": 9, "billing": {"first_name": "Ewa", "last_name": "Zielińska", "phone": "601 222 333"}}

    class Unreadable(ScriptedConnector):
        def pull(self, stream, context):
            yield Page(quarantined=[Quarantined("return", "9", "total: could not read 'Ewa Zielińska 601 222 333'",
                                                raw)], cursor={"offset": 1})

    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings,
               connector=Unreadable("shop", connector.settings, connector.runtime)).sync_stream(Stream.RETURNS)
    [aside] = [line for line in _lines(stream) if line["event"] == "records_quarantined"]
    assert aside["records"] == [{"kind": "return", "external_id": "9",
                                 "reason": "total: could not read 'E*** Z*** 6***'"}]
    assert "Zieli" not in stream.getvalue() and "222 333" not in stream.getvalue()


def test_a_decision_the_channel_refuses_is_logged_without_the_customer(db, tmp_path) -> None:
    """A channel's refusal or a connector's crash echoing the buyer: redacted in `decision_push` and the traceback."""
    connector, channel_id = _shop_with_jan(db, tmp_path)
    SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings,
               connector=connector).sync_stream(Stream.RETURNS)
    for line in ("R0-L0", "R0-L1"):
        record_decision(db, "shop/R0", DecisionKind.ACCEPT, connector_for=lambda name: ScriptedConnector,
                        now=BASE, line=line)
    answers = iter([ApiError(422, f"{QUOTED} may not return this"), RuntimeError(f"crashed on {QUOTED}")])

    class Refusing(ScriptedConnector):
        def act(self, act):
            raise next(answers)

    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    summary = Outbox(db, {"shop": Refusing("shop", connector.settings, connector.runtime)}, clock=lambda: BASE
                     ).push_due()
    assert (summary.failed, summary.retrying) == (1, 1)
    lines = _lines(stream)
    details = [line["detail"] for line in lines if line["event"] == "decision_push"]
    assert details == ["Scripted test channel refused the accept decision: HTTP 422: customer 'J***' "
                       "<j***@e***.pl>, +*** may not return this",
                       "the Scripted test channel connector failed: RuntimeError: crashed on customer 'J***' "
                       "<j***@e***.pl>, +***"]
    [crash] = [line for line in lines if line["event"] == "connector_crashed"]
    assert "RuntimeError: crashed on customer 'J***'" in crash["exception"]
    _no_customer_in(stream.getvalue())
    assert logs.scrub("Jan Kowalski") == "Jan Kowalski", "forgotten once the pass is over"
