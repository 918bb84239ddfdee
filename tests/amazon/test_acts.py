"""Decisions through the Amazon sandbox: each decision's exact calls, the feed lifecycle (pending, a refused
line), and a refund done exactly once whichever answer is lost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from retsync.kit.contract import PushStatus
from retsync.kit.model import DecisionKind, Return
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.amazon.connector import AmazonConnector
from retsync_connectors.amazon.emulator import AmazonEmulator
from retsync_connectors.amazon.mapping import ADJUSTMENT_COLUMNS, ADJUSTMENT_FEED, read_flat_file

from .conftest import operations, pull

Make = Callable[..., AmazonConnector]
SUBMIT = ["getOrderItems", "createFeedDocument", "s3Put", "createFeed"]
SETTLE = ["getFeed", "getFeedDocument", "s3Get"]


def _open(connector: AmazonConnector, *, lines: int = 1) -> list[Return]:
    store = InMemoryStore()
    pull(connector, store)
    return [r for r in store.returns.values() if not r.handled_by_channel and r.status.value == "requested"
            and r.refund_amount is None and len(r.lines) >= lines]


def _feed_rows(emulator: AmazonEmulator) -> list[dict[str, str | None]]:
    """The rows of the flat file retsync uploaded last."""
    uploaded = [r for r in emulator.requests if r.method == "PUT"][-1]
    return read_flat_file(str(uploaded.body)).rows


@pytest.mark.parametrize("kind, code", [(DecisionKind.ACCEPT, "CustomerReturn"), (DecisionKind.KEEP, "Refund-keep")])
def test_accept_and_keep_are_one_adjustment_feed_with_these_calls(emulator: AmazonEmulator, make_connector: Make,
                                                                  kind: DecisionKind, code: str) -> None:
    connector = make_connector(emulator, keep_reason_code="Refund-keep")
    ret = _open(connector)[0]
    before = len(emulator.requests)
    result = carry_out(connector, act_for(ret, kind))
    assert result.status is PushStatus.PUSHED, result.detail
    assert operations(emulator, before) == SUBMIT + SETTLE
    created = [r for r in emulator.requests[before:] if r.path == "/feeds/2021-06-30/feeds"][0].body
    assert created["feedType"] == ADJUSTMENT_FEED and created["marketplaceIds"] == ["A1PA6795UKMFR9"]
    [row] = _feed_rows(emulator)
    item = next(i for i in emulator.data.order_items[ret.order_external_id or ""] if i["SellerSKU"] == ret.lines[0].sku)
    assert row["order-id"] == ret.order_external_id and row["order-item-id"] == item["OrderItemId"]
    assert row["adjustment-reason-code"] == code and row["currency"] == "EUR"
    unit = float(item["ItemPrice"]["Amount"]) / item["QuantityOrdered"]
    assert float(row["item-price-adj"] or 0) == pytest.approx(unit * ret.lines[0].quantity, abs=0.01)
    assert result.reference in emulator.feeds
    assert emulator.acts_applied() == [("refund", ret.order_external_id, item["OrderItemId"])]


def test_the_feed_file_has_the_documented_header(emulator: AmazonEmulator, make_connector: Make) -> None:
    connector = make_connector(emulator)
    carry_out(connector, act_for(_open(connector)[0], DecisionKind.ACCEPT))
    uploaded = [r for r in emulator.requests if r.method == "PUT"][-1]
    assert str(uploaded.body).splitlines()[0].split("\t") == list(ADJUSTMENT_COLUMNS)
    assert uploaded.headers["content-type"].startswith("text/tab-separated-values")
    assert "x-amz-access-token" not in uploaded.headers, "a presigned URL takes no token"


def test_a_whole_return_is_one_feed_with_a_row_per_line(emulator: AmazonEmulator, make_connector: Make) -> None:
    connector = make_connector(emulator)
    ret = _open(connector, lines=2)[0]
    before = len(emulator.requests)
    assert carry_out(connector, act_for(ret, DecisionKind.ACCEPT)).status is PushStatus.PUSHED
    assert operations(emulator, before).count("createFeed") == 1
    assert len(_feed_rows(emulator)) == len(ret.lines) == len(emulator.acts_applied())


def test_the_other_decisions_are_seller_central_actions() -> None:
    caps = AmazonConnector.capabilities
    assert set(caps.decisions) == {DecisionKind.ACCEPT, DecisionKind.KEEP}
    for kind in (DecisionKind.REJECT, DecisionKind.REPAIR, DecisionKind.EXCHANGE, DecisionKind.CANCEL):
        assert "Seller Central" in caps.unsupported[kind]


def test_a_feed_amazon_is_still_processing_leaves_the_act_pending_with_the_feed_as_its_reference(
        emulator: AmazonEmulator, make_connector: Make) -> None:
    emulator.feed_polls = 2
    connector = make_connector(emulator)
    act = act_for(_open(connector)[0], DecisionKind.ACCEPT)
    first = carry_out(connector, act)
    assert first.status is PushStatus.PENDING and first.reference in emulator.feeds
    before = len(emulator.requests)
    second = carry_out(connector, replace(act, reference=first.reference))
    assert second.status is PushStatus.PENDING and operations(emulator, before) == ["getFeed"]
    before = len(emulator.requests)
    third = carry_out(connector, replace(act, reference=first.reference))
    assert third.status is PushStatus.PUSHED and operations(emulator, before) == SETTLE
    assert len(emulator.acts_applied()) == 1


def test_a_line_the_processing_report_refuses_fails_the_decision_with_amazons_words(
        emulator: AmazonEmulator, make_connector: Make) -> None:
    connector = make_connector(emulator)
    ret = _open(connector, lines=2)[0]
    items = emulator.data.order_items[ret.order_external_id or ""]
    refused = next(i for i in items if i["SellerSKU"] == ret.lines[1].sku)
    emulator.refuse_items[(ret.order_external_id or "", refused["OrderItemId"])] = "This order item is not refundable"
    result = carry_out(connector, act_for(ret, DecisionKind.ACCEPT))
    assert result.status is PushStatus.FAILED
    assert "refunded 1 of 2 items but refused" in (result.detail or "")
    detail = result.detail or ""
    assert "This order item is not refundable" in detail and ret.lines[1].external_id in detail
    assert result.result is not None and set(result.result["errors"]) == {"2"}
    alone = carry_out(connector, act_for(ret, DecisionKind.ACCEPT, lines=[1]))
    assert alone.status is PushStatus.FAILED and (alone.detail or "").startswith("Amazon refused the refund")


def test_a_refund_beyond_what_is_left_is_refused_by_amazon_not_sent_twice(emulator: AmazonEmulator,
                                                                         make_connector: Make) -> None:
    connector = make_connector(emulator)
    ret = _open(connector)[0]
    assert carry_out(connector, act_for(ret, DecisionKind.ACCEPT)).status is PushStatus.PUSHED
    again = carry_out(connector, act_for(ret, DecisionKind.KEEP))  # a new decision: a new act, a new feed
    assert again.status is PushStatus.FAILED and "exceeds the refundable amount" in (again.detail or "")
    assert len(emulator.acts_applied()) == 1


@pytest.mark.parametrize("method, suffix", [("POST", "/feeds/2021-06-30/documents"), ("PUT", ""),
                                            ("POST", "/feeds/2021-06-30/feeds")],
                         ids=["createFeedDocument", "upload", "createFeed"])
def test_a_lost_answer_never_refunds_twice(emulator: AmazonEmulator, make_connector: Make, method: str,
                                           suffix: str) -> None:
    connector = make_connector(emulator)
    ret = _open(connector)[0]
    act = act_for(ret, DecisionKind.ACCEPT)
    emulator.lose_answer(method, suffix)
    assert carry_out(connector, act).status is PushStatus.RETRY
    retried = carry_out(connector, replace(act, attempt=2))
    assert retried.status is PushStatus.PUSHED, retried.detail
    if suffix.endswith("/feeds"):
        assert (retried.detail or "").startswith("already applied"), "the submitted feed is found, not sent again"
    assert len(emulator.acts_applied()) == 1
    assert len([r for r in emulator.requests if r.path == "/feeds/2021-06-30/feeds" and r.method == "POST"]) == 1


def test_a_retry_after_a_lost_feed_id_with_several_unknown_feeds_at_that_moment_refuses_to_guess(
        emulator: AmazonEmulator, make_connector: Make) -> None:
    connector = make_connector(emulator)
    first, second = _open(connector)[:2]
    act = act_for(first, DecisionKind.ACCEPT)
    emulator.lose_answer("POST", "/feeds/2021-06-30/feeds")
    assert carry_out(connector, act).status is PushStatus.RETRY
    other = make_connector(emulator)  # another tool of the seller's submitting a feed at the same moment
    other.journal.path = other.journal.path.with_name("elsewhere.json")
    assert carry_out(other, act_for(second, DecisionKind.ACCEPT)).status is PushStatus.PUSHED
    retried = carry_out(connector, replace(act, attempt=2))
    assert retried.status is PushStatus.FAILED
    assert "check the order's refunds in Seller Central" in (retried.detail or "")
    assert len(emulator.acts_applied()) == 1 + len(second.lines), "nothing sent again"


def test_an_fba_return_is_never_refunded_by_the_seller(emulator: AmazonEmulator, make_connector: Make) -> None:
    connector = make_connector(emulator)
    store = InMemoryStore()
    pull(connector, store)
    fba = next(r for r in store.returns.values() if r.handled_by_channel)
    before = len(emulator.requests)
    assert carry_out(connector, act_for(fba, DecisionKind.ACCEPT)).status is PushStatus.FAILED
    assert len(emulator.requests) == before
