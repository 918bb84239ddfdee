"""The WooCommerce connector against its sandbox: backfill, incremental pulls, every decision's effect on the shop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from retsync.kit.contract import HoldRequest, PushStatus, Stream
from retsync.kit.model import Customer, DecisionKind, Return, ReturnLine, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out, carry_out_hold
from retsync_connectors.woocommerce.connector import WooCommerceConnector
from retsync_connectors.woocommerce.emulator import PREFIX, WooCommerceEmulator
from tests.woocommerce.conftest import NOW

Make = Callable[..., WooCommerceConnector]


@pytest.fixture
def shop() -> WooCommerceEmulator:
    return WooCommerceEmulator(seed=11)


@pytest.fixture
def synced(shop: WooCommerceEmulator, make_connector: Make) -> tuple[WooCommerceConnector, InMemoryStore]:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    return connector, store


def open_return(store: InMemoryStore, *, lines: int = 1) -> Return:
    return next(r for r in store.returns.values()
                if r.status is ReturnStatus.REQUESTED and len(r.lines) >= lines and r.lines[0].order_line_external_id)


def mutations(shop: WooCommerceEmulator, kind: str | None = None) -> list[dict]:
    return [entry for entry in shop.applied if kind is None or entry["kind"] == kind]


# --- pulling -----------------------------------------------------------------------------------


def test_backfill_stores_every_order_and_every_return(synced: tuple[WooCommerceConnector, InMemoryStore],
                                                       shop: WooCommerceEmulator) -> None:
    _, store = synced
    truth = shop.truth()
    assert set(store.orders) == truth["orders"]
    assert set(store.returns) == truth["returns"]
    assert all(r.lines for r in store.returns.values())


def test_backfill_pages_by_100_with_modified_after_in_gmt(synced: tuple[WooCommerceConnector, InMemoryStore],
                                                           shop: WooCommerceEmulator) -> None:
    listings = [r for r in shop.requests if r.path.endswith("/orders") and "modified_after" in r.query]
    assert len(listings) == 3  # 239 orders
    assert [r.query["page"] for r in listings] == ["1", "2", "3"]
    assert all(r.query["per_page"] == "100" and r.query["dates_are_gmt"] == "true"
               and r.query["orderby"] == "modified" and r.query["order"] == "asc" for r in listings)
    assert all(r.headers["authorization"].startswith("Basic ") for r in shop.requests)


def test_a_re_pull_of_an_unchanged_shop_writes_nothing_and_fetches_no_refunds(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    before = len(shop.requests)
    assert store.run(connector) == []
    assert not [r for r in shop.requests[before:] if r.path.endswith("/refunds") and "/orders/" in r.path]


def test_incremental_pull_sees_a_new_request_an_approval_and_a_refund_made_in_the_admin(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    waiting = open_return(store)
    quiet = next(o for o in shop.orders.values() if o["status"] == "completed" and not o["refunds"])
    new_request = shop.request_return(quiet["id"], reason="Wrong size")
    shop.set_status(int(waiting.external_id), "return-approved")
    plain = next(o for o in shop.orders.values() if o["status"] == "processing" and not o["refunds"])
    refund_id = shop.refund_in_admin(plain["id"], amount="5.00")

    written = store.run(connector)

    assert set(written) == {str(new_request), waiting.external_id, str(plain["id"])}
    requested = store.returns[str(new_request)]
    assert requested.status is ReturnStatus.REQUESTED and requested.reason.value == "wrong_size"
    assert requested.lines[0].quantity == 1
    approved = store.returns[waiting.external_id]
    assert approved.status is ReturnStatus.DECIDED
    decisions = {line.channel_decision for line in approved.lines}
    assert decisions == {DecisionKind.ACCEPT}, "the decision taken in the shop is read back"
    refunded = store.returns[str(plain["id"])]
    assert refunded.status is ReturnStatus.REFUNDED and refunded.refund_amount == 500
    assert refunded.refunded_at is not None and refunded.extra["refund_ids"] == [str(refund_id)]
    assert store.cursor and store.cursor["page"] == 1


def _empty_poll(shop: WooCommerceEmulator, make_connector: Make) -> list[tuple[str, str, str]]:
    """The requests of a pull with nothing new at the shop, right after a full one."""
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    before = len(shop.requests)
    assert store.run(connector) == [], "nothing new"
    return [(r.method, r.path, r.query.get("page", "")) for r in shop.requests[before:]]


def test_a_poll_with_nothing_new_costs_one_page_of_each_walk_however_long_the_history(make_connector: Make) -> None:
    """Ten times the history (as old again per order, so as many orders change an hour) asks the same two pages:
    the orders changed since the cursor and the refunds made since it, nothing per stored order or return."""
    short = _empty_poll(WooCommerceEmulator(seed=11, n_orders=240, days=150), make_connector)
    long = _empty_poll(WooCommerceEmulator(seed=11, n_orders=2_400, days=1_500), make_connector)
    assert short == long == [("GET", f"{PREFIX}/orders", "1"), ("GET", f"{PREFIX}/refunds", "1")]


def test_a_refund_made_in_the_admin_is_read_with_its_order_once(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    """Core bumps the order's date_modified with a refund: the orders walk reads the order with the refund listed,
    so the refunds walk does not ask for that order again."""
    connector, store = synced
    plain = next(o for o in shop.orders.values() if o["status"] == "processing" and not o["refunds"])
    refund_id = shop.refund_in_admin(plain["id"], amount="5.00")
    before = len(shop.requests)
    assert store.run(connector) == [str(plain["id"])]
    assert store.returns[str(plain["id"])].extra["refund_ids"] == [str(refund_id)]
    asked = shop.requests[before:]
    assert not [r for r in asked if "include" in r.query], "no second read of the order"
    assert [r.path for r in asked if r.path.endswith("/refunds")] == [
        f"{PREFIX}/orders/{plain['id']}/refunds", f"{PREFIX}/refunds"]


def test_a_refund_is_not_read_again_while_its_orders_page_is_still_being_stored(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    """The engine stores a page while the connector fetches the next: the refunds walk may run before the page
    holding the refunded order is committed. The order read in this pull is enough."""
    connector, store = synced
    plain = next(o for o in shop.orders.values() if o["status"] == "processing" and not o["refunds"])
    shop.refund_in_admin(plain["id"], amount="5.00")
    context = store.context()
    context._stored_revisions = lambda ids: {}  # nothing committed yet
    before = len(shop.requests)
    pages = list(connector.pull(Stream.RETURNS, context))
    assert str(plain["id"]) in {r.external_id for page in pages for r in page.returns}
    asked_again = [r.query["include"].split(",") for r in shop.requests[before:] if "include" in r.query]
    assert not [ids for ids in asked_again if str(plain["id"]) in ids]


def test_a_pass_cut_short_resumes_at_the_next_page(shop: WooCommerceEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector, max_pages=1)
    assert store.cursor and store.cursor["page"] == 2
    store.run(connector)
    assert set(store.returns) == shop.truth()["returns"]
    pages = [r.query["page"] for r in shop.requests if r.path.endswith("/orders") and "modified_after" in r.query]
    # page 2 may have been asked for ahead before the first pass was cut; never stored, it is read again
    assert pages[0] == "1" and pages[-2:] == ["2", "3"] and len(pages) in (3, 4)


def test_the_next_pass_starts_one_overlap_before_the_newest_change_seen(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    newest = max(o["date_modified_gmt"] for o in shop.orders.values() if o["status"] != "trash")
    assert store.cursor is not None and store.cursor["modified_after"].startswith(newest)
    store.run(connector)
    query = [r for r in shop.requests if r.path.endswith("/orders") and "modified_after" in r.query][-1].query
    assert query["modified_after"] < newest


def test_backfill_reads_only_orders_changed_within_the_backfill_window(
        shop: WooCommerceEmulator, make_connector: Make) -> None:
    store = InMemoryStore()
    store.run(make_connector(shop), backfill_since=NOW - timedelta(days=30))
    cutoff = (NOW - timedelta(days=30) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert store.orders and all(shop.order(i)["date_modified_gmt"] > cutoff[:19] for i in store.orders)
    assert len(store.orders) < len(shop.truth()["orders"])


def test_an_unknown_plugin_status_is_stored_verbatim(synced: tuple[WooCommerceConnector, InMemoryStore]) -> None:
    _, store = synced
    exchange = [r for r in store.returns.values() if r.channel_status == "exchange-request"]
    assert exchange and all(r.status is ReturnStatus.REQUESTED for r in exchange)
    assert any(o.channel_status == "partially-shipped" for o in store.orders.values())


def test_configured_return_statuses_are_the_merchants_words(shop: WooCommerceEmulator, make_connector: Make) -> None:
    order = next(o for o in shop.orders.values() if o["status"] == "partially-shipped" and not o["refunds"])
    store = InMemoryStore()
    store.run(make_connector(shop, requested_statuses=["return-requested", "partially-shipped"]))
    record = store.returns[str(order["id"])]
    assert record.status is ReturnStatus.REQUESTED
    assert {line.external_id for line in record.lines} == {str(i["id"]) for i in order["line_items"]}


# --- decisions ---------------------------------------------------------------------------------


def test_accept_refunds_the_returned_quantity_through_the_gateway_and_restocks(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT, lines=[0], note=None))
    assert result.status is PushStatus.PUSHED, result.detail
    [refund] = mutations(shop, "refund")
    line = record.lines[0]
    item = next(i for i in shop.order(record.external_id)["line_items"] if str(i["id"]) == line.external_id)
    expected = (Decimal(item["total"]) + Decimal(item["total_tax"])) * line.quantity / item["quantity"]
    assert Decimal(refund["amount"]) == expected.quantize(Decimal("0.01"))
    assert refund["items"] == {item["id"]: line.quantity}
    assert refund["api_refund"] is True and refund["api_restock"] is True
    assert result.result and result.result["refund_id"] == str(refund["refund"])
    store.run(connector)
    assert store.returns[record.external_id].status is ReturnStatus.REFUNDED


def test_a_whole_return_accept_is_one_refund_carrying_every_line(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    record = open_return(store, lines=2)
    before = len(shop.requests)
    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT))
    assert result.status is PushStatus.PUSHED, result.detail
    posts = [r for r in shop.requests[before:] if r.method == "POST"]
    assert [r.path for r in posts] == [f"/wp-json/wc/v3/orders/{record.external_id}/refunds"], "one request"
    [refund] = mutations(shop, "refund")
    items = {str(i["id"]): i for i in shop.order(record.external_id)["line_items"]}
    assert {str(item): quantity for item, quantity in refund["items"].items()} == {
        line.external_id: line.quantity for line in record.lines}
    sent = posts[0].body["line_items"]
    assert [line["id"] for line in sent] == [int(line.external_id) for line in record.lines]
    paid = {str(line["id"]): Decimal(str(line["refund_total"])) + sum(Decimal(str(t["refund_total"]))
                                                                     for t in line["refund_tax"]) for line in sent}
    assert Decimal(refund["amount"]) == sum(paid.values()), "the amount is what the lines give back"
    for line in record.lines:  # each line's share of what the customer paid for its item, to the cent
        item = items[line.external_id]
        share = (Decimal(item["total"]) + Decimal(item["total_tax"])) * line.quantity / item["quantity"]
        assert abs(paid[line.external_id] - share) <= Decimal("0.01")
    assert shop.acts_applied() == [("refund", record.external_id, line.external_id) for line in record.lines]
    store.run(connector)
    stored = store.returns[record.external_id]
    assert stored.status is ReturnStatus.REFUNDED
    assert {line.channel_decision for line in stored.lines} == {DecisionKind.ACCEPT}


def test_a_whole_return_refund_whose_answer_was_lost_is_one_refund_after_the_retry(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    record = open_return(store, lines=2)
    shop.inject("lost", method="POST", path=f"{PREFIX}/orders/{record.external_id}/refunds")
    act = act_for(record, DecisionKind.ACCEPT)
    first = carry_out(connector, act)
    assert first.status is PushStatus.RETRY, first.detail
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED and "already applied" in (retry.detail or ""), retry.detail
    [refund] = mutations(shop, "refund")
    assert retry.reference == str(refund["refund"])
    applied = shop.acts_applied()
    assert len(applied) == len(record.lines) == len(set(applied))


def test_keep_refunds_without_restocking_and_api_refund_can_be_switched_off(
        shop: WooCommerceEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, api_refund=False), InMemoryStore()
    store.run(connector)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.KEEP))
    assert result.status is PushStatus.PUSHED and "manual refund" in (result.detail or "")
    [refund] = mutations(shop, "refund")
    assert refund["api_restock"] is False and refund["api_refund"] is False
    assert refund["meta"]["retsync_decision"] == "keep"


@pytest.mark.parametrize("kind, status, to_customer", [
    (DecisionKind.REJECT, "return-cancelled", True),
    (DecisionKind.CANCEL, "return-cancelled", True),
    (DecisionKind.REPAIR, None, True),
    (DecisionKind.EXCHANGE, None, True),
])
def test_status_decisions_set_the_configured_status_and_leave_a_note(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator,
        kind: DecisionKind, status: str | None, to_customer: bool) -> None:
    connector, store = synced
    record = open_return(store, lines=2)
    result = carry_out(connector, act_for(record, kind, note="We will send you a prepaid label."))
    assert result.status is PushStatus.PUSHED, result.detail
    assert mutations(shop, "note") == [{"kind": "note", "order": int(record.external_id),
                                        "note": "We will send you a prepaid label.", "customer_note": to_customer}]
    changes = mutations(shop, "status")
    assert changes == ([{"kind": "status", "order": int(record.external_id), "from": "return-requested",
                         "to": status}] if status else [])
    assert not mutations(shop, "refund")
    store.run(connector)
    stored = store.returns[record.external_id]
    assert stored.status is (ReturnStatus.CANCELLED if kind is DecisionKind.CANCEL else ReturnStatus.DECIDED)
    assert {line.channel_decision for line in stored.lines} == {kind}, "retsync's own decision is read back as itself"


def test_repair_and_exchange_statuses_are_configurable(shop: WooCommerceEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, repair_status="on-hold"), InMemoryStore()
    store.run(connector)
    record = open_return(store)
    assert carry_out(connector, act_for(record, DecisionKind.REPAIR, note=None)).status is PushStatus.PUSHED
    assert shop.order(record.external_id)["status"] == "on-hold"
    [note] = mutations(shop, "note")
    assert note["customer_note"] is False and "repair" in note["note"], "without your note, staff get an internal one"


def test_a_rejection_needs_a_note_for_the_customer() -> None:
    assert WooCommerceConnector.decision_problem(DecisionKind.REJECT, None)
    assert WooCommerceConnector.decision_problem(DecisionKind.REJECT, "Worn, cannot take it back") is None
    assert WooCommerceConnector.decision_problem(DecisionKind.CANCEL, None) is None


def test_lines_decided_one_at_a_time_tell_the_customer_once(shop: WooCommerceEmulator, make_connector: Make) -> None:
    """Two `retsync decide --line` runs are two acts: each line gets its decision, the customer one note."""
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    record = open_return(store, lines=2)
    for index in range(len(record.lines)):
        result = carry_out(connector, act_for(record, DecisionKind.REJECT, lines=[index],
                                              note="Not in its original box."))
        assert result.status is PushStatus.PUSHED
    assert len(mutations(shop, "note")) == 1
    assert len(mutations(shop, "status")) == 1


def test_a_refund_whose_answer_was_lost_is_found_on_the_retry_not_made_twice(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    act = act_for(open_return(store), DecisionKind.ACCEPT)
    shop.lose_answer("POST", "/refunds")
    first = carry_out(connector, act)
    assert first.status is PushStatus.RETRY and "may have been applied" in (first.detail or "")
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED and "already applied" in (retry.detail or "")
    assert len(mutations(shop, "refund")) == 1
    again = carry_out(connector, replace(act, attempt=3))
    assert again.status is PushStatus.PUSHED and len(mutations(shop, "refund")) == 1


def test_a_status_decision_whose_answer_was_lost_is_not_applied_twice(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    act = act_for(open_return(store), DecisionKind.REJECT, note="Past the 30 days.")
    shop.lose_answer("PUT", f"/orders/{act.order_external_id}")
    assert carry_out(connector, act).status is PushStatus.RETRY
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED
    assert len(mutations(shop, "note")) == 1 and len(mutations(shop, "status")) == 1


def test_a_lost_note_answer_does_not_tell_the_customer_twice(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    act = act_for(open_return(store), DecisionKind.CANCEL, note="Cancelled at your request.")
    shop.lose_answer("POST", "/notes")
    assert carry_out(connector, act).status is PushStatus.RETRY
    assert carry_out(connector, replace(act, attempt=2)).status is PushStatus.PUSHED
    assert len(mutations(shop, "note")) == 1 and len(mutations(shop, "status")) == 1


def test_the_gateways_refusal_reaches_the_merchant_in_woocommerces_words(make_connector: Make) -> None:
    shop = WooCommerceEmulator(seed=11, gateway_error="Stripe: the charge was disputed and cannot be refunded.")
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.ACCEPT))
    assert result.status is PushStatus.RETRY  # a 500 may have been applied: the retry looks before resending
    assert ("Stripe: the charge was disputed and cannot be refunded. (woocommerce_rest_cannot_create_order_refund)"
            in (result.detail or ""))
    assert not mutations(shop, "refund")


def test_a_refund_already_made_in_the_shop_is_not_asked_for_again(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    shop.refund_in_admin(int(record.external_id), amount=shop.order(record.external_id)["total"])
    before = len(shop.requests)
    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT))
    assert result.status is PushStatus.FAILED and "left to refund" in (result.detail or "")
    assert not [r for r in shop.requests[before:] if r.method == "POST"]


def test_an_unknown_status_setting_is_refused_with_woocommerces_words(
        shop: WooCommerceEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, reject_status="declined"), InMemoryStore()
    store.run(connector)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.REJECT))
    assert result.status is PushStatus.FAILED
    assert "Invalid parameter(s): status (rest_invalid_param)" in (result.detail or "")
    assert "HTTP 400" in (result.detail or "")


def test_wrong_keys_hold_the_decision_with_a_hint(shop: WooCommerceEmulator, make_connector: Make) -> None:
    good, store = make_connector(shop), InMemoryStore()
    store.run(good)
    bad = make_connector(shop, consumer_secret="cs_wrong")
    result = carry_out(bad, act_for(open_return(store), DecisionKind.ACCEPT))
    assert result.status is PushStatus.RETRY, "retried until the keys are fixed, like on every channel"
    assert "Consumer secret is invalid" in (result.detail or "") and "consumer_secret" in (result.detail or "")
    assert not mutations(shop)


# --- the refunds walk --------------------------------------------------------------------------


def test_a_refund_that_left_its_order_untouched_is_found_through_get_refunds(make_connector: Make) -> None:
    shop = WooCommerceEmulator(seed=11, refund_touches_order=False)
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    plain = next(o for o in shop.orders.values() if o["status"] == "processing" and not o["refunds"])
    modified = plain["date_modified_gmt"]
    refund_id = shop.refund_in_admin(plain["id"], item_quantity=1)
    assert plain["date_modified_gmt"] == modified

    assert store.run(connector) == [str(plain["id"])]
    record = store.returns[str(plain["id"])]
    assert record.status is ReturnStatus.REFUNDED and record.extra["refund_ids"] == [str(refund_id)]
    assert [(line.external_id, line.quantity) for line in record.lines] == [(str(plain["line_items"][0]["id"]), 1)]


def test_a_shop_before_woocommerce_9_is_synced_without_get_refunds(make_connector: Make) -> None:
    shop = WooCommerceEmulator(seed=11, refunds_route=False)
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    assert set(store.returns) == shop.truth()["returns"]
    store.run(connector)
    assert len([r for r in shop.requests if r.path.endswith("/wc/v3/refunds")]) == 1, "asked once, not every pull"
    switched_off = make_connector(shop, refunds_endpoint=False)
    store.cursor = {**(store.cursor or {}), "phase": "refunds"}
    before = len(shop.requests)
    store.run(switched_off)
    assert not [r for r in shop.requests if r.path.endswith("/wc/v3/refunds")][1:]
    assert [r for r in shop.requests[before:] if "modified_after" in r.query], "the orders are walked"
    assert store.cursor["phase"] == "orders"


def test_a_pass_cut_short_in_the_refunds_walk_resumes_there(shop: WooCommerceEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector, max_pages=3)  # the three order pages
    assert store.cursor is not None and store.cursor["phase"] == "refunds"
    before = len(shop.requests)
    store.run(connector)
    walked = [r.path for r in shop.requests[before:] if "modified_after" in r.query]
    assert walked == [], "the orders walk is not repeated"
    assert store.cursor["phase"] == "orders" and store.cursor["refunds_page"] == 1


def test_an_older_core_that_cannot_sort_by_modified_is_walked_by_date(make_connector: Make) -> None:
    shop = WooCommerceEmulator(seed=11, orderby_modified=False)
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    store.run(connector)
    assert set(store.returns) == shop.truth()["returns"]
    sorts = [r.query["orderby"] for r in shop.requests if "modified_after" in r.query]
    assert sorts[0] == "modified" and set(sorts[1:]) == {"date"}, "asked once, then remembered"


def test_keys_can_travel_in_the_query_string_where_the_host_drops_the_header(make_connector: Make) -> None:
    shop = WooCommerceEmulator(seed=11)
    store = InMemoryStore()
    store.run(make_connector(shop, query_string_auth=True))
    assert set(store.returns) == shop.truth()["returns"]
    assert all("authorization" not in r.headers and r.query["consumer_key"] for r in shop.requests)


# --- ready for decisions made in the shop's back office ----------------------------------------


def _marketplace_return(external_id: str = "61234567") -> Return:
    return Return(
        external_id=external_id, order_external_id="A-77", status=ReturnStatus.REQUESTED, created_at=NOW,
        channel_reason="Too small", currency="EUR",
        customer=Customer(name="Eva Peeters", email="eva@example.com", postcode="9000"),
        lines=(ReturnLine(external_id="L1", sku="SKU-205", ean="8712345678906", title="Rain jacket", quantity=1,
                          unit_price=9835, currency="EUR"),),
    )


def _hold(ret: Return, attempt: int = 1, reference: str | None = None) -> HoldRequest:
    return HoldRequest(hold_id=1, key=f"bol/{ret.external_id}", source_channel="bol", source_title="Bol.com",
                       ret=ret, attempt=attempt, requested_at=NOW, reference=reference)


def test_a_marketplace_return_is_held_as_one_order_even_when_the_answer_is_lost(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, store = synced
    ret = _marketplace_return()
    shop.lose_answer("POST", "/orders")
    first = carry_out_hold(connector, _hold(ret))
    assert first.status is PushStatus.RETRY  # the order was created, but we could not know
    again = carry_out_hold(connector, _hold(ret, attempt=2))
    assert again.status is PushStatus.PUSHED and again.reference
    assert shop.held_returns() == {"bol/61234567": again.reference}
    order = shop.order(again.reference)
    assert order["status"] == "return-requested" and order["billing"]["email"] == "eva@example.com"
    assert [(i["name"], i["quantity"], i["total"]) for i in order["line_items"]] == [("Rain jacket", 1, "98.35")]
    assert "Bol.com return 61234567 (order A-77): Too small" in order["customer_note"]
    assert carry_out_hold(connector, _hold(ret, attempt=3, reference=again.reference)).reference == again.reference
    assert shop.held_returns() == {"bol/61234567": again.reference}

    store.run(connector)  # the shop's own pull leaves the held order out: it is neither a sale nor a shop return
    assert again.reference not in store.returns and again.reference not in store.orders


def test_a_decision_taken_on_the_held_order_is_read_back_with_the_merchants_note(
        synced: tuple[WooCommerceConnector, InMemoryStore], shop: WooCommerceEmulator) -> None:
    connector, _ = synced
    accepted = carry_out_hold(connector, _hold(_marketplace_return("1"))).reference
    rejected = carry_out_hold(connector, _hold(_marketplace_return("2"))).reference
    waiting = carry_out_hold(connector, _hold(_marketplace_return("3"))).reference
    assert accepted and rejected and waiting
    assert connector.held_decisions([accepted, rejected, waiting]) == {}

    shop.panel_decide(accepted, "accept")
    shop.panel_decide(rejected, "reject", note="Worn, with a stain on the sleeve")
    decided = connector.held_decisions([accepted, rejected, waiting])
    assert set(decided) == {accepted, rejected}
    assert decided[accepted].kind is DecisionKind.ACCEPT and decided[accepted].shop_status == "return-approved"
    assert decided[rejected].kind is DecisionKind.REJECT
    assert decided[rejected].note == "Worn, with a stain on the sleeve"


def test_statuses_may_be_written_with_the_wc_prefix(shop: WooCommerceEmulator, make_connector: Make) -> None:
    connector = make_connector(shop, requested_statuses=["wc-return-requested"], reject_status="wc-completed")
    assert connector.settings.requested_statuses == ("return-requested",) and connector.settings.reject_status == "completed"


def test_the_sandbox_size_knob() -> None:
    small, big = WooCommerceConnector.sandbox(seed=1, returns=10), WooCommerceConnector.sandbox(seed=1, returns=500)
    assert len(small.truth()["returns"]) < len(big.truth()["returns"])
    assert 300 < len(big.truth()["returns"]) < 1000
