"""The kit's cursor and paging helpers: what a connector resumes from, and how it walks pages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone

from retsync.kit.paging import Cursor, walk_pages

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


class ShopCursor(Cursor):
    since: datetime | None = None
    page: int = 1
    phase: str = "orders"


def test_a_cursor_stored_with_a_page_is_read_back_the_same() -> None:
    cursor = ShopCursor(since=datetime(2026, 11, 30, tzinfo=timezone.utc), page=4, phase="refunds")
    assert ShopCursor.load(cursor.dump(), NOW) == cursor
    assert cursor.dump() == {"since": "2026-11-30T00:00:00Z", "page": 4, "phase": "refunds"}


def test_an_unreadable_cursor_starts_a_fresh_pass_rather_than_guess() -> None:
    assert ShopCursor.load({"since": "yesterday-ish", "page": 4}, NOW) == ShopCursor()
    assert ShopCursor.load({"page": "three"}, NOW) == ShopCursor()
    assert ShopCursor.load(None, NOW) == ShopCursor()


def test_a_date_beyond_the_pull_is_brought_back_to_it() -> None:
    """One record dated in year 9999 stored as the newest seen would otherwise silence the channel."""
    assert ShopCursor.load({"since": "9999-01-01T00:00:00Z"}, NOW).since == NOW


def test_walk_pages_resumes_from_the_position_it_hands_out() -> None:
    rows = list(range(23))
    fetch = lambda offset: rows[offset:offset + 10]  # noqa: E731
    walked = list(walk_pages(fetch, 0, size=10, stop=threading.Event(), by_offset=True))
    assert [(len(entries), position, last) for entries, position, last in walked] == [
        (10, 10, False), (10, 20, False), (3, 23, True)]
    resumed = list(walk_pages(fetch, 20, size=10, stop=threading.Event(), by_offset=True))
    assert [entries for entries, _, _ in resumed] == [rows[20:]]


def test_walk_pages_stops_between_pages_when_the_daemon_stops() -> None:
    stop = threading.Event()
    pages = walk_pages(lambda page: [page] * 10, 1, size=10, stop=stop)
    assert next(pages)[1] == 2
    stop.set()
    assert list(pages) == []


def test_walk_pages_asks_for_the_next_page_before_handing_this_one_out() -> None:
    asked: list[int] = []
    pages = {1: ["a", "b"], 2: ["c", "d"], 3: ["e"]}

    def fetch(page: int) -> list[str]:
        asked.append(page)
        return pages[page]

    def ahead(read: Callable[[int], list[str]], page: int) -> Callable[[], list[str]]:
        found = read(page)  # a channel's ChannelHttp.soon starts it in the background; here it is done at once
        return lambda: found

    walked = walk_pages(fetch, 1, size=2, stop=threading.Event(), ahead=ahead)
    assert next(walked) == (["a", "b"], 2, False) and asked == [1, 2], "page 2 asked for before page 1 is stored"
    assert next(walked) == (["c", "d"], 3, False) and asked == [1, 2, 3]
    assert next(walked) == (["e"], 4, True) and asked == [1, 2, 3], "nothing asked for after the last page"
