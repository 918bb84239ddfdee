"""One HTTP client per channel: retries, pacing, rate limits and OAuth, done once for every connector.

A connector states what it wants (a path, its media type, how to read its
error body); this module decides when to send, how long to wait, and when to
give up. A 429 blocks the whole channel, not only the request that got it,
because marketplaces count per client, and hammering a blocked API only
extends the block.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog

from retsync import __version__

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
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


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
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot, self._blocked_until)
            self._next_slot = slot + self._interval
            return slot - now


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
    ) -> None:
        self.channel = channel
        self.retry = retry
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
            transport=transport,
            verify=True,
            follow_redirects=False,
        )
        self.requests_sent = 0

    def close(self) -> None:
        self.client.close()

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
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = _retry_after_seconds(response.headers.get("x-ratelimit-reset"))
        if remaining is not None and reset is not None:
            try:
                if int(float(remaining)) <= 0:
                    self._pacer.block_for(reset)
            except ValueError:
                pass
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
            self._wait(self._pacer.wait_time())
            may_have_reached = True
            try:
                self.requests_sent += 1
                response = self.client.request(method, url, **kwargs)
            except TransientError as exc:  # the token endpoint is down or rate limited: nothing was sent
                problem, may_have_reached = str(exc), False
                delay = self.retry.backoff(attempt) if exc.retry_after is None else min(exc.retry_after,
                                                                                        self.retry.max_delay)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"{type(exc).__name__}: {exc or 'no detail'}"
                may_have_reached = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                delay = self.retry.backoff(attempt)
            else:
                self._note_rate_headers(response)
                if response.status_code in ok:
                    return response
                if response.status_code == 429:
                    # no Retry-After: the channel's documented block length (some block for a minute), else our backoff
                    delay = _retry_after_seconds(response.headers.get("retry-after")) or self._block_after_429
                    delay = self.retry.backoff(attempt) if delay is None else min(delay, self.retry.max_delay)
                    self._pacer.block_for(delay)
                    problem = f"rate limited (HTTP 429), channel paused {delay:.1f}s"
                    delay = 0.0  # the pacer holds every request of this channel until the block ends
                    may_have_reached = False
                elif response.status_code >= 500:
                    problem = f"HTTP {response.status_code}: {self._describe(response)}"
                    delay = self.retry.backoff(attempt)
                elif response.status_code == 401:
                    raise AuthError(f"HTTP 401 on {method} {url}: {self._describe(response)}")
                else:
                    raise ApiError(response.status_code, self._describe(response))
            if may_have_reached and not idempotent:
                raise TransientError(f"{method} {url}: {problem} (not repeated: it may have been applied)")
            if attempt >= self.retry.max_retries:
                raise TransientError(f"{method} {url}: {problem} (gave up after {attempt + 1} attempts)")
            log.info("http_retry", method=method, url=url, problem=problem, attempt=attempt + 1, wait_s=round(delay, 2))
            self._wait(delay)
            attempt += 1

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BadPayload(f"{method} {url}: the answer is not valid JSON ({len(response.content)} bytes)") from None

    def _describe(self, response: httpx.Response) -> str:
        try:
            response.read()
            return self._error_detail(response)
        except Exception:  # an unreadable error body must not hide the status code
            return response.reason_phrase or "no detail"


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
        from retsync.secrets import remember

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
