"""One HTTP client per channel: retries, pacing, rate limits and OAuth, done once for every connector.

A connector states what it wants (a path, its media type, how to read its
error body); this module decides when to send, how long to wait, and when to
give up. A 429 blocks the whole channel, not only the request that got it,
because marketplaces count per client, and hammering a blocked API only
extends the block.
"""

from __future__ import annotations

import email.utils
import functools
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from itertools import accumulate
from typing import Any

import httpx
import structlog

from retsync import __version__
from retsync.kit.concurrency import K, ReadPool, V

USER_AGENT = f"retsync/{__version__} (+https://github.com/retsync/retsync)"

log = structlog.get_logger(__name__)


class ChannelError(Exception):
    """A channel-level failure with a message fit for the merchant's log."""

    transient = False


class TransientError(ChannelError):
    """Network trouble, 5xx or rate limiting that outlived the retries; the next run tries again."""

    transient = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiError(ChannelError):
    """The channel refused the request (4xx); repeating it unchanged will not help."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message


class AuthError(ChannelError):
    """Credentials are wrong, revoked or expired beyond refresh; the message says what to do."""


class BadPayload(ChannelError):
    """The channel answered with something we cannot read; nothing from it is stored."""


class Stopped(Exception):
    """The daemon is shutting down; raised instead of waiting out a backoff."""


MiB = 1024 * 1024

MAX_JSON_DEPTH = 64
"""Deepest JSON nesting read. The channels' documents nest a handful of levels (the WooCommerce sandbox's
page of 100 orders: 8); Python's parser recurses once per level and fails with RecursionError near 1,000, so a
hostile `[[[[…` is refused before it is parsed, here and in every connector that calls `response.json()`."""

RAW_PIECE_BYTES = 4096
"""Compressed bytes handed to the decoder at a time. Deflate inflates at most ~1,032:1, so one piece decodes to
at most ~4 MiB before the size cap is checked again; a whole network read (64 KiB) could be 66 MiB."""


@dataclass(frozen=True)
class HttpLimits:
    """What one answer of a channel may cost: bytes, wall-clock time, and how long a channel may pause us.

    The byte cap counts the body as decoded, so a small gzip bomb is stopped at the cap, not after it inflated.
    16 MiB: the largest legitimate page is a WooCommerce page of 100 orders with their line items (212 KB in the
    sandbox; real shops' plugin meta data can make an order ~20 KB, 2 MB a page), so the cap leaves 8x room
    over that; parsed, a 16 MiB
    page is still ~100 MB of Python objects, which fits `MemoryMax=` of retsync.service beside the daemon's own
    ~150 MB.
    The deadline bounds a whole request, answer included, on top of the per-read `timeout`, which a server
    dripping a byte at a time resets forever.
    """

    max_response_bytes: int = 16 * MiB
    deadline: float = 120.0
    max_retry_after: float = 300.0

    @classmethod
    def of(cls, settings: Any) -> HttpLimits:
        """The limits of a channel's settings (`max_response_size`, `request_deadline`, `max_retry_after`)."""
        return cls(max_response_bytes=int(settings.max_response_size),
                   deadline=settings.request_deadline.total_seconds(),
                   max_retry_after=settings.max_retry_after.total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential with full jitter, so many channels recovering at once don't stampede."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds, or an HTTP date; None for anything else (a channel's typo must not stop the sync)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _count(value: str | None) -> int | None:
    """A rate-limit header's count of requests, None when absent or unreadable."""
    try:
        return int(float(value)) if value is not None else None
    except (ValueError, OverflowError):  # "abc", "nan", "inf": a hostile or broken header counts for nothing
        return None


def json_depth(body: bytes) -> int:
    """How deep the brackets of a JSON text nest, counted without parsing it (strings are skipped).

    Done with the regex engine and `bytes.translate`, so a 16 MiB page costs milliseconds, and no recursion.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(_DEPTH_STEP[b] for b in brackets))


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


class _Deadline(httpx.SyncByteStream):
    """The raw body in small pieces, failing once the request's wall-clock deadline or a shutdown has come."""

    def __init__(self, raw: httpx.SyncByteStream, request: httpx.Request, deadline: float, seconds: float,
                 stop: threading.Event) -> None:
        self._raw, self._request, self._deadline, self._seconds, self._stop = raw, request, deadline, seconds, stop

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._raw:
            if self._stop.is_set():
                raise Stopped()
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout(f"the answer took longer than the request deadline of {self._seconds:g}s",
                                        request=self._request)
            for start in range(0, len(chunk), RAW_PIECE_BYTES):
                yield chunk[start:start + RAW_PIECE_BYTES]

    def close(self) -> None:
        self._raw.close()


class _Capped(httpx.SyncByteStream):
    """The decoded body, refused as soon as it grows past the cap: the rest is never read nor inflated."""

    def __init__(self, decoding: httpx.Response, cap: int) -> None:
        self._decoding, self._cap = decoding, cap

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        try:
            for chunk in self._decoding.iter_bytes():
                size += len(chunk)
                if size > self._cap:
                    raise BadPayload(f"{self._decoding.request.method} {self._decoding.request.url.path}: the "
                                     f"answer is larger than {_size(self._cap)} (max_response_size); not read further")
                yield chunk
        except httpx.DecodingError as exc:
            raise BadPayload(f"{self._decoding.request.method} {self._decoding.request.url.path}: the answer's "
                             f"{self._decoding.headers.get('content-encoding')} encoding is broken: {exc}") from None

    def close(self) -> None:
        self._decoding.close()


def _size(count: int) -> str:
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"


class _Guarded(httpx.BaseTransport):
    """Below httpx's auth and body reading, so every answer (token endpoints too) is bounded before it is read.

    The answer goes up decoded (no Content-Encoding left), because the byte cap must count what the body
    inflates to; httpx's own decoders do the inflating.
    """

    def __init__(self, inner: httpx.BaseTransport, limits: HttpLimits, stop: threading.Event) -> None:
        self._inner, self._limits, self._stop = inner, limits, stop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self._limits.deadline
        response = self._inner.handle_request(request)
        raw = _Deadline(response.stream, request, deadline, self._limits.deadline, self._stop)  # type: ignore[arg-type]
        decoding = httpx.Response(response.status_code, headers=response.headers, stream=raw, request=request)
        headers = [(key, value) for key, value in response.headers.multi_items()
                   if key.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(response.status_code, headers=headers, request=request, extensions=response.extensions,
                              stream=_Capped(decoding, self._limits.max_response_bytes))

    def close(self) -> None:
        self._inner.close()


class _Pacer:
    """Spaces requests and holds them while the channel is blocked (429 or exhausted quota)."""

    def __init__(self, requests_per_second: float | None) -> None:
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._next_slot = 0.0
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def block_for(self, seconds: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)

    def wait_time(self) -> float:
        """Reserve the next slot; return how long the caller must wait for it."""
        return self.reserve()[0]

    def reserve(self) -> tuple[float, bool]:
        """Reserve the next slot: how long to wait for it, and whether that wait is a block (a 429, an exhausted
        quota, a Retry-After) rather than the ordinary pacing."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot, self._blocked_until)
            self._next_slot = slot + self._interval
            return slot - now, slot > now and slot == self._blocked_until


@dataclass(frozen=True)
class HttpEvent:
    """One request of a channel as it went, for whoever watches (the daemon's /metrics, `retsync doctor`)."""

    channel: str
    method: str
    host: str
    status: int | None
    """The answer's status; None when there was none (refused, timed out, cut off)."""
    rate_limit_wait: float = 0.0
    """Seconds the request was held before it went because the channel was blocked (429, quota, Retry-After)."""
    date: str | None = None
    """The answer's `Date` header, as the channel's clock tells it."""


_observers: list[Callable[[HttpEvent], None]] = []


def observe(observer: Callable[[HttpEvent], None]) -> Callable[[], None]:
    """Have `observer` called with every channel request from now on; returns the call that stops it.

    An observer runs on the request's thread and must be quick; what it raises is dropped, since watching a
    request must never fail it.
    """
    _observers.append(observer)
    return lambda: _observers.remove(observer) if observer in _observers else None


def _tell(event: HttpEvent) -> None:
    for observer in list(_observers):
        try:
            observer(event)
        except Exception:  # noqa: BLE001 - a watcher's bug is not the channel's failure
            log.debug("http_observer_failed", exc_info=True)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context (trusted CAs, certificate checks on) every channel's HTTPS goes through.

    A context holds the CA bundle parsed, about 0.85 MB; one per channel made a daemon of 50 channels 43 MB
    larger for 50 identical copies (measured). Python's SSLContext may be shared between threads and clients;
    SSL_CERT_FILE and SSL_CERT_DIR are honoured as httpx honours them."""
    return httpx.create_ssl_context()


class ChannelHttp:
    """The HTTP client of one channel."""

    def __init__(
        self,
        channel: str,
        *,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: timedelta = timedelta(seconds=30),
        retry: RetryPolicy = RetryPolicy(),
        requests_per_second: float | None = None,
        block_after_429: float | None = None,
        error_detail: Callable[[httpx.Response], str] | None = None,
        rate_limit_wait: Callable[[httpx.Response], float | None] | None = None,
        transport: httpx.BaseTransport | None = None,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] | None = None,
        limits: HttpLimits | None = None,
        max_concurrency: int = 1,
    ) -> None:
        self.channel = channel
        self.reads = ReadPool(channel, max_concurrency)
        self.retry = retry
        self.limits = limits or HttpLimits()
        self._error_detail = error_detail or _default_error_detail
        self._rate_limit_wait = rate_limit_wait
        self._stop = stop or threading.Event()
        self._sleep = sleep
        self._pacer = _Pacer(requests_per_second)
        self._block_after_429 = block_after_429
        self.client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            auth=auth,
            timeout=timeout.total_seconds(),
            transport=_Guarded(transport or httpx.HTTPTransport(verify=tls_context()), self.limits, self._stop),
            verify=tls_context(),
            follow_redirects=False,
        )
        # Proxies from the environment (HTTPS_PROXY) get transports of their own: bound those answers too.
        for pattern, mounted in self.client._mounts.items():
            if mounted is not None:
                self.client._mounts[pattern] = _Guarded(mounted, self.limits, self._stop)
        self.requests_sent = 0

    @classmethod
    def for_channel(
        cls,
        channel: str,
        settings: Any,
        runtime: Any,
        *,
        base_url: str | None = None,
        **api: Any,
    ) -> ChannelHttp:
        """The client a channel's settings and the daemon's runtime call for; the connector adds only its API's part.

        Retries, timeouts, pacing and the response limits are the same keys on every channel (`ChannelSettings`),
        so they are read here once instead of by each connector; `api` is what only the channel knows: headers,
        auth, how its error bodies read, how its rate-limit headers count.
        """
        return cls(
            channel,
            base_url=base_url if base_url is not None else settings.base_url,
            retry=RetryPolicy(settings.max_retries, max_delay=settings.max_backoff.total_seconds()),
            timeout=settings.timeout,
            requests_per_second=settings.requests_per_second,
            limits=HttpLimits.of(settings),
            max_concurrency=settings.max_concurrency,
            transport=runtime.transport,
            stop=runtime.stop,
            sleep=runtime.sleep,
            **api,
        )

    def close(self) -> None:
        self.reads.close()
        self.client.close()

    def read_all(self, read: Callable[[K], V], keys: Iterable[K]) -> list[V]:
        """`[read(key) for key in keys]` with up to the channel's `max_concurrency` reads in flight, results in
        the keys' order (`retsync.kit.concurrency`). For reads that do not depend on each other: the details or
        orders a page names. Pacing, pauses after a 429 and retries hold for each read as for any request."""
        return self.reads.read_all(read, keys)

    def soon(self, read: Callable[[K], V], key: K) -> Callable[[], V]:
        """Start one read in the background (the next page of a list while this page's look-ups are read); call
        the result to wait for it. It counts against `max_concurrency` as `read_all`'s reads do."""
        return self.reads.soon(read, key)

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
            if self._stop.is_set():
                raise Stopped()
        elif self._stop.wait(seconds):
            raise Stopped()

    def _note_rate_headers(self, response: httpx.Response) -> None:
        remaining = _count(response.headers.get("x-ratelimit-remaining"))
        reset = _retry_after_seconds(response.headers.get("x-ratelimit-reset"))
        if remaining is not None and remaining <= 0 and reset is not None:
            self._pacer.block_for(reset)
        if response.status_code == 429:
            self.reads.rate_limited()
        elif response.status_code < 400:
            self.reads.answered(remaining)
        if self._rate_limit_wait is not None:  # a channel with rate-limit headers of its own (a leaky bucket)
            wait = self._rate_limit_wait(response)
            if wait is not None and wait > 0:
                self._pacer.block_for(min(wait, self.retry.max_delay))

    def request(
        self,
        method: str,
        url: str,
        *,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; return a response whose status is in `ok`, or raise a ChannelError.

        A request that changes something (default: anything but GET/HEAD) is retried only when it
        certainly did not reach the channel (connection refused, 429). After a timeout or a 5xx it may
        have been applied, so the error goes up to the outbox, which checks the channel before sending
        again: a refund must never be repeated blindly.
        """
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "OPTIONS")
        attempt = 0
        while True:
            if self._stop.is_set():
                raise Stopped()
            waited, was_blocked = self._pacer.reserve()
            blocked = waited if was_blocked else 0.0
            self._wait(waited)
            may_have_reached = True
            try:
                self.requests_sent += 1
                response = self.client.request(method, url, **kwargs)
            except TransientError as exc:  # the token endpoint is down or rate limited: nothing was sent
                problem, may_have_reached = str(exc), False
                delay = self.retry.backoff(attempt) if exc.retry_after is None else min(exc.retry_after,
                                                                                        self.limits.max_retry_after)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"{type(exc).__name__}: {exc or 'no detail'}"
                may_have_reached = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if not may_have_reached:  # most often a wrong base_url: say which host it named
                    problem = f"cannot connect to {self._host(url)} ({problem})"
                delay = self.retry.backoff(attempt)
                if _observers:
                    _tell(HttpEvent(self.channel, method, self.client.base_url.host, None, blocked))
            else:
                if _observers:
                    _tell(HttpEvent(self.channel, method, response.request.url.host, response.status_code, blocked,
                                    response.headers.get("date")))
                self._note_rate_headers(response)
                if response.status_code in ok:
                    self._check_depth(method, url, response)
                    return response
                pause = self._pause(response)
                if response.status_code == 429:
                    if not pause:  # a 429 pauses the whole channel, for our backoff when it does not say how long
                        pause = self.retry.backoff(attempt)
                        self._pacer.block_for(pause)
                    problem = f"rate limited (HTTP 429), channel paused {pause:.1f}s"
                    may_have_reached = False
                elif response.status_code >= 500:
                    problem = f"HTTP {response.status_code}: {self._describe(response)}"
                    if pause:
                        problem += f", channel paused {pause:.1f}s as its Retry-After asks"
                elif response.status_code == 401:
                    raise AuthError(f"HTTP 401 on {method} {url}: {self._describe(response)}")
                else:
                    raise ApiError(response.status_code, self._describe(response))
                # the pacer holds every request of this channel until a pause ends: nothing to wait here
                delay = 0.0 if pause else self.retry.backoff(attempt)
            if may_have_reached and not idempotent:
                raise TransientError(f"{method} {url}: {problem} (not repeated: it may have been applied)")
            if attempt >= self.retry.max_retries:
                raise TransientError(f"{method} {url}: {problem} (gave up after {attempt + 1} attempts)")
            log.info("http_retry", method=method, url=url, problem=problem, attempt=attempt + 1, wait_s=round(delay, 2))
            self._wait(delay)
            attempt += 1

    def _pause(self, response: httpx.Response) -> float | None:
        """How long the whole channel pauses after a 429 or 5xx: its Retry-After (seconds or an HTTP date) if any,
        capped by `max_retry_after`; on a 429 without one, the channel's documented block length. None: back off.

        A WordPress shop in maintenance mode answers 503 with Retry-After: 600; retrying in a second would only
        spend the retries. The pause is set once in the pacer, so every request of the channel waits it out.
        """
        if response.status_code != 429 and response.status_code < 500:
            return None
        asked = _retry_after_seconds(response.headers.get("retry-after"))
        if not asked and response.status_code == 429:
            asked = self._block_after_429
        if not asked:
            return None
        pause = min(asked, self.limits.max_retry_after)
        self._pacer.block_for(pause)
        if pause < asked:
            log.info("http_retry_after_capped", channel=self.channel, status=response.status_code,
                     asked_s=round(asked, 1), wait_s=round(pause, 1))
        return pause

    def _check_depth(self, method: str, url: str, response: httpx.Response) -> None:
        if _looks_like_json(response.content) and json_depth(response.content) > MAX_JSON_DEPTH:
            raise BadPayload(f"{method} {url}: the answer's JSON nests deeper than {MAX_JSON_DEPTH} levels; "
                             f"no channel sends that, so it is not read")

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BadPayload(f"{method} {url}: the answer is not valid JSON ({len(response.content)} bytes)") from None

    def _host(self, url: str) -> str:
        """host:port a request goes to (never its path or query, which may carry a key)."""
        target = self.client.base_url.join(url)
        return f"{target.host}:{target.port}" if target.port else target.host

    def _describe(self, response: httpx.Response) -> str:
        try:
            response.read()
            return self._error_detail(response)
        except Exception:  # an unreadable error body must not hide the status code
            return response.reason_phrase or "no detail"


def error_detail_from(read: Callable[[Mapping[str, Any]], str | None]) -> Callable[[httpx.Response], str]:
    """A `ChannelHttp(error_detail=...)` from a reader of the channel's own error body (a JSON object): answers
    that are not JSON, not an object, or hold nothing `read` knows are described the common way, so a connector
    writes only what its API's errors look like."""
    def detail(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:300] or response.reason_phrase
        found = read(body) if isinstance(body, Mapping) else None
        return found or _default_error_detail(response)

    return detail


def _default_error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error_description", "error", "title"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:300]


class BearerTokenAuth(httpx.Auth):
    """A cached bearer token, fetched shortly before it expires and once more on a 401.

    The token request goes through the same transport as the API calls, so
    sandboxes and tests see it; a token is fetched only when there is none or
    it is about to expire, because marketplaces block clients that hammer
    their token endpoint. Subclasses say which grant they send and how they
    read the answer.
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self._basic = httpx.BasicAuth(client_id, client_secret)
        self._margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def grant(self) -> dict[str, str]:
        """The form fields of the token request."""
        raise NotImplementedError

    def accept(self, response: httpx.Response) -> tuple[str, float]:
        """Read the token endpoint's answer: (access token, seconds it lives); raise a ChannelError otherwise."""
        raise NotImplementedError

    def _valid_token(self) -> str | None:
        if self._token and self._clock() < self._expires_at - self._margin:
            return self._token
        return None

    def _token_request(self) -> httpx.Request:
        request = httpx.Request("POST", self.token_url, data=self.grant(),
                                headers={"Accept": "application/json", "User-Agent": USER_AGENT})
        return next(self._basic.auth_flow(request))

    def _store(self, response: httpx.Response) -> str:
        response.read()
        token, expires_in = self.accept(response)
        from retsync.kit.secrets import remember

        remember(token)
        self._token, self._expires_at = token, self._clock() + expires_in
        self.tokens_fetched += 1
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            token = self._valid_token()
            if token is None:
                token = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        with self._lock:
            if self._token == token:  # nobody refreshed it meanwhile: this token is dead
                self._token = None
            fresh = self._valid_token()
            if fresh is None:
                fresh = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request


class OAuth2ClientCredentials(BearerTokenAuth):
    """The client-credentials grant: the client id and secret buy a short-lived token."""

    def grant(self) -> dict[str, str]:
        return {"grant_type": "client_credentials"}

    def accept(self, response: httpx.Response) -> tuple[str, float]:
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"the token endpoint refused the client credentials (HTTP {response.status_code}: "
                f"{_default_error_detail(response)}); check client_id and client_secret"
            )
        if response.status_code != 200:
            raise TransientError(f"token endpoint answered HTTP {response.status_code}",
                                 retry_after=_retry_after_seconds(response.headers.get("retry-after")))
        try:
            body = response.json()
            return str(body["access_token"]), float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise BadPayload("the token endpoint's answer has no access_token") from None
