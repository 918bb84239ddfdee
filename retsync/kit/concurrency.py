"""Independent reads of one channel in parallel, never more than the channel allows.

A page of 50 bol returns names 50 details and up to 50 orders; read one after the other at 100 ms each, that is
ten seconds of waiting per page. They do not depend on each other, so `ReadPool.read_all` sends them side by
side, up to the channel's `max_concurrency`. How many go out at once adapts as a TCP sender does: a 429 halves
it (the whole channel is also paused by `ChannelHttp`), every `RECOVER_AFTER` clean answers add one back up to
the configured ceiling, and a channel whose answers say how many requests remain in its window
(`x-ratelimit-remaining`) never gets more in flight than that.

What does not change: results come back in the order of the keys, so a connector maps them exactly as it did
sequentially, and the first failure (in key order) is raised once the reads in flight have finished, so an error
fails the page as before instead of leaving threads behind. `soon` starts one read in the background (the next
page of a list while this page's look-ups are read) and counts against the same width. A read that itself calls `read_all` (a batch of
look-ups, each paged) runs its inner reads one after the other: the pool's threads are the outer reads', and
waiting on the same pool from inside it could only deadlock.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

RECOVER_AFTER = 20
"""Clean answers in a row, per read in flight, before one more may go out after a 429 shrank the pool."""


class ReadPool:
    """The parallel reads of one channel: a thread pool sized by `max_concurrency` and the current width."""

    def __init__(self, channel: str, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency is at least 1 (1: one read at a time)")
        self.channel = channel
        self.ceiling = max_concurrency
        self._width = max_concurrency
        self._remaining: int | None = None
        self._clean = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.widest = 1
        """The most reads that were in flight at once (benchmarks and tests read it)."""
        self._inside = threading.local()
        self._flying = 0

    @property
    def width(self) -> int:
        """How many reads may be in flight now."""
        with self._lock:
            if self._remaining is None:
                return self._width
            return max(1, min(self._width, self._remaining))

    def rate_limited(self) -> None:
        """A 429: halve the width (the channel's pause itself is the pacer's)."""
        with self._lock:
            self._width = max(1, self._width // 2)
            self._clean = 0

    def answered(self, remaining: int | None) -> None:
        """A clean answer; `remaining` is what the channel says is left of its window, if it says."""
        with self._lock:
            self._remaining = remaining if remaining is None else max(0, remaining)
            if self._width >= self.ceiling:
                return
            self._clean += 1
            if self._clean >= RECOVER_AFTER * self._width:
                self._width += 1
                self._clean = 0

    def read_all(self, read: Callable[[K], V], keys: Iterable[K]) -> list[V]:
        """`[read(key) for key in keys]`, up to `width` at a time; see the module's docstring."""
        wanted = list(keys)
        if self.ceiling <= 1 or len(wanted) <= 1 or getattr(self._inside, "reading", False):
            return [read(key) for key in wanted]
        pool = self._executor()
        futures: list[Future[V]] = []
        in_flight: set[Future[V]] = set()
        failed = False
        while len(futures) < len(wanted) or in_flight:
            while not failed and len(futures) < len(wanted) and (self._flying < self.width or not in_flight):
                future = self._submit(pool, read, wanted[len(futures)])
                futures.append(future)
                in_flight.add(future)
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            failed = failed or any(future.exception() is not None for future in done)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def soon(self, read: Callable[[K], V], key: K) -> Callable[[], V]:
        """Start `read(key)` now, in the background; the returned call waits for it and gives its result (or
        raises its error). With `max_concurrency` 1 the read happens when the result is asked for."""
        if self.ceiling <= 1 or getattr(self._inside, "reading", False):
            return lambda: read(key)
        future = self._submit(self._executor(), read, key)
        return future.result

    def _submit(self, pool: ThreadPoolExecutor, read: Callable[[K], V], key: K) -> Future[V]:
        with self._lock:
            self._flying += 1
            self.widest = max(self.widest, self._flying)
        # each read logs with the caller's context (channel, stream), in a copy of its own
        future = pool.submit(contextvars.copy_context().run, self._one, read, key)
        future.add_done_callback(self._landed)
        return future

    def _landed(self, _: Future[V]) -> None:
        with self._lock:
            self._flying -= 1

    def _one(self, read: Callable[[K], V], key: K) -> V:
        self._inside.reading = True
        try:
            return read(key)
        finally:
            self._inside.reading = False

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.ceiling, thread_name_prefix=f"read-{self.channel}")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
