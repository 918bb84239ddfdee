"""Fetching the next page while the current one is stored.

A channel answers a page in 50–300 ms and the store takes a few tens of ms to write it; done one after the other,
the two add up on every page of a backfill. `ahead` runs the connector's page generator in a thread of its own,
at most `pages` pages ahead of the store, so the store's work hides behind the network's.

What does not change: the store still takes the pages in their order, one transaction per page and its cursor,
so a kill anywhere loses nothing and duplicates nothing; a page fetched ahead and never stored is fetched again
from the stored cursor next time. An error of the connector reaches the store at the page it happened at, after
every page before it was stored, exactly as without the thread.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def ahead(pages: Iterator[T], lookahead: int, stop: threading.Event) -> Iterator[T]:
    """The items of `pages`, produced up to `lookahead` items ahead of the consumer; `lookahead` 0 is the plain
    iterator. Leaving the loop early (a break, an exception, `stop`) stops the producer before its next item."""
    if lookahead <= 0:
        yield from pages
        return
    handoff: queue.Queue[object] = queue.Queue(maxsize=lookahead)
    leaving = threading.Event()

    def offer(item: object) -> bool:
        """Hand one item over, waiting for room; False when the consumer has gone."""
        while not leaving.is_set():
            try:
                handoff.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in pages:
                if not offer(item) or stop.is_set():
                    break
            else:
                offer(_DONE)
                return
        except BaseException as exc:  # handed to the consumer, raised there
            offer(_Failed(exc))
            return
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()  # the generator's own clean-up runs in the thread that ran it
        offer(_DONE)

    # the producer logs with the consumer's context (channel, stream), as the code it runs did before
    context = contextvars.copy_context()
    producer = threading.Thread(target=context.run, args=(produce,), name="page-lookahead", daemon=True)
    producer.start()
    try:
        while True:
            try:
                item = handoff.get(timeout=_POLL_S)
            except queue.Empty:
                if not producer.is_alive() and handoff.empty():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        leaving.set()
        producer.join()
