"""The bounds of the shared payload readers every connector's mapping reads through."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from retsync.kit import payload
from retsync.kit.paging import ChangedSinceWalk
from retsync.kit.payload import OutOfRange, count, decimal, minor_units, not_after, when

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", ["1e300000", "1E+999999999", "-1e300000", "9" * 100, 1e300])
def test_a_number_too_big_to_be_money_is_unknown_and_costs_nothing(value: object,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = payload.Decimal
    monkeypatch.setattr(payload, "Decimal", lambda text: seen.append(text) or real(text))  # must not see it
    assert decimal(value) is None and minor_units(value) is None
    assert seen == []


@pytest.mark.parametrize("value", ["1e30", 1e30, "1e300000", "100001", -10**9, "9" * 100])
def test_a_quantity_that_cannot_be_one_refuses_its_record(value: object) -> None:
    with pytest.raises(OutOfRange, match="quantity"):
        count(value)


@pytest.mark.parametrize("value, units", [
    ("3", 3), (" 2 ", 2), (2.7, 2), ("-1", 1), ("1e2", 100), ("100000", 100000), ("", 0), (None, 0),
    ("abc", 0), ("NaN", 0), ("Infinity", 0), (True, 0), ({"a": 1}, 0)])
def test_quantities_are_whole_units_negative_refunds_read_as_units_and_missing_as_zero(
        value: object, units: int) -> None:
    assert count(value) == units


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", float("nan"), float("inf"), "1e16", 10**16])
def test_money_is_finite_and_in_range(value: object) -> None:
    assert minor_units(value) is None


@pytest.mark.parametrize("value, expected", [
    ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=timezone.utc)),
    ("2024-03-01T11:00:00+01:00", datetime(2024, 3, 1, 10, tzinfo=timezone.utc)),
    ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, tzinfo=timezone.utc)),
    ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
    ("1970-01-01T00:00:00Z", None), ("0001-01-01T00:00:00+05:00", None), ("yesterday", None), ("", None),
])
def test_dates_before_any_channel_existed_are_unknown_far_future_ones_kept_verbatim(
        value: str, expected: datetime | None) -> None:
    assert when(value) == expected


def test_a_cursor_never_moves_past_the_pulls_start() -> None:
    assert not_after(datetime(9999, 12, 31, tzinfo=timezone.utc), NOW) == NOW
    assert not_after(NOW - timedelta(hours=1), NOW) == NOW - timedelta(hours=1)


def test_a_walk_that_saw_a_year_9999_record_starts_the_next_walk_from_the_pull_not_from_9999() -> None:
    walk = ChangedSinceWalk.load(None, "", NOW - timedelta(days=90), now=NOW)
    walk.saw(NOW - timedelta(minutes=5))
    walk.saw(datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc))
    walk.finish()
    assert walk.since == NOW


def test_a_walk_stored_at_9999_before_the_bound_comes_back_to_the_pull() -> None:
    cursor = {"since": "9999-12-31T00:00:00+00:00", "page": 1, "seen": "9999-12-31T00:00:00+00:00"}
    walk = ChangedSinceWalk.load(cursor, "", NOW - timedelta(days=90), now=NOW)
    assert walk.since == NOW and walk.seen == NOW


def test_a_quantity_of_1e300000_is_refused_before_any_big_number_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """`int(Decimal("1e300000"))` cost ~11 s of CPU per poll; the text alone decides now."""
    seen: list[str] = []
    monkeypatch.setattr(payload, "Decimal", lambda text: seen.append(text))
    with pytest.raises(OutOfRange, match="exponent"):
        count("1e300000")
    assert seen == []
