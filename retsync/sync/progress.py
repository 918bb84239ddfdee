"""How a long pull is going, told while it runs: a first backfill of thousands of returns takes minutes, and
silence until the end reads as a hang.

The daemon logs one `pull_progress` line per channel at most every `every` seconds (journald gets a line to
watch, not one per page); `retsync sync` on a terminal also draws a counter per channel (`terminal_counters`).
Pulls shorter than `every` say nothing more than before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog

from retsync.kit.contract import Stream

log = structlog.get_logger(__name__)


@dataclass
class PageDone:
    """What a pull of one channel's stream has stored so far."""

    channel: str
    stream: Stream
    pages: int
    returns: int
    orders: int
    elapsed_s: float


PageListener = Callable[[PageDone], None]


@dataclass
class PullProgress:
    """Counts pages per channel and logs progress at most every `every` seconds of a pull."""

    every: float = 30.0
    clock: Callable[[], float] = time.monotonic
    listeners: list[PageListener] = field(default_factory=list)
    _started: dict[tuple[str, Stream], float] = field(default_factory=dict)
    _logged: dict[tuple[str, Stream], float] = field(default_factory=dict)

    def start(self, channel: str, stream: Stream) -> None:
        now = self.clock()
        self._started[(channel, stream)] = now
        self._logged[(channel, stream)] = now

    def page(self, channel: str, stream: Stream, pages: int, returns: int, orders: int) -> None:
        key = (channel, stream)
        now = self.clock()
        started = self._started.setdefault(key, now)
        done = PageDone(channel, stream, pages, returns, orders, now - started)
        if now - self._logged.get(key, started) >= self.every:
            self._logged[key] = now
            log.info("pull_progress", channel=channel, stream=stream.value, pages=pages, returns_so_far=returns,
                     orders_so_far=orders, elapsed_s=round(done.elapsed_s, 1),
                     returns_per_s=round(returns / done.elapsed_s, 1) if done.elapsed_s > 0 else None)
        for listener in self.listeners:
            listener(done)


class TerminalCounters:
    """One live line per channel on a terminal (tqdm): pages, returns, rate and time so far."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bars: dict[tuple[str, Stream], Any] = {}

    def __call__(self, done: PageDone) -> None:
        from tqdm import tqdm

        key = (done.channel, done.stream)
        bar = self._bars.get(key)
        if bar is None:
            bar = self._bars[key] = tqdm(desc=f"{done.channel} {done.stream.value}", unit=" returns",
                                         file=self.stream, position=len(self._bars), leave=True, dynamic_ncols=True)
        bar.set_postfix_str(f"{done.pages} pages", refresh=False)
        bar.update(done.returns - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def terminal_counters(stream: TextIO) -> TerminalCounters | None:
    """Counters for `retsync sync` where a person watches (a TTY); None elsewhere, so logs and pipes get
    nothing extra."""
    return TerminalCounters(stream) if stream.isatty() else None
