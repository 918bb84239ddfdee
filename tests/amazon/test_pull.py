"""Pulling returns from the reports through the sandbox, without a database: the report lifecycle, the moving
window, overlapping windows, FATAL reports, tokens and the usage plans."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import structlog

from retsync.kit.model import ReturnStatus
from retsync.testing.memory import InMemoryStore
from retsync_connectors.amazon.connector import AmazonConnector
from retsync_connectors.amazon.emulator import AmazonEmulator
from retsync_connectors.amazon.mapping import FBA_REPORT, MFN_REPORT

from .conftest import BACKFILL, operations, pull

Make = Callable[..., AmazonConnector]


def _created(emulator: AmazonEmulator, since: int = 0) -> list[dict[str, object]]:
    return [r.body for r in emulator.requests[since:] if r.method == "POST" and r.path.endswith("/reports")]


def _when(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def test_backfill_stores_every_return_once_then_an_incremental_pass_reads_from_the_window_end(
        emulator: AmazonEmulator, make_connector: Make) -> None:
    connector, store = make_connector(emulator), InMemoryStore()
    pull(connector, store)
    assert set(store.returns) == emulator.returns_in_window()
    assert {r.order_external_id for r in store.returns.values()} <= set(store.orders)
    fba = [r for r in store.returns.values() if r.handled_by_channel]
    assert fba and all(line.channel_decision is not None for r in fba for line in r.lines)
    assert all(not r.handled_by_channel for r in store.returns.values() if not r.external_id.startswith("FBA-"))
    first = _created(emulator)
    assert [body["reportType"] for body in first] == [MFN_REPORT, MFN_REPORT, FBA_REPORT, FBA_REPORT]
    assert all(_when(b["dataEndTime"]) - _when(b["dataStartTime"]) <= timedelta(days=60) for b in first), \
        "a backfill asks for windows of at most 60 days"
    assert _when(first[0]["dataStartTime"]) == (store.now - BACKFILL).replace(microsecond=0)
    assert _when(first[1]["dataStartTime"]) == _when(first[0]["dataEndTime"]) - timedelta(hours=24)
    ends = (store.cursor or {})["mfn_end"], (store.cursor or {})["fba_end"]

    before = len(emulator.requests)
    new = emulator.add_odd_return()
    store.now += timedelta(minutes=1)
    written = pull(connector, store)
    second = _created(emulator, before)
    assert [_when(b["dataStartTime"]) for b in second] == [_when(end) - timedelta(hours=24) for end in ends]
    assert new in written and new in store.returns
    assert operations(emulator, before).count("getOrder") == 1, "only the new return's order is fetched"


def test_overlapping_windows_give_the_same_returns_and_revisions(emulator: AmazonEmulator, make_connector: Make
                                                                ) -> None:
    connector, store = make_connector(emulator), InMemoryStore()
    pull(connector, store)
    stored = {key: ret.revision for key, ret in store.returns.items()}
    again = make_connector(emulator, overlap="30d")  # the next windows start 30 days back (the longest overlap)
    store.now += timedelta(minutes=1)
    written = pull(again, store)
    recent = {key for key, ret in store.returns.items() if ret.created_at >= store.now - timedelta(days=30)}
    assert recent and set(written) == recent, "the last 30 days are read again"
    assert {key: ret.revision for key, ret in store.returns.items()} == stored, "as the same returns, unchanged"


def test_a_report_not_ready_stores_nothing_keeps_its_id_and_is_looked_at_once_per_poll(
        emulator: AmazonEmulator, make_connector: Make) -> None:
    emulator.report_polls = 2
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    assert pull(connector, store) == []
    pending = (store.cursor or {})["mfn_pending"]
    assert pending and (store.cursor or {})["mfn_end"] is None
    assert operations(emulator) == ["createReport", "getReport"], "one look, no polling loop"
    before = len(emulator.requests)
    assert pull(connector, store) == [] and (store.cursor or {})["mfn_pending"] == pending
    assert operations(emulator, before) == ["getReport"], "the pending report is looked at, no new one asked for"
    before = len(emulator.requests)
    assert pull(connector, store)
    assert operations(emulator, before)[:3] == ["getReport", "getReportDocument", "s3Get"]
    assert (store.cursor or {})["mfn_end"] == emulator.reports[pending]["dataEndTime"]


def test_a_fatal_report_is_logged_dropped_and_requested_again(emulator: AmazonEmulator, make_connector: Make
                                                             ) -> None:
    emulator.fatal_reports = 1
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    with structlog.testing.capture_logs() as logs:
        assert pull(connector, store) == []
    assert [e["status"] for e in logs if e["event"] == "amazon_report_failed"] == ["FATAL"]
    assert (store.cursor or {})["mfn_pending"] is None and (store.cursor or {})["mfn_end"] is None
    assert operations(emulator) == ["createReport", "getReport"], "the same pull does not ask again"
    before = len(emulator.requests)
    assert pull(connector, store)
    assert operations(emulator, before)[:2] == ["createReport", "getReport"]
    assert set(store.returns) == {r for r in emulator.returns_in_window() if not r.startswith("FBA-")}


def test_report_every_spaces_the_requests_once_the_history_is_read(emulator: AmazonEmulator, make_connector: Make
                                                                  ) -> None:
    connector, store = make_connector(emulator, report_every="1h"), InMemoryStore()
    pull(connector, store)
    before = len(emulator.requests)
    store.now += timedelta(minutes=30)
    assert pull(connector, store) == [] and len(emulator.requests) == before
    store.now += timedelta(minutes=31)
    pull(connector, store)
    assert operations(emulator, before).count("createReport") == 2


def test_one_login_for_the_hour_and_a_refused_token_is_renewed_once(emulator: AmazonEmulator, make_connector: Make
                                                                   ) -> None:
    connector, store = make_connector(emulator), InMemoryStore()
    pull(connector, store)
    assert connector.client.tokens_fetched == 1
    tokens = [r for r in emulator.requests if r.path == "/auth/o2/token"]
    assert tokens[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert all("x-amz-access-token" in r.headers for r in emulator.requests if r.path.startswith("/reports"))
    assert not any("x-amz-access-token" in r.headers for r in emulator.requests if r.path.startswith("/_s3"))
    emulator.expire_tokens()  # SP-API answers 403 Unauthorized
    store.now += timedelta(minutes=1)
    emulator.add_odd_return()
    assert pull(connector, store)
    assert connector.client.tokens_fetched == 2


def test_the_usage_plans_pace_the_calls_instead_of_running_into_429(emulator: AmazonEmulator, make_connector: Make,
                                                                    sleeps: list[float]) -> None:
    emulator.rate_limits = False  # the waits are recorded, not slept: the sandbox's buckets would not refill
    connector = make_connector(emulator)
    report_id = connector.client.create_report(MFN_REPORT, ["A1PA6795UKMFR9"], datetime.now() - timedelta(days=1),
                                               datetime.now())
    for _ in range(16):  # getReport: 2 a second, burst 15, one token kept in hand
        connector.client.report(report_id)
    assert [op for op, _ in connector.client.paced] == ["getReport", "getReport"] and len(sleeps) == 2
    assert 0 < sleeps[0] <= 1 / (2 * 0.9) + 0.01 and sleeps[1] <= 2 / (2 * 0.9) + 0.01, "at 90% of the plan"


def test_the_rate_amazon_names_in_x_amzn_ratelimit_limit_replaces_the_documented_one(
        emulator: AmazonEmulator, make_connector: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    connector = make_connector(emulator)
    original = emulator._answer

    def slower(status: int, body: object, operation: str):  # type: ignore[no-untyped-def]
        response = original(status, body, operation)
        response.headers["x-amzn-RateLimit-Limit"] = "0.5"
        return response

    monkeypatch.setattr(emulator, "_answer", slower)
    report_id = connector.client.create_report(MFN_REPORT, ["A1PA6795UKMFR9"], datetime.now() - timedelta(days=1),
                                               datetime.now())
    connector.client.report(report_id)
    assert connector.client._buckets["getReport"].rate == pytest.approx(0.5 * 0.9), "paced at 90% of it"


def test_buyer_data_is_left_out_unless_configured(emulator: AmazonEmulator, make_connector: Make) -> None:
    store = InMemoryStore()
    pull(make_connector(emulator), store)
    assert all(order.customer.email is None and order.customer.postcode is None for order in store.orders.values())
    assert all(r.customer.email is None for r in store.returns.values())
    order_id = next(iter(store.orders))
    found = make_connector(emulator, buyer_data=True).fetch_order(order_id)
    assert found is not None and found.customer.email and found.customer.postcode
    assert make_connector(emulator).fetch_order("999-0000000-0000000") is None


def test_report_statuses_map_to_open_and_closed_returns(emulator: AmazonEmulator, make_connector: Make) -> None:
    store = InMemoryStore()
    pull(make_connector(emulator), store)
    mfn = [r for r in store.returns.values() if not r.handled_by_channel]
    assert {r.status for r in mfn} >= {ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT, ReturnStatus.REFUNDED}
    assert any(len(r.lines) > 1 for r in mfn), "some returns hold every item of their order"
    assert all(line.sku for r in mfn for line in r.lines), "the core links each line to its order item by SKU"


def test_a_pending_report_amazon_no_longer_knows_is_dropped_and_requested_again(emulator: AmazonEmulator,
                                                                              make_connector: Make) -> None:
    emulator.report_polls = 5
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    assert pull(connector, store) == []
    emulator.reports.clear()  # past Amazon's 90 days
    emulator.report_polls = 0
    assert pull(connector, store) == [] and (store.cursor or {})["mfn_pending"] is None
    assert pull(connector, store), "asked for again, and read"


def test_a_window_without_returns_is_cancelled_by_amazon_and_counts_as_read(emulator: AmazonEmulator,
                                                                           make_connector: Make) -> None:
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    with structlog.testing.capture_logs() as logs:
        pull(connector, store, backfill_since=store.now - timedelta(days=200))
    assert sum(e["event"] == "amazon_report_empty" for e in logs) >= 1
    assert not [e for e in logs if e["event"] == "amazon_report_failed"]
    assert set(store.returns) == {r for r in emulator.returns_in_window() if not r.startswith("FBA-")}
    assert [r["processingStatus"] for r in emulator.reports.values()][0] == "CANCELLED"


def test_a_report_cancelled_before_it_was_processed_is_requested_again(emulator: AmazonEmulator,
                                                                      make_connector: Make) -> None:
    emulator.report_polls = 2
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    assert pull(connector, store) == []
    pending = (store.cursor or {})["mfn_pending"]
    assert emulator.reports[pending]["processingStatus"] == "IN_QUEUE"
    emulator.cancel_report(pending)
    emulator.report_polls = 0
    assert pull(connector, store) == [] and (store.cursor or {})["mfn_end"] is None
    assert pull(connector, store)


def test_a_large_report_is_stored_a_hundred_returns_a_page_and_a_pull_cut_short_resumes_with_it(
        make_connector: Make) -> None:
    emulator = AmazonEmulator.sized(seed=4, returns=300, rate_scale=10_000)
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    pages: list[int] = []
    original = store.store
    store.store = lambda page: (pages.append(len(page.returns)), original(page))  # type: ignore[method-assign]
    pull(connector, store, max_pages=2)  # the report's request, then its first page
    assert pages == [0, 100] and (store.cursor or {})["mfn_pending"], "the window has not moved yet"
    pending = (store.cursor or {})["mfn_pending"]
    fetched = operations(emulator).count("getOrder")
    before = len(emulator.requests)
    pull(connector, store)
    assert [r.path for r in emulator.requests[before:] if r.path.startswith("/reports")][0].endswith(pending)
    assert set(store.returns) == {r for r in emulator.returns_in_window() if not r.startswith("FBA-")}
    assert max(pages) == 100 and fetched == 100
    assert operations(emulator, before).count("getOrder") == len(store.orders) - 100, "no order fetched twice"


def test_a_report_amazon_ends_short_of_the_window_asked_for_does_not_make_the_pull_ask_again_and_again(
        emulator: AmazonEmulator, make_connector: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    connector, store = make_connector(emulator, fba_returns=False), InMemoryStore()
    pull(connector, store)
    finish = emulator._finish_report

    def lagging(report: dict[str, object]) -> None:  # Amazon's data lags: the report ends an hour after it starts
        report["dataEndTime"] = (_when(report["dataStartTime"]) + timedelta(hours=1)).isoformat()
        finish(report)

    monkeypatch.setattr(emulator, "_finish_report", lagging)
    before = len(emulator.requests)
    store.now += timedelta(minutes=10)
    pull(connector, store)
    assert operations(emulator, before).count("createReport") == 1
