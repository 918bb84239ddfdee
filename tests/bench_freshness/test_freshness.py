"""bench.freshness's verdicts: what counts as fresh, what as missing, and which poll_interval a channel gets."""

from __future__ import annotations

import random
from datetime import timedelta

from pydantic import Field

from bench.freshness import Created, _row, _schedule, default_poll_interval
from retsync.kit.emulator import Emulator, LoggedRequest
from retsync_connectors.woocommerce.connector import WooCommerceConnector, WooCommerceSettings


def _created(name: str, latencies: list[float | None]) -> list[Created]:
    return [Created(name, str(n), at=100.0, seen=None if latency is None else 100.0 + latency)
            for n, latency in enumerate(latencies)]


def _emulator(*statuses: int) -> Emulator:
    emulator = Emulator()
    for status in statuses:
        emulator.requests.append(LoggedRequest("GET", "/returns", {}, {}, None, status=status))
    return emulator


def test_a_connector_is_fresh_when_95_percent_show_within_a_minute() -> None:
    row = _row("shop", timedelta(seconds=45), _emulator(200, 200), _created("shop", [5.0] * 19 + [58.0]),
               end=400.0, failing=None)
    assert row["met"] is True and row["p95_s"] == 58.0 and row["p50_s"] == 5.0
    assert row["poll_interval"] == "45s" and row["statuses"] == {"200": 2} and row["answered_429"] == 0


def test_a_return_never_seen_is_later_than_any_seen_one() -> None:
    row = _row("shop", timedelta(seconds=45), _emulator(), _created("shop", [5.0, None]), end=400.0, failing=None)
    assert row["met"] is False and row["p95_s"] is None and row["max_s"] is None
    assert row["not_seen"] == 1 and row["not_seen_after_s"] == 300.0


def test_a_connector_whose_limits_allow_no_poll_a_minute_is_measured_not_judged() -> None:
    row = _row("amazon", timedelta(minutes=5), _emulator(), _created("amazon", [5.0, None]), end=400.0,
               failing=None)
    assert row["met"] is None and row["target"] == "exception: the API's limits allow a poll every 5m"


def test_a_429_fails_the_row_however_fresh() -> None:
    row = _row("shop", timedelta(seconds=45), _emulator(200, 429), _created("shop", [1.0]), end=400.0,
               failing=None)
    assert row["answered_429"] == 1 and row["met"] is False


def test_each_connector_polls_at_its_own_default() -> None:
    assert default_poll_interval(WooCommerceConnector) == WooCommerceSettings.model_fields["poll_interval"].default

    class Faster(WooCommerceSettings):
        poll_interval: timedelta = Field(default=timedelta(seconds=45))

    class FasterConnector(WooCommerceConnector):
        settings_model = Faster

    assert default_poll_interval(FasterConnector) == timedelta(seconds=45)


def test_every_connector_gets_its_returns_spread_over_the_window() -> None:
    schedule = _schedule(["a", "b"], 5, 100.0, random.Random(1))
    assert [moment for moment, _ in schedule] == sorted(moment for moment, _ in schedule)
    assert all(0 <= moment <= 100 for moment, _ in schedule)
    assert sorted(name for _, name in schedule) == ["a"] * 5 + ["b"] * 5
