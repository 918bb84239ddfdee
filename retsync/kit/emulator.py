"""The routes half of a sandbox emulator: routing, tokens, fault switches, a request log.

The records it serves come from its seeded half (`retsync.kit.sandbox.SeededData`).

An emulator is a plain function from `httpx.Request` to `httpx.Response`, so
tests run it in-process through `httpx.MockTransport`, and `serve()` puts
the very same object on a loopback port for the demo, benchmarks and crash
tests. Each connector's emulator then holds only its API.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Handler = Callable[..., httpx.Response]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Mark an emulator method as the handler of `METHOD /path/{param}`."""

    def mark(func: Handler) -> Handler:
        func.__dict__.setdefault("_routes", []).append((method.upper(), pattern))
        return func

    return mark


class DropConnection(Exception):
    """Close the connection without an answer (in-process: httpx.ConnectError)."""


class Hang(Exception):
    """Answer nothing for `delay` seconds, then close (in-process: httpx.ReadTimeout at once)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay


class TruncateBody(Exception):
    """Announce a body and send only part of it (in-process: httpx.RemoteProtocolError)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


@dataclass
class Fault:
    """A switch that spoils matching requests: `kind` is one of the names in `Emulator.FAULT_KINDS`.

    `after` lets that many matching requests through first, so a fault can land in the middle of a sync (a
    later page, a token that expires between pages) instead of on its first request.
    """

    kind: str
    times: int | None = 1
    path: str = ""
    """Only requests whose path starts with this."""
    path_suffix: str = ""
    """Only requests whose path ends with this (`/refunds` of any order)."""
    method: str | None = None
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    after: int = 0

    def matches(self, request: httpx.Request, changes_state: bool = True) -> bool:
        """`changes_state`: what the emulator says of the request (`Emulator.changes_state`); a `lost` answer
        is only a write's (a read whose answer is lost is a plain network fault), token endpoints aside."""
        if self.kind == "lost" and (not changes_state or "token" in request.url.path):
            return False
        return (request.url.path.startswith(self.path) and request.url.path.endswith(self.path_suffix)
                and self.method in (None, request.method))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    repeated: dict[str, list[str]] = field(default_factory=dict)
    """Every value of a parameter given more than once (`query` keeps the last), e.g. ids asked in one batch."""
    changes_state: bool = True
    """What `Emulator.changes_state` said of it: False for a read, which the bench replays as its floor."""


@dataclass
class Emulator:
    """Subclass with `@route` methods; each gets the request and the path parameters as keywords."""

    FAULT_KINDS = ("status", "slow", "timeout", "malformed", "invalid_json", "wrong_shape", "truncated", "drop",
                   "expire_tokens", "lost")
    """status: an error answer (`status`, optional `retry_after`); slow: answer after `delay` seconds;
    timeout: no answer within the client's read timeout (on loopback: silence for `delay` seconds, default 30);
    malformed: the emulator's JSON cut short; invalid_json: a 200 whose body is an HTML proxy page, not JSON;
    wrong_shape: valid JSON the spec does not describe; truncated: fewer bytes than announced; drop: the
    connection refused or closed without an answer; expire_tokens: every issued token becomes invalid; lost: a
    write (any method but GET and HEAD, token endpoints aside) is carried out and its answer never arrives."""

    seed: int = 1
    requests: list[LoggedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    log_requests: bool = True

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.over_limit = 0
        """Requests refused for going over the API's rate limit (a 429, or the API's own way of saying it), never
        counting injected faults: the benchmarks check that retsync's pacing kept it at 0."""
        self.tokens: dict[str, float] = {}
        self._latency: tuple[float, float] = (0.0, 0.0)
        self._latency_rng = random.Random(f"latency:{self.seed}")
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        for name in dir(type(self)):
            func = getattr(type(self), name)
            for method, pattern in getattr(func, "_routes", ()):
                regex = re.compile(
                    "^" + re.sub(r"\{([^}]+)\}", lambda m: f"(?P<{m.group(1).replace('-', '_')}>[^/]+)", pattern) + "$"
                )
                self._routes.append((method, regex, getattr(self, name)))
        # literal routes before parameterised ones, so `/returns/{id}` never shadows `/returns/export`
        self._routes.sort(key=lambda r: (r[1].pattern.count("(?P<"), -len(r[1].pattern)))

    # --- latency ----------------------------------------------------------------------------

    def set_latency(self, seconds: float, jitter: float = 0.0) -> None:
        """Answer every request served over HTTP (`serve`) `seconds` ± `jitter` late, as a real API 50-300 ms
        away does, so a benchmark measures what a merchant waits for rather than loopback's microseconds. The
        in-process transport of the tests is never delayed."""
        if seconds < 0 or jitter < 0 or jitter > seconds:
            raise ValueError("latency and jitter are seconds, jitter at most the latency")
        self._latency = (seconds, jitter)

    def latency(self) -> float:
        """The delay of one request: the fixed part and a uniform draw of the jitter (seeded, per emulator)."""
        seconds, jitter = self._latency
        if not seconds:
            return 0.0
        with self.lock:
            return seconds + self._latency_rng.uniform(-jitter, jitter)

    # --- faults -----------------------------------------------------------------------------

    def inject(self, kind: str, **options: Any) -> Fault:
        """Switch a fault on: `inject("status", status=503, times=3, path="/retailer/returns")`."""
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(self.FAULT_KINDS)}")
        fault = Fault(kind=kind, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def lose_answer(self, method: str, path_suffix: str) -> Fault:
        """The next `method` request to a path ending in `path_suffix` is carried out, and its answer never
        arrives (a proxy timing out after the write): what an idempotency key is for."""
        return self.inject("lost", method=method.upper(), path_suffix=path_suffix)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def changes_state(self, request: httpx.Request) -> bool:
        """Whether a request writes at the channel (a decision, a status) rather than reads. By method here; an
        API that reads by POST (GraphQL queries, BaseLinker's get* methods) says so by overriding this, and its
        `lost` fault and the bench's floor follow."""
        return request.method not in ("GET", "HEAD")

    def _take_fault(self, request: httpx.Request) -> Fault | None:
        writes = self.changes_state(request)
        with self.lock:
            for fault in self.faults:
                if fault.matches(request, writes) and (fault.times is None or fault.times > 0):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    # --- tokens -----------------------------------------------------------------------------

    def issue_token(self, ttl: float) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + ttl
        return token

    def bearer_ok(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return False
        expires = self.tokens.get(header[7:].strip())
        return expires is not None and time.monotonic() < expires

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # --- hooks for subclasses --------------------------------------------------------------

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        """Return an error response when the request may not pass; None lets it through."""
        return None

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.json_response(404, {"error": "not found", "path": request.url.path})

    def malformed_body(self) -> bytes:
        return b'{"returns": [{"returnId": "1", "registrationDateTime": '

    def invalid_json_body(self) -> bytes:
        """What a proxy or a PHP warning puts where the JSON should be."""
        return b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"

    def wrong_shape_body(self) -> Any:
        return {"unexpected": ["this", "is", "not", "the", "documented", "shape"]}

    # --- state a test reaches into ---------------------------------------------------------

    def add_odd_return(self) -> str:
        """Add one new return whose status and reason values retsync has never heard of and whose optional
        fields are all missing; answer its external id as retsync stores it. Every emulator implements this, so
        the contract suite can prove unknown values are stored, not crashed on."""
        raise NotImplementedError(f"{type(self).__name__} must implement add_odd_return()")

    POISONS = ("quantity", "postcode")
    """What `add_poison_return` can put in a return: `quantity`, a line quantity of 1e30 (a JSON number no
    INTEGER column holds); `postcode`, a 36-character postcode and a 64-character phone (longer than their
    varchar columns on PostgreSQL)."""

    def add_poison_return(self, poison: str = "quantity") -> str:
        """Add one new return carrying `poison` (see POISONS), as a customer or a broken plugin can send it;
        answer its external id as retsync stores it. The hostile-input suite proves such a return never stops
        its channel."""
        raise NotImplementedError(f"{type(self).__name__} must implement add_poison_return()")

    def acts_applied(self) -> list[tuple[str, ...]]:
        """Every effect a decision act had on this channel, in order, one entry per refund, credit slip, state
        change or handling, naming what it acted on (the kind of effect, the order or return, the line) and never
        the id the channel gave it: an act carried out twice shows up as the same entry twice. The contract
        suite asserts that a lost answer never doubles an entry."""
        raise NotImplementedError(f"{type(self).__name__} must implement acts_applied()")

    def held_returns(self) -> dict[str, str]:
        """Shops only: key → shop reference of every record retsync created to hold another channel's return."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold other channels' returns")

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """Shops only: do in the emulated back office what a merchant does to decide a held return
        (`kind` is a DecisionKind value)."""
        raise NotImplementedError(f"{type(self).__name__} cannot hold other channels' returns")

    # --- dispatch ---------------------------------------------------------------------------

    @staticmethod
    def json_response(status: int, body: Any, content_type: str = "application/json", **headers: str) -> httpx.Response:
        return httpx.Response(
            status,
            content=json.dumps(body, separators=(",", ":")).encode(),
            headers={"content-type": content_type, **headers},
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        body: Any = None
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                body = request.content.decode("utf-8", "replace")
        logged = LoggedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.url.params),
            repeated={key: request.url.params.get_list(key) for key in request.url.params
                      if len(request.url.params.get_list(key)) > 1},
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            changes_state=self.changes_state(request),
        )
        if self.log_requests:
            with self.lock:
                self.requests.append(logged)
        response = self._dispatch(request)
        logged.status = response.status_code
        if response.status_code == 429 and not response.extensions.get("injected"):
            self.count_over_limit()
        return response

    def count_over_limit(self) -> None:
        """One request over the rate limit; an API that says so without a 429 (BaseLinker, Shopify's GraphQL)
        calls this itself."""
        with self.lock:
            self.over_limit += 1

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.kind == "status":
                headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
                injected = self.json_response(fault.status, {"status": fault.status, "detail": "injected fault"},
                                              **headers)
                injected.extensions["injected"] = True
                return injected
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "timeout":
                raise Hang(fault.delay or 30.0)
            elif fault.kind == "drop":
                raise DropConnection()
            elif fault.kind == "expire_tokens":
                self.expire_tokens()
        for method, regex, handler in self._routes:
            match = regex.match(request.url.path)
            if method == request.method and match:
                denied = self.authorize(request)
                if denied is not None:
                    return denied
                response = handler(request, **match.groupdict())
                if fault is not None and fault.kind == "malformed":
                    return httpx.Response(response.status_code, content=self.malformed_body(), headers=response.headers)
                if fault is not None and fault.kind == "invalid_json":
                    kept = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
                    return httpx.Response(response.status_code, content=self.invalid_json_body(), headers=kept)
                if fault is not None and fault.kind == "wrong_shape":
                    return self.json_response(response.status_code, self.wrong_shape_body(),
                                              response.headers.get("content-type", "application/json"))
                if fault is not None and (fault.kind == "truncated"
                                          or (fault.kind == "lost" and response.status_code < 400)):
                    raise TruncateBody(response)
                return response
        return self.not_found(request)

    # --- in-process and on loopback ---------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            try:
                return self.handle(request)
            except DropConnection:
                raise httpx.ConnectError("connection refused (injected)", request=request) from None
            except Hang:
                raise httpx.ReadTimeout("timed out waiting for the answer (injected)", request=request) from None
            except TruncateBody:
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body") from None

        return httpx.MockTransport(handler)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve on loopback in a background thread; yields the base URL."""
        server = _EmulatorServer((host, port), _EmulatorRequestHandler, self)
        thread = threading.Thread(target=server.serve_forever, name=f"emulator-{type(self).__name__}", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


class _EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, handler)


class _EmulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # without it every keep-alive answer waits ~40 ms for a delayed ACK
    server: _EmulatorServer

    def log_message(self, format: str, *args: Any) -> None:  # the emulator keeps its own request log
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        content = self.rfile.read(length) if length else b""
        host = self.headers.get("host", "127.0.0.1")
        request = httpx.Request(self.command, f"http://{host}{self.path}", headers=dict(self.headers), content=content)
        delay = self.server.emulator.latency()
        if delay:
            time.sleep(delay)  # this request's own thread: other requests of the same moment wait in parallel
        try:
            response = self.server.emulator.handle(request)
        except DropConnection:
            self.close_connection = True
            return
        except Hang as hang:
            time.sleep(hang.delay)
            self.close_connection = True
            return
        except TruncateBody as truncated:
            body = truncated.response.content
            self.send_response(truncated.response.status_code)
            self.send_header("content-type", truncated.response.headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        body = response.content
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

