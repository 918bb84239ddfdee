"""Paging and cursors: how a connector walks a channel's listings and resumes them, without hand-rolling either.

- `Cursor`: a connector's cursor as a typed model (its dates, page or offset, phase); read back leniently (an
  unreadable cursor starts a fresh pass instead of skipping data) and with every date brought back to the pull's
  start.
- `walk_pages`: ask for page after page (page numbers or offsets) until the channel runs out.
- `ChangedSinceWalk`: a listing filtered by "changed since" a date, whose start stays put mid-walk.

A "changed since" walk, in detail:

Own shops list orders (and refunds) changed since a date, page by page. Mid-walk
the start date stays put, because a page number or offset only means something
for the same query; the walk remembers the newest date it has seen, and once
its last page is handed out the next walk starts from there (less the
channel's overlap). Its three values live in the stream cursor under the
connector's own key names, so a pass cut short resumes in the walk and at the
page it was in, and anything unreadable starts from the backfill date instead
of skipping data. No date moves a walk past the pull's start (`payload.not_after`): one record dated in
year 9999 would otherwise silence the channel, and a cursor stored that far ahead is brought back on load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Self, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from retsync.kit.payload import moment, not_after

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Cursor(BaseModel):
    """Subclass with the fields your paging resumes from; the defaults are where a first pull (a backfill)
    starts. `Page(cursor=walk.dump())` stores it with the page, `YourCursor.load(context.cursor, context.now)`
    reads it back on the next pull.

    Reading is lenient on purpose: a cursor that does not validate (written by an older version, or edited by
    hand) answers a fresh cursor, because starting over costs a re-read while guessing can skip returns. Every
    date in it is brought back to `now`, so a record dated in year 9999 stored as "newest seen" cannot silence
    the channel.
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    @classmethod
    def load(cls, stored: Mapping[str, Any] | None, now: datetime) -> Self:
        try:
            cursor = cls.model_validate(dict(stored or {}))
        except ValidationError as exc:
            log.warning("cursor_unreadable", cursor=cls.__name__, problems=exc.error_count(),
                        detail="a fresh pass starts instead")
            return cls()
        for name, value in list(cursor):
            if isinstance(value, datetime):
                setattr(cursor, name, not_after(value if value.tzinfo else value.replace(tzinfo=timezone.utc), now))
        return cursor

    def dump(self) -> dict[str, Any]:
        """The cursor as JSON-ready values, for `Page.cursor`."""
        return self.model_dump(mode="json")


def walk_pages(fetch: Callable[[int], Sequence[T]], start: int, *, size: int, stop: threading.Event,
               by_offset: bool = False,
               ahead: Callable[[Callable[[int], Sequence[T]], int], Callable[[], Sequence[T]]] | None = None,
               ) -> Iterator[tuple[Sequence[T], int, bool]]:
    """Ask `fetch(position)` for page after page from `start` until one comes back shorter than `size`.

    Yields `(entries, next_position, last)`: store `next_position` in the cursor with the page, so a pass cut
    short resumes at the page after the last one stored. Positions are page numbers (+1 a page) or, with
    `by_offset`, offsets (+ the entries received). Stops between pages when the daemon is stopping.

    `ahead` is the channel's `ChannelHttp.soon`: with it, the next page is asked for as soon as this one has
    arrived, while the caller maps and stores it (one more read in flight, within `max_concurrency`). A page read
    ahead and never handed out is read again from the stored cursor next time, like any page not stored.
    """
    position = start
    upcoming: Callable[[], Sequence[T]] | None = None
    while not stop.is_set():
        entries = upcoming() if upcoming is not None else fetch(position)
        position += len(entries) if by_offset else 1
        last = len(entries) < size
        upcoming = ahead(fetch, position) if ahead is not None and not last else None
        yield entries, position, last
        if last:
            return


@dataclass(frozen=True)
class WalkKeys:
    """How one connector names a walk's values in its cursor, and where its paging starts."""

    since: str = "since"
    position: str = "page"
    first: int = 1
    """1 for page numbers, 0 for offsets."""


@dataclass
class ChangedSinceWalk:
    since: datetime
    position: int
    seen: datetime | None = None
    keys: WalkKeys = field(default_factory=WalkKeys, repr=False)
    now: datetime | None = field(default=None, repr=False)
    """The pull's start: no date moves the walk past it (None: the clock)."""

    @classmethod
    def load(cls, cursor: Mapping[str, Any] | None, prefix: str, fresh_since: datetime,
             keys: WalkKeys = WalkKeys(), now: datetime | None = None) -> ChangedSinceWalk:
        """The walk stored under `prefix` in `cursor`, or a fresh one from `fresh_since`."""
        cursor = cursor or {}
        since = moment(cursor.get(prefix + keys.since))
        if since is None:
            return cls(fresh_since.astimezone(timezone.utc), keys.first, None, keys, now)
        try:
            position = max(keys.first, int(cursor.get(prefix + keys.position, keys.first)))
        except (TypeError, ValueError):
            position = keys.first
        seen = moment(cursor.get(prefix + "seen"))
        return cls(not_after(since, now), position, not_after(seen, now) if seen else None, keys, now)

    def saw(self, when: datetime | None) -> None:
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        when = not_after(when, self.now) if when is not None else None
        if when is not None and (self.seen is None or when > self.seen):
            self.seen = when

    def finish(self) -> None:
        """The last page is handed out: the next walk starts from the newest date seen."""
        self.since = max(self.since, self.seen) if self.seen is not None else self.since
        self.position, self.seen = self.keys.first, None

    def dump(self, prefix: str) -> dict[str, Any]:
        return {prefix + self.keys.since: self.since.isoformat(), prefix + self.keys.position: self.position,
                prefix + "seen": self.seen.isoformat() if self.seen else None}
