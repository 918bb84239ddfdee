"""The Shoper connector against its sandbox: backfill, incremental pulls, every decision's effect on the shop,
rate limits, and the back-office flow."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from pydantic import ValidationError

from retsync.kit.contract import HoldRequest, PushStatus
from retsync.kit.http import AuthError
from retsync.kit.model import Customer, DecisionKind, Return, ReturnLine, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out, carry_out_hold
from retsync_connectors.shoper.connector import ShoperConnector, ShoperSettings
from retsync_connectors.shoper.emulator import (
    ACCEPTED,
    EXCHANGE,
    HOLD,
    REJECTED,
    REPAIR,
    REQUESTED,
    SANDBOX_CHANNEL,
    ShoperEmulator,
)
from tests.shoper.conftest import NOW, FakeClock

Make = Callable[..., ShoperConnector]


@pytest.fixture
def synced(shop: ShoperEmulator, make_connector: Make) -> tuple[ShoperConnector, InMemoryStore]:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    return connector, store


def open_return(store: InMemoryStore, *, lines: int = 1) -> Return:
    return next(r for r in store.returns.values()
                if r.status is ReturnStatus.REQUESTED and len(r.lines) >= lines and r.lines[0].order_line_external_id)


def worth(shop: ShoperEmulator, record: Return) -> Decimal:
    """What the buyer paid for every unit of the return's lines (price less the line's discount)."""
    total = Decimal(0)
    for line in record.lines:
        product = next(p for p in shop.products[int(record.external_id)] if p["id"] == line.external_id)
        total += Decimal(product["price"]) * (100 - Decimal(product["discount_perc"])) / 100 * line.quantity
    return total.quantize(Decimal("0.01"))


def applied(shop: ShoperEmulator, kind: str | None = None) -> list[dict]:
    return [entry for entry in shop.applied if kind is None or entry["kind"] == kind]


def listings(shop: ShoperEmulator, path: str) -> list[dict[str, str]]:
    return [r.query for r in shop.requests if r.method == "GET" and r.path == "/webapi/rest" + path]


# --- pulling -----------------------------------------------------------------------------------


def test_backfill_stores_every_order_and_every_return(synced: tuple[ShoperConnector, InMemoryStore],
                                                       shop: ShoperEmulator) -> None:
    _, store = synced
    truth = shop.truth()
    assert set(store.orders) == truth["orders"]
    assert set(store.returns) == truth["returns"]
    assert all(r.lines for r in store.returns.values())
    assert {r.status for r in store.returns.values()} >= {ReturnStatus.REQUESTED, ReturnStatus.RECEIVED,
                                                           ReturnStatus.DECIDED, ReturnStatus.REFUNDED}


def test_backfill_pages_by_50_with_a_json_status_date_filter_in_shop_time(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    walk = [q for q in listings(shop, "/orders") if "status_date" in q.get("filters", "")]
    assert [q["page"] for q in walk] == ["1", "2", "3", "4", "5"]  # 240 orders
    assert all(q["limit"] == "50" for q in walk)
    since = json.loads(walk[0]["filters"])["status_date"][">="]
    assert len(since) == 19 and since[10] == " ", "YYYY-MM-DD HH:MM:SS, the shop's local time"
    refunds_walk = [q for q in listings(shop, "/order-refunds") if '"date"' in q.get("filters", "")]
    assert refunds_walk and refunds_walk[0]["page"] == "1"
    assert len([r for r in shop.requests if r.path == "/webapi/rest/auth"]) == 1, "one token for the whole sync"
    assert all(r.headers["authorization"].startswith("Bearer ") for r in shop.requests if "auth" not in r.path)


def test_customer_money_and_lines_come_through(synced: tuple[ShoperConnector, InMemoryStore],
                                               shop: ShoperEmulator) -> None:
    _, store = synced
    record = open_return(store)
    raw = shop.order(record.external_id)
    assert record.customer.email == (raw["email"] or None)
    assert record.customer.postcode == raw["billing_address"]["postcode"]
    assert record.currency in ("PLN", "EUR") and record.channel_status == REQUESTED
    assert record.extra["status_name"] == "Zwrot zgłoszony"
    product = shop.products[int(record.external_id)][0]
    line = next(line for line in record.lines if line.external_id == product["id"])
    assert line.sku == product["code"] and line.quantity == int(product["quantity"])
    expected = Decimal(product["price"]) * (100 - Decimal(product["discount_perc"])) / 100
    assert line.unit_price == int((expected * 100).quantize(Decimal(1)))
    order = store.orders[record.external_id]
    assert order.total_amount == int(Decimal(raw["sum"]) * 100)


def test_a_re_pull_of_an_unchanged_shop_writes_nothing(synced: tuple[ShoperConnector, InMemoryStore]) -> None:
    connector, store = synced
    assert store.run(connector) == []


def test_incremental_pull_sees_a_new_request_an_approval_and_a_refund_made_in_the_panel(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    waiting = open_return(store)
    new_request = shop.request_return(reason="Za mały rozmiar, potrzebuję L")
    shop.set_status(int(waiting.external_id), ACCEPTED)
    shipped = next(int(i) for i, o in store.orders.items() if o.channel_status == "4" and i not in store.returns)
    status_date = shop.order(shipped)["status_date"]
    refund_id = shop.refund_in_panel(shipped, "20.00")
    assert shop.order(shipped)["status_date"] == status_date, "a refund does not touch its order"

    written = store.run(connector)

    assert set(written) == {str(new_request), waiting.external_id, str(shipped)}
    requested = store.returns[str(new_request)]
    assert requested.status is ReturnStatus.REQUESTED and requested.reason.value == "wrong_size"
    assert requested.channel_reason == "Za mały rozmiar, potrzebuję L"
    approved = store.returns[waiting.external_id]
    assert approved.status is ReturnStatus.DECIDED
    assert {line.channel_decision for line in approved.lines} == {DecisionKind.ACCEPT}, "the panel's decision"
    refunded = store.returns[str(shipped)]
    assert refunded.status is ReturnStatus.REFUNDED and refunded.refund_amount == 2000
    assert refunded.extra["refund_ids"] == [str(refund_id)]
    assert store.cursor and store.cursor["phase"] == "orders" and store.cursor["page"] == 1


def test_a_pass_cut_short_resumes_at_the_next_page(shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector, max_pages=1)
    assert store.cursor and store.cursor["page"] == 2 and store.cursor["phase"] == "orders"
    store.run(connector)
    assert set(store.returns) == shop.truth()["returns"]
    pages = [q["page"] for q in listings(shop, "/orders") if "status_date" in q.get("filters", "")]
    # page 2 may have been asked for ahead before the first pass was cut; never stored, it is read again
    assert pages[0] == "1" and pages[-4:] == ["2", "3", "4", "5"] and len(pages) in (5, 6)


def test_unknown_statuses_are_stored_verbatim_not_crashed_on(synced: tuple[ShoperConnector, InMemoryStore],
                                                             shop: ShoperEmulator) -> None:
    connector, store = synced
    odd = shop.add_odd_return()
    assert store.run(connector) == [odd]
    record = store.returns[odd]
    assert record.channel_status == "42" and record.extra["refund_statuses"] == {record.extra["refund_ids"][0]: "7"}
    assert record.status is ReturnStatus.REQUESTED and record.customer.email is None and record.currency is None
    assert record.lines[0].title is None and record.lines[0].unit_price is None
    unconfigured = {o.external_id for o in store.orders.values() if o.channel_status == "21"}
    refunded = {r["order_id"] for r in shop.refunds.values()}
    assert unconfigured and not (unconfigured - refunded) & set(store.returns), "a status nobody configured is a sale"


def test_without_return_statuses_only_refunded_orders_are_returns(shop: ShoperEmulator, make_connector: Make) -> None:
    store = InMemoryStore()
    store.run(make_connector(shop, requested_statuses=[], received_statuses=[], accepted_statuses=[],
                             rejected_statuses=[]))
    refunded = {r["order_id"] for r in shop.refunds.values()}
    assert set(store.returns) == refunded and len(store.orders) == len(shop.orders)


# --- rate limits -------------------------------------------------------------------------------


def test_the_bucket_headers_pace_the_channel_so_it_never_overflows(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator, clock: FakeClock) -> None:
    assert len(shop.requests) > shop.bucket_limit * 2, "more calls than the bucket holds"
    assert not [r for r in shop.requests if r.status == 429]
    assert clock.waits and all(0 < seconds <= 1.5 for _, seconds in clock.waits), "held, leak by leak"


def test_a_429_with_retry_after_blocks_the_channel_and_recovers(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator, clock: FakeClock,
        make_connector: Make) -> None:
    _, store = synced
    new_request = shop.request_return()
    clock.now += 60  # a minute later the bucket has leaked empty
    connector = make_connector(shop)
    connector.client.currencies()  # signed in, nothing waiting
    shop.drain_bucket()  # another integration of the same application fills it to the brim
    clock.waits.clear()
    before = len(shop.requests)

    assert store.run(connector) == [str(new_request)]

    sent = shop.requests[before:]
    assert sent[0].status == 429 and [r.status for r in sent].count(429) == 1
    assert sent[1].path == sent[0].path and sent[1].query == sent[0].query, "the same request, once unblocked"
    retry_after = 1  # ceil((10 + 1 - 10) / 2)
    first_wait = next(seconds for at, seconds in clock.waits if at == before + 1)
    assert first_wait >= retry_after - 0.01, "nothing more was sent before the Retry-After passed"


def test_a_429_that_outlasts_the_retries_fails_the_pull_with_a_clear_error(
        shop: ShoperEmulator, make_connector: Make) -> None:
    shop.inject("status", status=429, retry_after="3", times=None, path="/webapi/rest/orders")
    with pytest.raises(Exception, match=r"rate limited \(HTTP 429\).*gave up after"):
        InMemoryStore().run(make_connector(shop, max_retries=2))


# --- decision acts -----------------------------------------------------------------------------


def test_accept_refunds_the_returned_quantity_against_the_payment_and_sets_the_status(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    act = act_for(record, DecisionKind.ACCEPT, note="Zwrot przyjęty, dziękujemy.")
    result = carry_out(connector, act)
    assert result.status is PushStatus.PUSHED, result.detail
    [refund] = applied(shop, "refund")
    assert Decimal(refund["amount"]) == worth(shop, record)
    transaction = next(t for t in shop.transactions.values() if t["order_id"] == record.external_id)
    assert refund["transaction"] == int(transaction["transaction_id"]) and refund["status"] == "3"
    assert refund["comment"].startswith(f"[retsync:{act.key}] accept")
    assert applied(shop, "status") == [{"kind": "status", "order": int(record.external_id), "from": REQUESTED,
                                        "to": ACCEPTED}]
    order = shop.order(record.external_id)
    assert "Zwrot przyjęty, dziękujemy." in order["notes_pub"] and act.key in order["notes_priv"]
    assert result.result and result.result["refund_id"] == str(refund["refund"])

    store.run(connector)
    stored = store.returns[record.external_id]
    assert stored.status is ReturnStatus.REFUNDED and stored.lines[0].channel_decision is DecisionKind.ACCEPT


def test_a_whole_return_accept_is_one_refund_of_every_product_and_one_status_change(
        shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    record = open_return(store, lines=2)
    act = act_for(record, DecisionKind.ACCEPT, note="Zwrot przyjęty.")
    result = carry_out(connector, act)
    assert result.status is PushStatus.PUSHED, result.detail
    [refund] = applied(shop, "refund")
    assert Decimal(refund["amount"]) == worth(shop, record), "one amount for every product of the return"
    products = ", ".join(f"{line.quantity} x {line.external_id}" for line in record.lines)
    assert refund["comment"].startswith(f"[retsync:{act.key}] accept {products} ")
    assert len(applied(shop, "status")) == 1 and len(applied(shop, "notes")) == 2  # notes_priv, notes_pub
    assert shop.order(record.external_id)["notes_priv"].count("[retsync:") == 1
    assert all(f"{line.quantity} × product {line.external_id}" in (result.detail or "") for line in record.lines)

    store.run(connector)
    stored = store.returns[record.external_id]
    assert {line.channel_decision for line in stored.lines} == {DecisionKind.ACCEPT}, "every line read back"


def test_a_whole_return_refund_whose_answer_was_lost_is_made_once_on_the_retry(
        shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    record = open_return(store, lines=2)
    act = act_for(record, DecisionKind.ACCEPT)
    shop.inject("lost", times=1)  # the next write: the refund is made, its answer never arrives
    first = carry_out(connector, act)
    assert first.status is PushStatus.RETRY and "may have been applied" in (first.detail or "")
    assert len(applied(shop, "refund")) == 1 and not applied(shop, "status")
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED and "already in the shop" in (retry.detail or "")
    assert len(applied(shop, "refund")) == 1 and len(applied(shop, "status")) == 1
    acts = shop.acts_applied()
    assert len(acts) == len(set(acts)) and [entry[0] for entry in acts].count("refund") == 1


def test_keep_is_a_refund_only_read_back_as_keep(synced: tuple[ShoperConnector, InMemoryStore],
                                                 shop: ShoperEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    act = act_for(record, DecisionKind.KEEP, note=None)
    result = carry_out(connector, act)
    assert result.status is PushStatus.PUSHED, result.detail
    [refund] = applied(shop, "refund")
    assert " keep " in refund["comment"] and "the customer keeps the item" in refund["comment"]
    assert not applied(shop, "status") and not applied(shop, "notes")
    again = carry_out(connector, replace(act, attempt=2))
    assert again.status is PushStatus.PUSHED and "already applied on" in (again.detail or "")
    assert again.reference == result.reference and len(applied(shop, "refund")) == 1
    store.run(connector)
    assert store.returns[record.external_id].lines[0].channel_decision is DecisionKind.KEEP


def test_keep_can_also_set_a_status(shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, keep_status="5"), InMemoryStore()
    store.run(connector)
    record = open_return(store)
    result = carry_out(connector, act_for(record, DecisionKind.KEEP))
    assert result.status is PushStatus.PUSHED and len(applied(shop, "refund")) == 1
    assert applied(shop, "status") == [{"kind": "status", "order": int(record.external_id), "from": REQUESTED,
                                        "to": "5"}]
    store.run(connector)
    assert store.returns[record.external_id].lines[0].channel_decision is DecisionKind.KEEP


def test_a_pending_refund_can_be_left_for_the_panel(shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, refund_status="pending"), InMemoryStore()
    store.run(connector)
    record = open_return(store)
    assert carry_out(connector, act_for(record, DecisionKind.KEEP)).status is PushStatus.PUSHED
    assert applied(shop, "refund")[0]["status"] == "1"
    store.run(connector)
    assert store.returns[record.external_id].status is ReturnStatus.DECIDED


@pytest.mark.parametrize("kind, status", [
    (DecisionKind.REJECT, REJECTED), (DecisionKind.REPAIR, REPAIR), (DecisionKind.EXCHANGE, EXCHANGE),
    (DecisionKind.CANCEL, "5"),
])
def test_status_decisions_set_the_configured_status_and_tell_the_customer(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator, kind: DecisionKind,
        status: str) -> None:
    connector, store = synced
    record = open_return(store)
    act = act_for(record, kind, note="Wyślemy etykietę zwrotną.")
    result = carry_out(connector, act)
    assert result.status is PushStatus.PUSHED, result.detail
    assert applied(shop, "status") == [{"kind": "status", "order": int(record.external_id), "from": REQUESTED,
                                        "to": status}]
    notes = {entry["field"]: entry["added"] for entry in applied(shop, "notes")}
    assert notes["notes_pub"] == "Wyślemy etykietę zwrotną."
    assert notes["notes_priv"].startswith(f"[retsync:{act.key}] {kind.value} ")
    assert not applied(shop, "refund")
    store.run(connector)
    stored = store.returns[record.external_id]
    assert stored.status is (ReturnStatus.CANCELLED if kind is DecisionKind.CANCEL else ReturnStatus.DECIDED)
    assert stored.lines[0].channel_decision is kind, "retsync's own decision is read back as itself"


def test_cancel_cancels_the_orders_pending_refunds(synced: tuple[ShoperConnector, InMemoryStore],
                                                  shop: ShoperEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    pending = shop.refund_in_panel(int(record.external_id), "10.00", status="1")
    assert carry_out(connector, act_for(record, DecisionKind.CANCEL)).status is PushStatus.PUSHED
    assert applied(shop, "refund_status") == [{"kind": "refund_status", "refund": pending,
                                               "order": int(record.external_id), "from": "1", "to": "2"}]


def test_an_empty_status_setting_keeps_the_status_and_writes_only_the_record(
        shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, repair_status=""), InMemoryStore()
    store.run(connector)
    record = open_return(store)
    assert carry_out(connector, act_for(record, DecisionKind.REPAIR, note=None)).status is PushStatus.PUSHED
    assert not applied(shop, "status")
    assert [entry["field"] for entry in applied(shop, "notes")] == ["notes_priv"], "no note: nothing for the customer"


def test_lines_decided_one_at_a_time_get_one_status_change_and_one_note(
        shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    record = open_return(store, lines=2)
    for index in range(len(record.lines)):
        act = act_for(record, DecisionKind.REJECT, lines=[index], note="Brak oryginalnego pudełka.")
        assert carry_out(connector, act).status is PushStatus.PUSHED
    assert len(applied(shop, "status")) == 1
    assert shop.order(record.external_id)["notes_pub"].count("Brak oryginalnego pudełka.") == 1
    assert shop.order(record.external_id)["notes_priv"].count("[retsync:") == len(record.lines)
    store.run(connector)
    assert {line.channel_decision for line in store.returns[record.external_id].lines} == {DecisionKind.REJECT}


def test_a_refund_whose_answer_was_lost_is_found_on_the_retry_not_made_twice(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    act = act_for(open_return(store), DecisionKind.ACCEPT)
    shop.lose_answer("POST", "/order-refunds")
    first = carry_out(connector, act)
    assert first.status is PushStatus.RETRY and "may have been applied" in (first.detail or "")
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED and "already in the shop" in (retry.detail or "")
    assert len(applied(shop, "refund")) == 1 and len(applied(shop, "status")) == 1
    again = carry_out(connector, replace(act, attempt=3))
    assert again.status is PushStatus.PUSHED and "already applied on" in (again.detail or "")
    assert again.result and again.result["refund_id"] == retry.reference
    assert len(applied(shop, "refund")) == 1 and len(applied(shop, "status")) == 1


def test_a_status_decision_whose_answer_was_lost_is_not_applied_twice(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    act = act_for(open_return(store), DecisionKind.REJECT, note="Po terminie 14 dni.")
    shop.lose_answer("PUT", f"/orders/{act.order_external_id}")
    assert carry_out(connector, act).status is PushStatus.RETRY
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED and "already applied on" in (retry.detail or "")
    assert len(applied(shop, "status")) == 1
    assert shop.order(act.order_external_id)["notes_pub"].count("Po terminie 14 dni.") == 1


def test_a_refund_already_made_in_the_panel_is_not_asked_for_again(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    shop.refund_in_panel(int(record.external_id), shop.order(record.external_id)["sum"])
    before = len(shop.requests)
    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT))
    assert result.status is PushStatus.FAILED and "left to refund" in (result.detail or "")
    assert not [r for r in shop.requests[before:] if r.method != "GET"]



def test_a_refund_of_exactly_what_is_left_goes_through_though_its_discount_leaves_fractions_of_a_cent(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    """59.99 less 10 % is 53.991: the shop's totals are in whole cents (53.99), so asking for the line when 53.99
    is left is asking for all that is left, not more (the push benchmark had one such keep refused)."""
    connector, store = synced
    record = next(r for r in store.returns.values() if r.status is ReturnStatus.REQUESTED and len(r.lines) == 1
                  and r.lines[0].order_line_external_id and r.lines[0].quantity == 1
                  and not shop._refunds_of(int(r.external_id)))
    product = next(p for p in shop.products[int(record.external_id)] if p["id"] == record.lines[0].external_id)
    product["price"], product["discount_perc"] = "59.99", "10.00"
    order = shop.order(record.external_id)
    shop.data.total(order)  # the shop's sum, in whole cents, and the payment that paid it
    next(t for t in shop.transactions.values() if t["order_id"] == record.external_id)["currency_value"] = order["sum"]
    others = Decimal(order["sum"]) - Decimal("53.99")  # the order's other products, refunded in the panel
    if others:
        shop.refund_in_panel(int(record.external_id), str(others))
    result = carry_out(connector, act_for(record, DecisionKind.KEEP))
    assert result.status is PushStatus.PUSHED, result.detail
    made = [r for r in shop._refunds_of(int(record.external_id)) if r["comment"] != "Zwrot w panelu"]
    assert len(applied(shop, "refund")) == 1 and [Decimal(r["currency_value"]) for r in made] == [Decimal("53.99")]

def test_an_order_gone_from_the_shop_or_holding_a_marketplace_return_is_refused(
        synced: tuple[ShoperConnector, InMemoryStore]) -> None:
    connector, store = synced
    record = open_return(store)
    deleted = record.model_copy(update={"external_id": "999999", "order_external_id": "999999"})
    gone = carry_out(connector, act_for(deleted, DecisionKind.REJECT))
    assert gone.status is PushStatus.FAILED and "no order 999999" in (gone.detail or "")
    held = carry_out_hold(connector, _hold(_marketplace_return("8"))).reference
    assert held
    refused = carry_out(connector, act_for(record.model_copy(update={"external_id": held, "order_external_id": held}),
                                           DecisionKind.REJECT))
    assert refused.status is PushStatus.FAILED and "holds another channel's return" in (refused.detail or "")


def test_an_unknown_status_setting_is_refused_in_shopers_words(shop: ShoperEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, reject_status="99"), InMemoryStore()
    store.run(connector)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.REJECT))
    assert result.status is PushStatus.FAILED
    assert "HTTP 400: status_id: status 99 does not exist (invalid_request)" in (result.detail or "")


def test_a_wrong_password_says_what_to_check_and_the_decision_waits(
        shop: ShoperEmulator, make_connector: Make) -> None:
    good, store = make_connector(shop), InMemoryStore()
    store.run(good)
    bad = make_connector(shop, password="wrong-password")
    result = carry_out(bad, act_for(open_return(store), DecisionKind.ACCEPT))
    assert result.status is PushStatus.RETRY, "fixed credentials let the decision go out"
    assert "Invalid user credentials" in (result.detail or "") and "check login and password" in (result.detail or "")
    with pytest.raises(AuthError, match="auth_failure"):
        InMemoryStore().run(bad)


def test_an_expired_token_is_replaced_once(synced: tuple[ShoperConnector, InMemoryStore],
                                           shop: ShoperEmulator) -> None:
    connector, store = synced
    shop.expire_tokens()
    shop.request_return()
    assert len(store.run(connector)) == 1
    assert len([r for r in shop.requests if r.path == "/webapi/rest/auth"]) == 2


def test_an_order_is_fetched_for_linking_but_never_a_held_one(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    some = next(iter(store.orders.values()))
    fetched = connector.fetch_order(some.external_id)
    assert fetched is not None and fetched.lines == some.lines
    assert connector.fetch_order("999999") is None
    held = carry_out_hold(connector, _hold(_marketplace_return("5"))).reference
    assert held and connector.fetch_order(held) is None


def test_a_rejection_needs_a_note_for_the_customer() -> None:
    assert ShoperConnector.decision_problem(DecisionKind.REJECT, None)
    assert ShoperConnector.decision_problem(DecisionKind.REJECT, "Ślady użytkowania") is None
    assert ShoperConnector.decision_problem(DecisionKind.CANCEL, None) is None


# --- settings ----------------------------------------------------------------------------------


def _settings(**overrides: object) -> ShoperSettings:
    return ShoperSettings(**{"connector": "shoper", "base_url": "https://sklep.example.pl", "login": "api",
                             "password": "secret-pass", **overrides})


def test_status_ids_may_be_numbers_lists_or_comma_separated_text() -> None:
    settings = _settings(requested_statuses=[14, "15"], received_statuses="16, 17", accept_status=16,
                         held_decision_statuses="16=accept, 17=reject")
    assert settings.requested_statuses == ("14", "15") and settings.received_statuses == ("16", "17")
    assert settings.accept_status == "16"
    assert settings.held_decision_statuses == {"16": DecisionKind.ACCEPT, "17": DecisionKind.REJECT}
    table = _settings(held_decision_statuses={"16": "keep"})
    assert table.held_decision_statuses == {"16": DecisionKind.KEEP}


@pytest.mark.parametrize("overrides, message", [
    ({"requested_statuses": ["Zwrot"]}, "is not a Shoper id"),
    ({"held_decision_statuses": "16"}, "write status_id=decision"),
    ({"timezone": "Mars/Olympus"}, "is not a time zone"),
    ({"page_size": 100}, "less than or equal to 50"),
])
def test_bad_settings_are_refused_with_a_clear_message(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(**overrides)


# --- the back-office flow ----------------------------------------------------------------------


def _marketplace_return(external_id: str = "61234567") -> Return:
    return Return(
        external_id=external_id, order_external_id="A-77", status=ReturnStatus.REQUESTED, created_at=NOW,
        channel_reason="Too small", currency="PLN",
        customer=Customer(name="Ewa Zielińska", email="ewa@example.pl", postcode="80-001"),
        lines=(ReturnLine(external_id="L1", sku="KURT-01", title="Kurtka przeciwdeszczowa", quantity=1,
                          unit_price=34900, currency="PLN"),
               ReturnLine(external_id="L2", sku="SZAL-07", title="Szalik", quantity=2, unit_price=8900,
                          currency="PLN")),
    )


def _hold(ret: Return, attempt: int = 1, reference: str | None = None) -> HoldRequest:
    return HoldRequest(hold_id=1, key=f"bol/{ret.external_id}", source_channel="bol", source_title="Bol.com",
                       ret=ret, attempt=attempt, requested_at=NOW, reference=reference)


def test_a_marketplace_return_is_held_as_one_order_even_when_the_answer_is_lost(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, store = synced
    ret = _marketplace_return()
    shop.lose_answer("POST", "/orders")
    first = carry_out_hold(connector, _hold(ret))
    assert first.status is PushStatus.RETRY  # the order was created, but we could not know
    again = carry_out_hold(connector, _hold(ret, attempt=2))
    assert again.status is PushStatus.PUSHED and again.reference
    assert shop.held_returns() == {"bol/61234567": again.reference}
    order = shop.order(again.reference)
    assert order["status_id"] == HOLD and order["email"] == "ewa@example.pl" and order["origin"] == "4"
    assert order["billing_address"]["firstname"] == "Ewa" and order["billing_address"]["postcode"] == "80-001"
    assert "Bol.com return 61234567 (order A-77): Too small" in order["notes_priv"]
    assert [(p["name"], p["quantity"], p["price"]) for p in shop.products[int(again.reference)]] == [
        ("Kurtka przeciwdeszczowa", "1", "349.00"), ("Szalik", "2", "89.00")]
    assert len(applied(shop, "order")) == 1
    assert carry_out_hold(connector, _hold(ret, attempt=3, reference=again.reference)).reference == again.reference
    assert len(applied(shop, "order")) == 1 and len(applied(shop, "product")) == 2

    store.run(connector)  # the shop's own pull leaves the held order out: it is neither a sale nor a shop return
    assert again.reference not in store.returns and again.reference not in store.orders


def test_a_lost_product_answer_is_finished_on_the_retry_without_doubling_items(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, _ = synced
    ret = _marketplace_return("9")
    shop.lose_answer("POST", "/order-products")
    first = carry_out_hold(connector, _hold(ret))
    assert first.status is PushStatus.RETRY
    again = carry_out_hold(connector, _hold(ret, attempt=2))
    assert again.status is PushStatus.PUSHED and again.reference, "the retry finds the order by its hold key"
    assert [p["name"] for p in shop.products[int(again.reference)]] == ["Kurtka przeciwdeszczowa", "Szalik"]


def test_a_decision_taken_on_the_held_order_is_read_back_with_the_merchants_note(
        synced: tuple[ShoperConnector, InMemoryStore], shop: ShoperEmulator) -> None:
    connector, _ = synced
    accepted = carry_out_hold(connector, _hold(_marketplace_return("1"))).reference
    rejected = carry_out_hold(connector, _hold(_marketplace_return("2"))).reference
    waiting = carry_out_hold(connector, _hold(_marketplace_return("3"))).reference
    assert accepted and rejected and waiting
    assert connector.held_decisions([accepted, rejected, waiting]) == {}

    shop.panel_decide(accepted, "accept")
    shop.panel_decide(rejected, "reject", note="Ślady noszenia, metki odcięte")
    decided = connector.held_decisions([accepted, rejected, waiting])
    assert set(decided) == {accepted, rejected}
    assert decided[accepted].kind is DecisionKind.ACCEPT and decided[accepted].shop_status == ACCEPTED
    assert decided[accepted].note == f"decided in the shop (order status {ACCEPTED})"
    assert decided[rejected].kind is DecisionKind.REJECT
    assert decided[rejected].note == "Ślady noszenia, metki odcięte"
    assert decided[rejected].decided_at is not None


def test_holding_needs_the_hold_settings(shop: ShoperEmulator, make_connector: Make) -> None:
    connector = make_connector(shop, hold_status="", hold_payment_id="")
    result = carry_out_hold(connector, _hold(_marketplace_return()))
    assert result.status is PushStatus.FAILED
    assert "hold_status, hold_payment_id" in (result.detail or "") and "[channels.shoper-test]" in (result.detail or "")
    assert not applied(shop)


def test_the_sandbox_size_knob() -> None:
    small, big = ShoperConnector.sandbox(seed=1, returns=10), ShoperConnector.sandbox(seed=1, returns=300)
    assert len(small.truth()["returns"]) < len(big.truth()["returns"])
    assert 200 < len(big.truth()["returns"]) < 600
    assert SANDBOX_CHANNEL["login"] and ShoperConnector.capabilities.holds_returns


def test_a_roomy_sandbox_still_limits(clock: FakeClock) -> None:
    roomy = ShoperEmulator.roomy(seed=2)
    assert roomy.bucket_limit > ShoperEmulator.bucket_limit and roomy.bandwidth > ShoperEmulator.bandwidth
