"""A "changed since" walk: how a connector pages through a listing filtered by a date, and resumes it.

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from retsync.kit.payload import moment, not_after


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
