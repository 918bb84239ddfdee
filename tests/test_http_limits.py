"""What one answer of a channel may cost: bytes (decoded, so a gzip bomb counts as what it inflates to), wall-clock
time (a server dripping a byte at a time), JSON nesting, and how long a Retry-After may pause the channel.

Memory is shown bounded by construction: each test counts how much of the body the server or the stream handed
over when retsync gave up, and that is far short of the whole (or of an endless) body.
"""

from __future__ import annotations

import email.utils
import functools
import gzip
import io
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from retsync import logs
from retsync.config import load_config
from retsync.kit.http import (
    MAX_JSON_DEPTH,
    BadPayload,
    ChannelHttp,
    HttpLimits,
    OAuth2ClientCredentials,
    RetryPolicy,
    Stopped,
    TransientError,
    json_depth,
)

BASE = "https://api.example.test"
MiB = 1024 * 1024


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(limits: HttpLimits, retries: int = 0, **kwargs: object) -> ChannelHttp:
    return ChannelHttp("shop", base_url=BASE, retry=RetryPolicy(max_retries=retries, base_delay=1.0, max_delay=60),
                       sleep=Sleeps(), limits=limits, **kwargs)  # type: ignore[arg-type]


class CountingStream(httpx.SyncByteStream):
    """A raw body handed over chunk by chunk, remembering how much of it was taken."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.taken = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.taken += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


def _gzip_bomb(decoded_mib: int) -> bytes:
    """A gzip body of zeros inflating to `decoded_mib` MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * MiB
    body = b"".join(compressor.compress(block) for _ in range(decoded_mib)) + compressor.flush()
    return body


def test_a_gzip_bomb_is_refused_at_the_cap_counted_decoded() -> None:
    body = _gzip_bomb(64)  # ~65 KB on the wire, 64 MiB inflated
    read = 4096
    stream = CountingStream(body[i:i + read] for i in range(0, len(body), read))
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-encoding": "gzip", "content-type": "application/json"}, stream=stream))
    http = _client(HttpLimits(max_response_bytes=1 * MiB), transport=transport)
    with pytest.raises(BadPayload, match=r"GET /returns: the answer is larger than 1 MiB \(max_response_size\)"):
        http.request("GET", "/returns")
    # Only the first 4 KiB read was taken and inflated (at most ~4 MiB): the other ~60 KB, 60 MiB once inflated,
    # were never touched.
    assert stream.taken == read < len(body) // 10
    assert stream.closed, "the connection was let go"


def test_an_answer_within_the_cap_arrives_decoded_as_before() -> None:
    payload = b'{"returns": [' + b",".join(b'{"id": %d, "reason": "too small"}' % i for i in range(2000)) + b"]}"
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-encoding": "gzip", "x-total": "2000"}, content=gzip.compress(payload)))
    http = _client(HttpLimits(max_response_bytes=len(payload)), transport=transport)
    response = http.request("GET", "/returns")
    assert response.content == payload and response.headers["x-total"] == "2000"
    assert len(http.json("GET", "/returns")["returns"]) == 2000
    with pytest.raises(BadPayload, match="larger than"):
        _client(HttpLimits(max_response_bytes=len(payload) - 1), transport=transport).request("GET", "/returns")


def test_a_broken_gzip_body_is_a_bad_payload() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"\x1f\x8b\x08\x00garbage-not-deflate")))
    with pytest.raises(BadPayload, match="gzip encoding is broken"):
        _client(HttpLimits(), transport=transport).request("GET", "/returns")


@respx.mock
def test_the_token_endpoint_is_bounded_too() -> None:
    respx.post("https://login.example.test/token").mock(return_value=httpx.Response(
        200, content=b'{"access_token": "' + b"t" * (2 * MiB) + b'", "expires_in": 300}'))
    api = respx.get(f"{BASE}/x").mock(return_value=httpx.Response(200, json={}))
    auth = OAuth2ClientCredentials("https://login.example.test/token", "id", "secret")
    with pytest.raises(BadPayload, match="POST /token: the answer is larger than 1 MiB"):
        _client(HttpLimits(max_response_bytes=MiB), auth=auth).request("GET", "/x")
    assert api.call_count == 0


# --- a real socket: the endless body and the dripping one ----------------------------------------------------------


class RawServer:
    """A one-connection-at-a-time HTTP server on 127.0.0.1 that sends what `body` yields, counting what it sent."""

    def __init__(self, *, headers: bytes, make_body: Callable[[], Iterator[bytes]]) -> None:
        self._headers = headers
        self._make_body = make_body
        self.sent = 0
        self.hung_up = threading.Event()
        self.finished = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = threading.Event()

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._listener.close()

    def _serve(self) -> None:
        self._listener.settimeout(0.1)  # so the test's end is noticed between connections
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                try:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += connection.recv(4096)
                    connection.sendall(self._headers)
                    for chunk in self._make_body():
                        if self._stop.is_set():
                            return
                        connection.sendall(chunk)
                        self.sent += len(chunk)
                    self.finished.set()
                except OSError:  # the client let go of the connection
                    self.hung_up.set()


def test_an_endless_body_is_cut_at_the_cap() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * 65536

    server = RawServer(headers=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
                       make_body=endless)
    with server:
        http = ChannelHttp("shop", base_url=server.url, retry=RetryPolicy(max_retries=0),
                           limits=HttpLimits(max_response_bytes=2 * MiB))
        with pytest.raises(BadPayload, match="larger than 2 MiB"):
            http.request("GET", "/returns")
        http.close()
        assert server.hung_up.wait(30), "retsync hung up instead of reading on"
    assert not server.finished.is_set()
    assert server.sent < 2 * MiB + 32 * MiB, "no more than the cap and what the socket buffers held"


def test_a_dripping_body_fails_at_the_request_deadline() -> None:
    """Each byte comes well within the read timeout, so only the deadline can end the request."""
    total = 100_000

    def drip() -> Iterator[bytes]:
        for _ in range(total):
            time.sleep(0.01)
            yield b" "

    server = RawServer(headers=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % total, make_body=drip)
    with server:
        http = ChannelHttp("shop", base_url=server.url, retry=RetryPolicy(max_retries=0), timeout=timedelta(seconds=5),
                           limits=HttpLimits(deadline=0.3))
        with pytest.raises(TransientError, match=r"GET /returns: ReadTimeout: the answer took longer than the "
                                                 r"request deadline of 0.3s \(gave up after 1 attempts\)"):
            http.request("GET", "/returns")
        http.close()
        assert server.hung_up.wait(30)
    assert server.sent < total and not server.finished.is_set()


def test_shutdown_interrupts_a_dripping_body() -> None:
    stop = threading.Event()

    def drip() -> Iterator[bytes]:
        for count in range(100_000):
            if count == 5:
                stop.set()  # SIGTERM arrives while the answer is still coming
            time.sleep(0.01)
            yield b" "

    server = RawServer(headers=b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", make_body=drip)
    with server:
        http = ChannelHttp("shop", base_url=server.url, stop=stop, limits=HttpLimits(deadline=600))
        with pytest.raises(Stopped):
            http.request("GET", "/returns")
        http.close()
    assert not server.finished.is_set()


# --- JSON nesting ---------------------------------------------------------------------------------------------------


@respx.mock
def test_deeply_nested_json_is_a_bad_payload_before_it_is_parsed() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    respx.get(f"{BASE}/returns").mock(return_value=httpx.Response(200, content=deep))
    http = _client(HttpLimits())
    with pytest.raises(BadPayload, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        http.json("GET", "/returns")
    # connectors that read `response.json()` themselves get the same guard from request()
    with pytest.raises(BadPayload, match="nests deeper"):
        http.request("GET", "/returns")


@respx.mock
def test_brackets_inside_strings_and_ordinary_nesting_pass() -> None:
    body = b'{"reason": "' + b"[{" * 5000 + b'\\"]}", "lines": [{"a": {"b": [1, 2, {"c": "}"}]}}]}'
    respx.get(f"{BASE}/returns").mock(return_value=httpx.Response(200, content=body))
    assert _client(HttpLimits()).json("GET", "/returns")["lines"][0]["a"]["b"][2] == {"c": "}"}
    assert json_depth(body) == 6
    assert json_depth(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) == MAX_JSON_DEPTH


# --- Retry-After ----------------------------------------------------------------------------------------------------


@respx.mock
def test_503_with_retry_after_pauses_the_channel_capped_and_logged_once() -> None:
    route = respx.get(f"{BASE}/orders").mock(side_effect=[
        httpx.Response(503, text="Briefly unavailable for scheduled maintenance.", headers={"Retry-After": "600"}),
        httpx.Response(200, json=[])])
    sleeps = Sleeps()
    http = ChannelHttp("shop", base_url=BASE, retry=RetryPolicy(max_retries=3), sleep=sleeps,
                       limits=HttpLimits(max_retry_after=300))
    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    assert http.json("GET", "/orders") == []
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert route.call_count == 2
    assert len(sleeps.waits) == 1 and 299 < sleeps.waits[0] <= 300, "one wait, as long as the cap, not 0.3 s"
    capped = [line for line in lines if line["event"] == "http_retry_after_capped"]
    assert len(capped) == 1 and capped[0]["channel"] == "shop" and capped[0]["status"] == 503
    assert (capped[0]["asked_s"], capped[0]["wait_s"]) == (600.0, 300.0)
    assert [line["problem"] for line in lines if line["event"] == "http_retry"] == [
        "HTTP 503: Briefly unavailable for scheduled maintenance., channel paused 300.0s as its Retry-After asks"]


@respx.mock
def test_retry_after_as_an_http_date_on_502() -> None:
    when = email.utils.format_datetime(email.utils.localtime().astimezone() + timedelta(seconds=40), usegmt=False)
    respx.get(f"{BASE}/orders").mock(side_effect=[httpx.Response(502, headers={"Retry-After": when}),
                                                  httpx.Response(200, json={})])
    sleeps = Sleeps()
    ChannelHttp("shop", base_url=BASE, sleep=sleeps).request("GET", "/orders")
    assert len(sleeps.waits) == 1 and 30 < sleeps.waits[0] <= 40


@respx.mock
@pytest.mark.parametrize("value", ["soon", "Mon, 99 Foo 2026", "nan", ""])
def test_an_unreadable_retry_after_falls_back_to_the_backoff(value: str) -> None:
    route = respx.get(f"{BASE}/orders").mock(side_effect=[httpx.Response(503, headers={"Retry-After": value}),
                                                          httpx.Response(200, json={})])
    sleeps = Sleeps()
    ChannelHttp("shop", base_url=BASE, retry=RetryPolicy(base_delay=1.0), sleep=sleeps).request("GET", "/orders")
    assert route.call_count == 2 and len(sleeps.waits) == 1 and 0.5 <= sleeps.waits[0] <= 1.0


@respx.mock
def test_a_write_answered_503_with_retry_after_is_not_repeated_but_holds_the_channel() -> None:
    write = respx.post(f"{BASE}/refunds").mock(return_value=httpx.Response(503, headers={"Retry-After": "20"}))
    read = respx.get(f"{BASE}/orders").mock(return_value=httpx.Response(200, json={}))
    sleeps = Sleeps()
    http = ChannelHttp("shop", base_url=BASE, sleep=sleeps)
    with pytest.raises(TransientError, match="not repeated"):
        http.request("POST", "/refunds", json={})
    assert write.call_count == 1 and sleeps.waits == []
    http.request("GET", "/orders")
    assert read.call_count == 1 and len(sleeps.waits) == 1 and 15 < sleeps.waits[0] <= 20


# --- per channel ----------------------------------------------------------------------------------------------------


def test_limits_come_from_the_channel_table(tmp_path: Path) -> None:
    from retsync import registry

    path = tmp_path / "config.toml"
    path.write_text('[channels.shop]\nconnector = "woocommerce"\nbase_url = "https://shop.example.com"\n'
                    'consumer_key = "ck_1234"\nconsumer_secret = "cs_1234"\nmax_response_size = "40MiB"\n'
                    'request_deadline = "5m"\nmax_retry_after = "1h"\n'
                    '[channels.other]\nconnector = "woocommerce"\nbase_url = "https://other.example.com"\n'
                    'consumer_key = "ck_1234"\nconsumer_secret = "cs_1234"\n')
    config = load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)
    assert HttpLimits.of(config.channels["shop"]) == HttpLimits(max_response_bytes=40 * MiB, deadline=300,
                                                                max_retry_after=3600)
    assert HttpLimits.of(config.channels["other"]) == HttpLimits()


# --- through the daemon's real path ----------------------------------------------------------------------------------


class HostileShop(httpx.BaseTransport):
    """A shop whose order list answers with `answer` while `hostile` is set; everything else is the sandbox."""

    def __init__(self, inner: httpx.BaseTransport, answer: Callable[[], httpx.Response]) -> None:
        self._inner, self._answer, self.hostile = inner, answer, True

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.hostile and request.method == "GET" and request.url.path.endswith("/orders"):
            return self._answer()
        return self._inner.handle_request(request)


@functools.cache
def _bomb_body() -> bytes:
    return _gzip_bomb(32)  # twice the default cap once inflated


def _deep() -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "application/json"}, content=b"[" * 100_000 + b"]" * 100_000)


BOMB_STREAMS: list[CountingStream] = []


def _bomb() -> httpx.Response:
    body = _bomb_body()
    stream = CountingStream(body[i:i + 4096] for i in range(0, len(body), 4096))
    BOMB_STREAMS.append(stream)
    return httpx.Response(200, headers={"content-type": "application/json", "content-encoding": "gzip"},
                          stream=stream)


@pytest.mark.parametrize(("answer", "error"), [(_deep, "nests deeper than 64 levels"),
                                               (_bomb, "larger than 16 MiB (max_response_size)")],
                         ids=["deep-json", "gzip-bomb"])
def test_a_hostile_answer_fails_only_its_page_and_the_channel_recovers(
        db: Any, db_url: str, tmp_path: Path, answer: Callable[[], httpx.Response], error: str) -> None:
    """The page fails like any unreadable answer: nothing stored, no cursor moved, the other channel goes on, and
    the next pull after the shop answers normally stores its returns."""
    from sqlalchemy import text

    from retsync.app.daemon import Runner
    from retsync.testing.config import config_for
    from retsync_connectors.woocommerce.connector import WooCommerceConnector
    from retsync_connectors.woocommerce.emulator import WooCommerceEmulator

    table = {**WooCommerceConnector.sandbox_channel("http://sandbox.invalid"), "max_backoff": "0.05s",
             "max_retries": 1}
    config = config_for(tmp_path, db_url, {"shop": table, "other": table})
    hostile = HostileShop(WooCommerceEmulator(seed=21).transport(), answer)
    runner = Runner(config, transports={"shop": hostile, "other": WooCommerceEmulator(seed=22).transport()}, db=db)
    runner.open()

    def stored(channel: str) -> tuple[int, int]:
        with db.connect() as conn:
            ids = {"name": channel}
            returns = conn.execute(text("SELECT count(*) FROM returns r JOIN channels c ON c.id = r.channel_id "
                                        "WHERE c.name = :name"), ids).scalar_one()
            cursors = conn.execute(text("SELECT count(*) FROM sync_cursors s JOIN channels c ON c.id = s.channel_id "
                                        "WHERE c.name = :name"), ids).scalar_one()
        return returns, cursors

    try:
        BOMB_STREAMS.clear()
        outcome = runner.pull("shop")
        assert not outcome.ok and error in (outcome.error or ""), outcome
        assert stored("shop") == (0, 0), "nothing stored and no cursor moved"
        # the bomb inflates to twice the cap: it was let go within a read or two of the cap, at half its length
        assert all(stream.taken <= len(_bomb_body()) // 2 + 2 * 4096 for stream in BOMB_STREAMS)
        assert bool(BOMB_STREAMS) == (answer is _bomb)
        assert runner.pull("other").ok and stored("other")[0] > 0, "the other channel goes on"
        hostile.hostile = False
        assert runner.pull("shop").ok and stored("shop")[0] > 0, "the next pull stores the shop's returns"
    finally:
        runner.close()


def _bundled() -> list[str]:
    from retsync import registry

    # a connector that pulls nothing (manual: returns entered by people) talks to no API
    return sorted(name for name, cls in registry.connectors().items()
                  if cls.__module__.startswith("retsync_connectors.") and cls.capabilities.streams)


@pytest.mark.parametrize("name", _bundled())
def test_every_connector_sends_through_the_channel_tables_limits(name: str, tmp_path: Path) -> None:
    """A key in the channel table that no connector passes on would be a setting that silently does nothing."""
    from retsync import registry
    from retsync.kit.contract import Runtime

    cls, model = registry.get(name), registry.settings_model_for(name)
    assert cls is not None and model is not None
    table = {**cls.sandbox_channel("http://127.0.0.1:9"), "max_response_size": "3MiB",
             "request_deadline": "7s", "max_retry_after": "11s", "max_retries": 2}
    connector = cls(name, model.model_validate(table), Runtime(state_dir=tmp_path))
    try:
        http = connector.client.http  # type: ignore[attr-defined]
        assert http.limits == HttpLimits(max_response_bytes=3 * MiB, deadline=7, max_retry_after=11)
        assert http.retry.max_retries == 2
    finally:
        connector.close()
