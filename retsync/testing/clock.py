"""Virtual time for a connector's tests: seconds pass only when the connector (or the test) waits.

A connector that paces itself (a request budget per minute, a cost bucket that refills) waits through the
runtime's `sleep` hook; handing it `VirtualClock.sleep` makes those waits cost nothing and leaves them on record,
and an emulator given the same clock refills its bucket by them, so a test can assert exactly how long the
connector chose to wait.
"""

from __future__ import annotations


class VirtualClock:
    """Monotonic seconds, starting at 1000, moved by `sleep` (recorded in `sleeps`) or `advance`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Time passing while nobody waits (between two pulls)."""
        self.now += seconds
