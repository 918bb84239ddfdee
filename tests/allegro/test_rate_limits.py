"""Allegro's limits: the client paces itself, and a 429 holds the whole channel for Allegro's minute."""

from __future__ import annotations

from retsync.testing.memory import InMemoryStore
from retsync_connectors.allegro.connector import AllegroSettings
from retsync_connectors.allegro.emulator import AllegroEmulator

from .conftest import FakeClock, MakeConnector


def test_the_default_pace_stays_below_allegros_25_requests_per_second() -> None:
    settings = AllegroSettings(connector="allegro", client_id="id", client_secret="secret-value")
    assert settings.requests_per_second is not None and settings.requests_per_second < 25


def test_a_429_storm_slows_that_channel_without_failing_another(
        make_connector: MakeConnector, clock: FakeClock, sleeps: list[float]) -> None:
    stormy = AllegroEmulator(seed=5, n_returns=300, rate_limit=4, rate_window=1.0, clock=clock)
    calm = AllegroEmulator(seed=6, n_returns=300)

    stormy_store, calm_store = InMemoryStore(), InMemoryStore()
    stormy_store.run(make_connector(stormy, channel="stormy", max_retries=8, page_size=100))
    waited_by_storm = list(sleeps)
    sleeps.clear()
    calm_store.run(make_connector(calm, channel="calm"))

    refused = [r for r in stormy.requests if r.status == 429]
    assert refused, "precondition: the stormy channel was rate limited"
    assert [wait for wait in waited_by_storm if wait >= 59], "each 429 pauses the channel for Allegro's minute"
    assert max(waited_by_storm) <= 61
    assert set(stormy_store.returns) == stormy.truth()["returns"], "slowed, not failed"
    assert set(calm_store.returns) == calm.truth()["returns"]
    assert not [wait for wait in sleeps if wait >= 1], "the other channel never waited for the storm"
    assert not [r for r in calm.requests if r.status == 429]
