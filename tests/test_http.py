"""The HTTP layer: retries, 429 pauses for the whole channel, rate headers, OAuth token reuse."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
import respx

from retsync import __version__
from retsync.kit.http import (
    ApiError,
    AuthError,
    BadPayload,
    ChannelHttp,
    OAuth2ClientCredentials,
    RetryPolicy,
    Stopped,
    TransientError,
)

BASE = "https://api.example.test"


class Sleeps:
    """Records waits instead of sleeping, so tests are fast and can assert the backoff."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(sleeps: Sleeps, **kwargs: object) -> ChannelHttp:
    return ChannelHttp("test", base_url=BASE, retry=RetryPolicy(max_retries=3, base_delay=1.0, max_delay=60),
                       sleep=sleeps, **kwargs)  # type: ignore[arg-type]


@respx.mock
def test_retries_5xx_and_network_errors_with_growing_backoff() -> None:
    route = respx.get(f"{BASE}/x").mock(side_effect=[
        httpx.Response(503), httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={"ok": 1})])
    sleeps = Sleeps()
    assert _client(sleeps).json("GET", "/x") == {"ok": 1}
    assert route.call_count == 4
    assert len(sleeps.waits) == 3 and sleeps.waits[0] <= 1.0 < sleeps.waits[2] <= 8.0
    assert route.calls[0].request.headers["user-agent"].startswith(f"retsync/{__version__}")


@respx.mock
def test_gives_up_with_a_clear_transient_error() -> None:
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(502, json={"message": "bad gateway"}))
    with pytest.raises(TransientError, match=r"GET /x: HTTP 502: bad gateway \(gave up after 4 attempts\)"):
        _client(Sleeps()).request("GET", "/x")


@respx.mock
def test_429_honours_retry_after_and_pauses_the_whole_channel() -> None:
    respx.get(f"{BASE}/a").mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}),
                                             httpx.Response(200, json={})])
    respx.get(f"{BASE}/b").mock(return_value=httpx.Response(200, json={}))
    sleeps = Sleeps()
    client = _client(sleeps)
    client.request("GET", "/a")
    assert sleeps.waits and 6.5 <= max(sleeps.waits) <= 7.0
    sleeps.waits.clear()
    client._pacer.block_for(5)  # a block from another request of the same channel
    client.request("GET", "/b")
    assert sleeps.waits and sleeps.waits[0] > 4, "another request of the channel waits out the block too"


@respx.mock
def test_exhausted_quota_header_holds_the_next_request() -> None:
    respx.get(f"{BASE}/q").mock(return_value=httpx.Response(
        200, json={}, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}))
    sleeps = Sleeps()
    client = _client(sleeps)
    client.request("GET", "/q")
    assert sleeps.waits == []
    client.request("GET", "/q")
    assert sleeps.waits and 2.5 < sleeps.waits[0] <= 3


@respx.mock
def test_client_side_pacing() -> None:
    respx.get(f"{BASE}/p").mock(return_value=httpx.Response(200))
    sleeps = Sleeps()
    client = _client(sleeps, requests_per_second=2)
    for _ in range(3):
        client.request("GET", "/p")
    # the fake sleep does not move the clock, so the reserved slots are 0.5 s and 1.0 s from now
    assert len(sleeps.waits) == 2 and 0.4 < sleeps.waits[0] <= 0.5 and 0.9 < sleeps.waits[1] <= 1.0


@respx.mock
def test_4xx_is_not_retried_and_carries_the_channel_message() -> None:
    route = respx.put(f"{BASE}/r").mock(return_value=httpx.Response(400, json={"detail": "quantity too high"}))
    with pytest.raises(ApiError, match="HTTP 400: quantity too high"):
        _client(Sleeps()).request("PUT", "/r", json={})
    assert route.call_count == 1


@respx.mock
def test_invalid_json_is_a_bad_payload() -> None:
    respx.get(f"{BASE}/j").mock(return_value=httpx.Response(200, content=b'{"returns": ['))
    with pytest.raises(BadPayload, match="not valid JSON"):
        _client(Sleeps()).json("GET", "/j")


def test_stop_interrupts_a_backoff() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        ChannelHttp("t", base_url=BASE, stop=stop).request("GET", "/x")


@respx.mock
def test_oauth_token_is_reused_refreshed_before_expiry_and_once_on_401() -> None:
    now = [1000.0]
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    token_route = respx.post("https://login.example.test/token").mock(
        side_effect=lambda request: httpx.Response(200, json={"access_token": next(tokens), "expires_in": 300}))
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(401 if len(seen) == 4 else 200, json={})

    respx.get(f"{BASE}/x").mock(side_effect=api)
    auth = OAuth2ClientCredentials("https://login.example.test/token", "id", "secret", clock=lambda: now[0])
    client = _client(Sleeps(), auth=auth)
    for _ in range(3):
        client.request("GET", "/x")
    assert token_route.call_count == 1, "one token for many requests"
    assert token_route.calls[0].request.headers["authorization"].startswith("Basic ")
    assert token_route.calls[0].request.content == b"grant_type=client_credentials"
    client.request("GET", "/x")  # the API says 401: refreshed once, then retried
    assert token_route.call_count == 2 and seen[-2:] == ["Bearer tok-1", "Bearer tok-2"]
    now[0] += 280  # within the refresh margin of expiry
    client.request("GET", "/x")
    assert token_route.call_count == 3 and seen[-1] == "Bearer tok-3"


@respx.mock
def test_refused_client_credentials_are_an_auth_error() -> None:
    respx.post("https://login.example.test/token").mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
    respx.get(f"{BASE}/x").mock(return_value=httpx.Response(200))
    auth = OAuth2ClientCredentials("https://login.example.test/token", "id", "wrong")
    with pytest.raises(AuthError, match="check client_id and client_secret"):
        _client(Sleeps(), auth=auth, timeout=timedelta(seconds=1)).request("GET", "/x")


@respx.mock
def test_a_write_is_not_repeated_when_it_may_have_been_applied() -> None:
    route = respx.put(f"{BASE}/w").mock(side_effect=[httpx.ReadTimeout("answer lost"), httpx.Response(202)])
    with pytest.raises(TransientError, match="not repeated: it may have been applied"):
        _client(Sleeps()).request("PUT", "/w", json={})
    assert route.call_count == 1
    route = respx.post(f"{BASE}/p").mock(side_effect=[httpx.Response(503), httpx.Response(201)])
    with pytest.raises(TransientError):
        _client(Sleeps()).request("POST", "/p", json={})
    assert route.call_count == 1


@respx.mock
def test_a_write_is_repeated_when_it_certainly_did_not_arrive() -> None:
    route = respx.put(f"{BASE}/w").mock(side_effect=[
        httpx.ConnectError("refused"), httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(202)])
    assert _client(Sleeps()).request("PUT", "/w", json={}).status_code == 202
    assert route.call_count == 3


@respx.mock
def test_token_endpoint_outage_is_retried_with_its_retry_after() -> None:
    respx.post("https://login.example.test/token").mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "4"}), httpx.Response(503),
        httpx.Response(200, json={"access_token": "t", "expires_in": 300})])
    api = respx.put(f"{BASE}/x").mock(return_value=httpx.Response(202))
    sleeps = Sleeps()
    auth = OAuth2ClientCredentials("https://login.example.test/token", "id", "secret")
    assert _client(sleeps, auth=auth).request("PUT", "/x", json={}).status_code == 202
    assert api.call_count == 1 and 3.9 < sleeps.waits[0] <= 4.0


def test_every_channel_checks_certificates_through_one_shared_tls_context() -> None:
    """One parsed CA bundle for the whole daemon (50 channels paid 43 MB for 50 copies), still verifying."""
    import ssl

    from retsync.kit.http import tls_context

    clients = [ChannelHttp(name, base_url="https://api.example.test") for name in ("bol", "allegro")]
    try:
        contexts = {id(client.client._transport._inner._pool._ssl_context) for client in clients}  # type: ignore[attr-defined]
    finally:
        for client in clients:
            client.close()
    assert contexts == {id(tls_context())}
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname
