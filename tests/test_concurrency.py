"""ChannelHttp.read_all: independent reads side by side, never more than the channel allows."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from retsync.kit.concurrency import RECOVER_AFTER
from retsync.kit.http import ApiError, ChannelHttp, RetryPolicy

BASE = "https://api.example.test"


class Server:
    """An in-process API that counts the requests it is answering at once."""

    def __init__(self, answer: httpx.Response | None = None, hold: float = 0.02, together: int | None = None) -> None:
        self.answer = answer
        self.hold = hold
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_at_once = 0
        self.paths: list[str] = []
        self.meet = threading.Barrier(together, timeout=10) if together else None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
            self.paths.append(request.url.path)
        try:
            if self.meet is not None and not self.meet.broken:
                self.meet.wait()  # breaks (and the read fails) unless `together` requests really are in flight
            time.sleep(self.hold)
            if request.url.path.startswith("/missing"):
                return httpx.Response(404, json={"detail": f"no {request.url.path}"})
            return self.answer or httpx.Response(200, json={"path": request.url.path})
        finally:
            with self.lock:
                self.in_flight -= 1


def _client(server: Server, max_concurrency: int) -> ChannelHttp:
    return ChannelHttp("test", base_url=BASE, retry=RetryPolicy(max_retries=0), sleep=lambda _: None,
                       transport=httpx.MockTransport(server), max_concurrency=max_concurrency)


def _read(client: ChannelHttp):  # type: ignore[no-untyped-def]
    return lambda key: client.json("GET", f"/{key}")["path"]


def test_reads_go_out_side_by_side_up_to_the_limit_and_come_back_in_order() -> None:
    server = Server(together=4)
    client = _client(server, max_concurrency=4)
    keys = [f"order-{n}" for n in range(12)]
    assert client.read_all(_read(client), keys) == [f"/{key}" for key in keys]
    assert server.most_at_once == 4, "four reads were in flight together, never a fifth"
    assert sorted(server.paths) == sorted(f"/{key}" for key in keys), "each key read once"


def test_one_at_a_time_by_default() -> None:
    server = Server()
    client = ChannelHttp("test", base_url=BASE, sleep=lambda _: None, transport=httpx.MockTransport(server))
    assert client.read_all(_read(client), ["a", "b", "c"]) == ["/a", "/b", "/c"]
    assert server.most_at_once == 1


def test_the_first_failure_in_key_order_is_raised_and_no_new_read_starts_after_it() -> None:
    server = Server(hold=0.05)
    client = _client(server, max_concurrency=2)
    keys = ["a", "missing-1", "b", "missing-2", *(f"later-{n}" for n in range(20))]
    with pytest.raises(ApiError, match="no /missing-1"):
        client.read_all(_read(client), keys)
    assert len(server.paths) < len(keys), "reads after the failure were not sent"
    assert server.in_flight == 0, "nothing left running behind the error"


def test_a_429_halves_the_reads_in_flight_and_clean_answers_bring_them_back() -> None:
    limited = Server(answer=httpx.Response(429, headers={"Retry-After": "0"}))
    client = _client(limited, max_concurrency=4)
    with pytest.raises(Exception, match="429"):
        client.json("GET", "/x")
    assert client.reads.width == 2
    limited.answer, limited.hold = None, 0  # the channel recovers
    client.read_all(_read(client), range(RECOVER_AFTER * 2))
    assert client.reads.width == 3, "one more read in flight after a run of clean answers"


def test_a_channel_saying_how_few_requests_remain_gets_no_more_in_flight() -> None:
    server = Server(answer=httpx.Response(200, json={"path": "/"}, headers={"x-ratelimit-remaining": "1"}))
    client = _client(server, max_concurrency=4)
    client.json("GET", "/first")
    client.read_all(lambda key: client.json("GET", f"/{key}"), range(8))
    assert client.reads.width == 1
    assert server.most_at_once == 1, "one read at a time while the channel says one request is left"


@pytest.mark.parametrize("header", ["inf", "nan", "many", "-5"])
def test_a_broken_remaining_header_is_no_failure(header: str) -> None:
    server = Server(hold=0, answer=httpx.Response(200, json={"path": "/"}, headers={"x-ratelimit-remaining": header}))
    client = _client(server, max_concurrency=4)
    assert len(client.read_all(lambda key: client.json("GET", f"/{key}"), range(3))) == 3


def test_soon_starts_a_read_at_once_and_gives_its_result_or_error_when_asked() -> None:
    server = Server()
    client = _client(server, max_concurrency=2)
    later = client.soon(_read(client), "next-page")
    failing = client.soon(_read(client), "missing-page")
    deadline = time.monotonic() + 5
    while len(server.paths) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(server.paths) == ["/missing-page", "/next-page"], "both sent before anyone asked"
    assert later() == "/next-page"
    with pytest.raises(ApiError, match="no /missing-page"):
        failing()
