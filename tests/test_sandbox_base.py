"""The kit's sandbox base: seeded records that stay put, and the "lost answer" fault every emulator has."""

from __future__ import annotations

import time

import httpx
import pytest

from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import SeededData, ean13


class Counter(Emulator):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.refunds = 0

    @route("POST", "/orders/{order_id}/refunds")
    def refund(self, request: httpx.Request, order_id: str) -> httpx.Response:
        self.refunds += 1
        return self.json_response(201, {"id": self.refunds, "order": order_id})

    @route("GET", "/orders/{order_id}/refunds")
    def refunds_of(self, request: httpx.Request, order_id: str) -> httpx.Response:
        return self.json_response(200, {"count": self.refunds})


def test_a_lost_answer_is_carried_out_and_never_arrives() -> None:
    emulator = Counter()
    emulator.lose_answer("POST", "/refunds")
    with httpx.Client(transport=emulator.transport(), base_url="http://sandbox.invalid") as client:
        assert client.get("/orders/7/refunds").json() == {"count": 0}, "reads are not lost"
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/orders/7/refunds")
        assert client.get("/orders/7/refunds").json() == {"count": 1}, "the write happened"
        assert client.post("/orders/7/refunds").status_code == 201, "only the next write is lost"


def test_the_lost_fault_spares_token_endpoints_and_failed_writes() -> None:
    emulator = Counter()
    emulator.inject("lost")
    with httpx.Client(transport=emulator.transport(), base_url="http://sandbox.invalid") as client:
        assert client.post("/oauth/token").status_code == 404, "a token request is never the lost write"
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/orders/1/refunds")


def test_seeded_records_depend_on_the_seed_and_on_nothing_else() -> None:
    first, again, other = SeededData("shop", 3), SeededData("shop", 3), SeededData("shop", 4)
    assert first.rng("return", 5).random() == again.rng("return", 5).random()
    assert first.rng("return", 5).random() != other.rng("return", 5).random()
    assert first.rng("return", 5).random() != first.rng("order", 5).random()
    assert first.midnight.hour == 0 and first.midnight.tzinfo is not None


def test_ean13_carries_a_valid_check_digit() -> None:
    code = ean13(SeededData("shop").rng("product", 1))
    digits = [int(d) for d in code]
    assert len(code) == 13 and sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_a_latency_delays_answers_served_over_http_and_never_the_tests_transport() -> None:
    """The bench's 80 ms sandbox: every answer over loopback HTTP comes that late (± its jitter), while the
    in-process transport the tests use answers at once, whatever is set."""
    emulator = Counter()
    emulator.set_latency(0.08, 0.02)
    delays = [emulator.latency() for _ in range(200)]
    assert all(0.06 <= d <= 0.10 for d in delays) and len({round(d, 4) for d in delays}) > 50, "jittered"
    drawn: list[float] = []
    draw = emulator.latency
    emulator.latency = lambda: drawn.append(draw()) or drawn[-1]  # type: ignore[method-assign]
    with emulator.serve() as base_url, httpx.Client(base_url=base_url) as client:
        started = time.monotonic()
        assert client.get("/orders/7/refunds").status_code == 200
        assert time.monotonic() - started >= 0.06 and len(drawn) == 1
    with httpx.Client(transport=emulator.transport(), base_url="http://sandbox.invalid") as client:
        assert client.get("/orders/7/refunds").status_code == 200
    assert len(drawn) == 1, "the in-process transport is never delayed"
    with pytest.raises(ValueError):
        emulator.set_latency(0.02, 0.05)


class _OneAMinute(Emulator):
    """An API that lets one request through and refuses the rest with 429."""

    @route("GET", "/things")
    def things(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            first = not getattr(self, "used", False)
            self.used = True
        return self.json_response(200, []) if first else self.json_response(429, {"detail": "slow down"})


def test_the_emulator_counts_requests_over_the_rate_limit_but_not_injected_faults() -> None:
    emulator = _OneAMinute()
    client = httpx.Client(transport=emulator.transport(), base_url="https://api.test")
    emulator.inject("status", status=429, times=1)
    assert client.get("/things").status_code == 429
    assert emulator.over_limit == 0, "an injected 429 is a test's, not retsync going over the limit"
    statuses = [client.get("/things").status_code for _ in range(3)]
    assert statuses == [200, 429, 429] and emulator.over_limit == 2
