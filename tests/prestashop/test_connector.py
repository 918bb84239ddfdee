"""The PrestaShop connector against its sandbox: backfill, incremental pulls, every decision's effect on the shop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from retsync.kit.contract import HoldRequest, Page, PushStatus, Stream
from retsync.kit.http import ApiError, AuthError, BadPayload
from retsync.kit.model import Customer, DecisionKind, Return, ReturnLine, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out, carry_out_hold
from retsync_connectors.prestashop.connector import PrestaShopConnector
from retsync_connectors.prestashop.emulator import HOLD_ORDER_ID, PrestaShopEmulator
from retsync_connectors.prestashop.sandbox_data import HOLD_CUSTOMER_ID

Make = Callable[..., PrestaShopConnector]


@pytest.fixture
def shop() -> PrestaShopEmulator:
    return PrestaShopEmulator(seed=11)


@pytest.fixture
def synced(shop: PrestaShopEmulator, make_connector: Make) -> tuple[PrestaShopConnector, InMemoryStore]:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    return connector, store


def open_return(store: InMemoryStore, status: ReturnStatus = ReturnStatus.REQUESTED) -> Return:
    return next(r for r in store.returns.values() if r.status is status and r.lines[0].order_line_external_id)


def applied(shop: PrestaShopEmulator, kind: str, resource: str | None = None) -> list[dict]:
    return [a for a in shop.applied if a["kind"] == kind and (resource is None or a.get("resource") == resource)]


# --- pulling -----------------------------------------------------------------------------------


def test_backfill_stores_every_order_and_every_merchandise_return(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    _, store = synced
    truth = shop.truth()
    assert set(store.orders) == truth["orders"]
    assert set(store.returns) == truth["returns"]
    assert all(r.lines and r.currency == "EUR" and r.customer.email for r in store.returns.values())


def test_lists_page_by_offset_with_a_date_upd_interval_as_json_with_the_key_as_user(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    listings = [r for r in shop.requests if r.path == "/api/orders" and "filter[date_upd]" in r.query]
    assert [r.query["limit"] for r in listings] == ["0,100", "100,100"]  # 180 orders
    for r in listings:
        assert r.query["date"] == "1" and r.query["display"] == "full" and r.query["output_format"] == "JSON"
        assert r.query["sort"] == "[date_upd_ASC,id_ASC]"
        low, _, high = r.query["filter[date_upd]"].strip("[]").partition(",")
        assert high == "2100-01-01 00:00:00" and len(low) == 19
    assert all(r.headers["authorization"] == "Basic UFNXU0tFWTdRMk05WDRDOFYxQjZOM1o1TDBLMko4SDQ6"
               for r in shop.requests), "the key is the user name, the password empty"
    assert any(r.path == "/api/order_returns" for r in shop.requests)
    assert any(r.path == "/api/order_slip" and "filter[date_upd]" in r.query for r in shop.requests)


def test_a_re_pull_of_an_unchanged_shop_writes_nothing(synced: tuple[PrestaShopConnector, InMemoryStore]) -> None:
    connector, store = synced
    assert store.run(connector) == []


def test_incremental_pull_sees_a_new_request_a_state_change_and_a_refund_made_in_the_back_office(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    waiting = open_return(store)
    new = shop.request_return(question="<p>Wrong <b>size</b>, too small</p>")
    shop.set_return_state(int(waiting.external_id), 3)
    received = open_return(store, ReturnStatus.IN_TRANSIT)
    slip = shop.refund_in_back_office(int(received.order_external_id))

    written = store.run(connector)

    assert set(written) == {str(new), waiting.external_id, received.external_id}
    fresh = store.returns[str(new)]
    assert fresh.status is ReturnStatus.REQUESTED and fresh.channel_reason == "Wrong size, too small"
    assert fresh.reason.value == "wrong_size" and fresh.lines[0].quantity == 1
    assert store.returns[waiting.external_id].status is ReturnStatus.RECEIVED
    refunded = store.returns[received.external_id]
    assert refunded.status is ReturnStatus.REFUNDED and refunded.extra["slip_ids"] == [str(slip)]
    assert refunded.refund_amount and refunded.refunded_at is not None


def test_a_pass_cut_short_resumes_at_the_next_offset(shop: PrestaShopEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector, max_pages=1)
    assert store.cursor and store.cursor["phase"] == "orders" and store.cursor["orders_offset"] == 100
    store.run(connector)
    assert set(store.returns) == shop.truth()["returns"] and set(store.orders) == shop.truth()["orders"]
    limits = [r.query["limit"] for r in shop.requests if r.path == "/api/orders" and "filter[date_upd]" in r.query]
    assert limits[:2] == ["0,100", "100,100"]


def test_an_unknown_return_state_is_stored_verbatim_and_stays_open(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    odd = shop.add_odd_return()
    assert store.run(connector) == [odd]
    record = store.returns[odd]
    assert record.channel_status == "6" and record.status is ReturnStatus.REQUESTED
    assert record.channel_reason is None and record.reason.value == "unknown"


def test_the_state_table_is_the_merchants(shop: PrestaShopEmulator, make_connector: Make) -> None:
    store = InMemoryStore()
    store.run(make_connector(shop, return_states={"1": "requested", "2": "in_transit", "3": "received",
                                                  "4": "rejected", "5": "completed", "6": "exchange"}))
    exchanged = [r for r in store.returns.values() if r.channel_status == "6"]
    assert exchanged and all(r.status is ReturnStatus.DECIDED and r.lines[0].channel_decision is
                             DecisionKind.EXCHANGE for r in exchanged)


def test_a_meaning_the_state_table_does_not_know_is_a_clear_config_error() -> None:
    from pydantic import ValidationError

    from retsync_connectors.prestashop.connector import PrestaShopSettings
    with pytest.raises(ValidationError, match="unknown meaning \\['approved'\\]"):
        PrestaShopSettings(connector="prestashop", base_url="https://x", api_key="k" * 32,
                           return_states={"2": "approved"})


def test_delivered_orders_carry_their_delivery_date(synced: tuple[PrestaShopConnector, InMemoryStore],
                                                    shop: PrestaShopEmulator) -> None:
    _, store = synced
    for order_id, order in store.orders.items():
        raw = shop.order(order_id)["delivery_date"]
        if raw.startswith("0000"):
            assert order.delivered_at is None
        else:
            assert order.delivered_at == datetime.fromisoformat(raw).replace(tzinfo=timezone.utc)
    assert any(o.delivered_at for o in store.orders.values()) and any(not o.delivered_at for o in store.orders.values())


def test_the_shops_time_zone_is_applied_to_its_dates(shop: PrestaShopEmulator, make_connector: Make) -> None:
    store = InMemoryStore()
    store.run(make_connector(shop, shop_timezone="Europe/Paris"))
    order_id, order = next((k, o) for k, o in store.orders.items() if o.placed_at)
    naive = datetime.fromisoformat(shop.order(order_id)["date_add"]).replace(tzinfo=timezone.utc)
    assert order.placed_at is not None and 3600 <= (naive - order.placed_at).total_seconds() <= 7200


def test_a_wrong_key_fails_with_the_shops_message(shop: PrestaShopEmulator, make_connector: Make) -> None:
    with pytest.raises(AuthError, match="Authentification key is not active \\(code 20\\)"):
        InMemoryStore().run(make_connector(shop, api_key="X" * 32))


# --- PrestaShop 1.7 / 8 -----------------------------------------------------------------------


@pytest.fixture
def shop8() -> PrestaShopEmulator:
    return PrestaShopEmulator(seed=11, version="8.1.7")


def test_on_8_returns_come_from_returned_quantities_and_credit_slips(shop8: PrestaShopEmulator,
                                                                    make_connector: Make) -> None:
    store = InMemoryStore()
    store.run(make_connector(shop8))
    assert any(r.path == "/api/order_returns" and r.status == 400 for r in shop8.requests), "no such resource"
    expected = {f"order-{o}" for o in {d["id_order"] for d in shop8.tables["order_details"].values()
                                       if int(d["product_quantity_return"]) or int(d["product_quantity_refunded"])}
                | {s["id_order"] for s in shop8.tables["order_slip"].values()}}
    assert set(store.returns) == expected
    refunded = [r for r in store.returns.values() if r.status is ReturnStatus.REFUNDED]
    assert refunded and all(r.refund_amount and r.extra["slip_ids"] for r in refunded)
    assert {r.status for r in store.returns.values()} == {ReturnStatus.RECEIVED, ReturnStatus.REFUNDED}


def test_on_8_a_refund_in_the_back_office_is_seen_through_the_slips(shop8: PrestaShopEmulator,
                                                                   make_connector: Make) -> None:
    connector, store = make_connector(shop8), InMemoryStore()
    store.run(connector)
    quiet = next(o for o in shop8.tables["orders"].values()
                 if f"order-{o['id']}" not in store.returns and o["id"] != HOLD_ORDER_ID)
    shop8.refund_in_back_office(quiet["id"])
    assert store.run(connector) == [f"order-{quiet['id']}"]
    assert store.returns[f"order-{quiet['id']}"].status is ReturnStatus.REFUNDED


def test_on_8_accept_is_a_credit_slip_and_reject_a_message(shop8: PrestaShopEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop8), InMemoryStore()
    store.run(connector)
    first, second = [r for r in store.returns.values() if r.status is ReturnStatus.RECEIVED][:2]
    accepted = carry_out(connector, act_for(first, DecisionKind.ACCEPT, note=None))
    assert accepted.status is PushStatus.PUSHED, accepted.detail
    [slip] = applied(shop8, "create", "order_slip")
    assert slip["fields"]["id_order"] == first.order_external_id
    assert [(row["id_order_detail"], row["product_quantity"]) for row in
            slip["fields"]["associations"]["order_slip_details"]] == [
        (line.order_line_external_id, str(line.quantity)) for line in first.lines], "one slip with every line"
    rejected = carry_out(connector, act_for(second, DecisionKind.REJECT, note="Worn, not returnable"))
    assert rejected.status is PushStatus.PUSHED and len(applied(shop8, "create", "order_slip")) == 1
    assert "Worn, not returnable" in [m["fields"]["message"] for m in applied(shop8, "create", "customer_messages")]
    assert store.run(connector) and store.returns[first.external_id].status is ReturnStatus.REFUNDED
    assert store.returns[first.external_id].lines[0].channel_decision is DecisionKind.ACCEPT


def two_line_return(store: InMemoryStore) -> Return:
    return next(r for r in store.returns.values() if r.status is ReturnStatus.RECEIVED and len(r.lines) == 2)


def test_on_8_a_whole_return_accept_is_one_credit_slip_with_both_lines(shop8: PrestaShopEmulator,
                                                                      make_connector: Make) -> None:
    connector, store = make_connector(shop8), InMemoryStore()
    store.run(connector)
    record = two_line_return(store)
    order = record.order_external_id
    act = act_for(record, DecisionKind.ACCEPT, note="Both items are refunded")

    result = carry_out(connector, act)

    assert result.status is PushStatus.PUSHED, result.detail
    [slip] = applied(shop8, "create", "order_slip")
    assert result.reference == str(slip["id"])
    rows = slip["fields"]["associations"]["order_slip_details"]
    assert [(row["id_order_detail"], row["product_quantity"]) for row in rows] == [
        (line.order_line_external_id, str(line.quantity)) for line in record.lines]
    assert shop8.acts_applied() == [("message to the customer", f"order {order}", "Both items are refunded")] + [
        ("credit slip", f"order {order}", f"order detail {line.order_line_external_id}") for line in record.lines]
    [note, recorded] = [m["fields"] for m in applied(shop8, "create", "customer_messages")]
    first, second = record.lines
    assert note["private"] == "0" and recorded["private"] == "1"
    assert recorded["message"] == (
        f"[retsync] decision accept × {first.quantity + second.quantity} on lines {first.order_line_external_id} × "
        f"{first.quantity}, {second.order_line_external_id} × {second.quantity} (return {record.external_id}, key "
        f"{act.key})"), "one record for the act, naming every line"
    store.run(connector)
    again = store.returns[record.external_id]
    assert again.status is ReturnStatus.REFUNDED
    assert [line.channel_decision for line in again.lines] == [DecisionKind.ACCEPT] * 2


@pytest.mark.parametrize("lose", ["the slip", "the slip (injected)", "the record"])
def test_on_8_an_act_whose_answer_was_lost_leaves_one_slip_after_the_retry_with_the_same_key(
        shop8: PrestaShopEmulator, make_connector: Make, lose: str) -> None:
    connector, store = make_connector(shop8), InMemoryStore()
    store.run(connector)
    act = act_for(two_line_return(store), DecisionKind.ACCEPT)
    if lose == "the slip":
        shop8.lose_answer("POST", "/order_slip")
    elif lose == "the slip (injected)":
        shop8.inject("lost", path="/api/order_slip")
    else:  # the note is the first message, retsync's record the second
        shop8.inject("lost", path="/api/customer_messages", after=1)

    first = carry_out(connector, act)
    retry = carry_out(connector, replace(act, attempt=2))

    assert first.status is PushStatus.RETRY, first.detail
    assert retry.status is PushStatus.PUSHED, retry.detail
    [slip] = applied(shop8, "create", "order_slip")
    assert len(slip["fields"]["associations"]["order_slip_details"]) == 2
    acts = shop8.acts_applied()
    assert len(acts) == len(set(acts)) == 3, acts
    third = carry_out(connector, replace(act, attempt=3))
    assert third.status is PushStatus.PUSHED and "already applied" in (third.detail or ""), third.detail
    assert len(applied(shop8, "create", "order_slip")) == 1


def test_on_8_an_act_the_order_cannot_refund_is_refused_before_anything_is_written(
        shop8: PrestaShopEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop8), InMemoryStore()
    store.run(connector)
    record = two_line_return(store)
    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT, quantities=[1, 99]))
    assert result.status is PushStatus.FAILED and "99 asked" in (result.detail or ""), result.detail
    assert not applied(shop8, "create"), "no slip, and no message telling the customer of a refund"


# --- one record that cannot be read ---------------------------------------------------------------


def pull_pages(connector: PrestaShopConnector, store: InMemoryStore) -> list[Page]:
    """One pass, each page stored as the engine would; the pages, for what they set aside."""
    pages = list(connector.pull(Stream.RETURNS, store.context()))
    for page in pages:
        store.store(page)
    return pages


@pytest.mark.parametrize("version", ["9.0.0", "8.1.7"])
def test_a_return_of_1e30_items_is_set_aside_with_its_order_details_and_the_rest_of_its_page_stored(
        make_connector: Make, version: str) -> None:
    shop = PrestaShopEmulator(seed=11, version=version)
    connector, store = make_connector(shop), InMemoryStore()
    store.run(connector)
    before = dict(store.cursor or {})
    poison = shop.add_poison_return("quantity")
    normal = shop.add_odd_return()

    pages = pull_pages(connector, store)

    [aside] = [q for page in pages for q in page.quarantined]
    assert (aside.kind, aside.external_id) == ("return", poison)
    assert "not a quantity" in aside.reason and "1e+30" in aside.reason, aside.reason
    assert 1e30 in [d.get("product_quantity_return") for d in aside.payload["order_details"]]
    assert poison not in store.returns and normal in store.returns
    assert store.cursor != before, "the cursor moved past the page"


def test_a_failed_request_for_a_pages_order_details_fails_the_page_instead_of_setting_a_return_aside(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    before = dict(store.cursor or {})
    new = str(shop.request_return())
    shop.inject("wrong_shape", path="/api/order_details", times=None)

    with pytest.raises(BadPayload):
        pull_pages(connector, store)

    assert new not in store.returns and store.cursor == before, "nothing stored, the page is asked for again"
    shop.clear_faults()
    pages = pull_pages(connector, store)
    assert new in store.returns and not [q for page in pages for q in page.quarantined]


def test_a_return_dated_2099_never_moves_the_cursor_past_the_pull(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    future = shop.request_return()
    shop.order_return(future)["date_upd"] = "2099-12-31 23:59:59"

    store.run(connector)

    assert str(future) in store.returns
    assert datetime.fromisoformat(store.cursor["order_returns_since"]) <= store.now
    later = str(shop.request_return())
    assert later in store.run(connector), "a return after the 2099 one is still read"


def test_an_order_fetched_alone_that_cannot_be_read_counts_as_not_found(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    order_id = next(iter(store.orders))
    assert connector.fetch_order(order_id) == store.orders[order_id]
    shop.order(order_id)["associations"]["order_rows"][0]["product_quantity"] = "1e300000"

    assert connector.fetch_order(order_id) is None


# --- pushing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, state", [
    (DecisionKind.ACCEPT, 2), (DecisionKind.REJECT, 4), (DecisionKind.CANCEL, 4),
    (DecisionKind.REPAIR, 3), (DecisionKind.EXCHANGE, 3),
])
def test_state_decisions_put_the_whole_return_with_the_state_and_tell_the_customer(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator,
        kind: DecisionKind, state: int) -> None:
    connector, store = synced
    record = open_return(store)
    before = dict(shop.order_return(record.external_id))
    result = carry_out(connector, act_for(record, kind, note="We will send you a prepaid label."))
    assert result.status is PushStatus.PUSHED, result.detail
    assert applied(shop, "state") == [{"kind": "state", "order_return": int(record.external_id), "from": 1,
                                       "to": state}]
    after = shop.order_return(record.external_id)
    assert after["question"] == before["question"] and after["id_order"] == before["id_order"], \
        "the PUT carried the whole object"
    put = [r for r in shop.requests if r.method == "PUT"][-1]
    assert put.path == f"/api/order_returns/{record.external_id}" and "<state>" in put.body
    told, recorded = [m["fields"] for m in applied(shop, "create", "customer_messages")]
    assert told["message"] == "We will send you a prepaid label." and told["private"] == "0"
    assert recorded["private"] == "1" and recorded["message"].startswith(f"[retsync] decision {kind.value} × ")
    [thread] = applied(shop, "create", "customer_threads")
    assert thread["fields"]["id_order"] == record.order_external_id
    assert not applied(shop, "create", "order_slip")
    store.run(connector)
    assert store.returns[record.external_id].lines[0].channel_decision is kind, \
        "retsync's own decision is read back as itself, not as what the state would suggest"
    writes = len(shop.applied)
    again = carry_out(connector, act_for(record, kind, key=recorded["message"].split("key ")[1][:-1], attempt=2))
    assert again.status is PushStatus.PUSHED and "already applied" in (again.detail or ""), again.detail
    assert len(shop.applied) == writes


def test_keep_makes_a_credit_slip_and_completes_the_return(synced: tuple[PrestaShopConnector, InMemoryStore],
                                                           shop: PrestaShopEmulator) -> None:
    connector, store = synced
    record = open_return(store)
    result = carry_out(connector, act_for(record, DecisionKind.KEEP, note=None))
    assert result.status is PushStatus.PUSHED, result.detail
    [slip] = applied(shop, "create", "order_slip")
    details = [shop.tables["order_details"][int(line.external_id)] for line in record.lines]
    assert [d["product_quantity_refunded"] for d in details] == [str(line.quantity) for line in record.lines]
    total = sum(Decimal(d["unit_price_tax_incl"]) * line.quantity for d, line in zip(details, record.lines))
    assert slip["fields"]["amount"] == f"{total:.6f}"
    assert shop.order_return(record.external_id)["state"] == 5
    [message] = applied(shop, "create", "customer_messages")
    assert message["fields"]["private"] == "1" and "keep" in message["fields"]["message"], \
        "without your note, the staff get a private message"
    store.run(connector)
    assert store.returns[record.external_id].status is ReturnStatus.REFUNDED


def test_a_second_line_reuses_the_thread_and_sends_no_second_message(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    record = next(r for r in store.returns.values() if r.status is ReturnStatus.REQUESTED and len(r.lines) > 1)
    for index in range(len(record.lines)):
        assert carry_out(connector, act_for(record, DecisionKind.REJECT, lines=[index], note="Not in its box")
                         ).status is PushStatus.PUSHED
    assert len(applied(shop, "create", "customer_threads")) == 1
    said = [m["fields"]["message"] for m in applied(shop, "create", "customer_messages")]
    assert said.count("Not in its box") == 1 and len(said) == 1 + len(record.lines), "one note, a record per line"
    assert len(applied(shop, "state")) == 1


def test_a_credit_slip_whose_answer_was_lost_is_found_on_the_retry_not_made_twice(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    act = act_for(open_return(store), DecisionKind.KEEP)
    shop.lose_answer("POST", "/order_slip")
    first = carry_out(connector, act)
    assert first.status is PushStatus.RETRY and "may have been applied" in (first.detail or "")
    retry = carry_out(connector, replace(act, attempt=2))
    assert retry.status is PushStatus.PUSHED, retry.detail
    assert len(applied(shop, "create", "order_slip")) == 1
    said = [m["fields"]["message"] for m in applied(shop, "create", "customer_messages")]
    assert said[0] == "decided in a test" and len(said) == 2 and said[1].startswith("[retsync] decision keep")


def test_the_shops_error_body_reaches_the_merchant(shop: PrestaShopEmulator, make_connector: Make) -> None:
    connector, store = make_connector(shop, accept_state="99"), InMemoryStore()
    store.run(connector)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.ACCEPT))
    assert result.status is PushStatus.FAILED
    assert 'HTTP 400: Validation error: "Property OrderReturn->state is not valid (99)" (code 85)' in (result.detail or "")


def test_a_key_the_shop_refuses_is_retried_with_the_hint_to_check_its_permissions(
        shop: PrestaShopEmulator, make_connector: Make, synced: tuple[PrestaShopConnector, InMemoryStore]) -> None:
    _, store = synced
    connector = make_connector(shop, api_key="X" * 32)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.ACCEPT))
    assert result.status is PushStatus.RETRY and "check api_key and its permissions" in (result.detail or "")
    assert not shop.applied


def test_on_9_a_whole_return_keep_is_one_slip_and_one_state_change(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    record = next(r for r in store.returns.values() if r.status is ReturnStatus.REQUESTED and len(r.lines) > 1)
    result = carry_out(connector, act_for(record, DecisionKind.KEEP, note=None))
    assert result.status is PushStatus.PUSHED, result.detail
    order = record.order_external_id
    slips = [("credit slip", f"order {order}", f"order detail {line.external_id}") for line in record.lines]
    assert shop.acts_applied() == [*slips, ("return state", f"order return {record.external_id}", "state 5")]


def test_a_rejection_needs_a_note_for_the_customer() -> None:
    assert PrestaShopConnector.decision_problem(DecisionKind.REJECT, None)
    assert PrestaShopConnector.decision_problem(DecisionKind.REJECT, "Worn") is None


# --- the back-office flow -----------------------------------------------------------------------


def hold(key: str = "bol/R1", attempt: int = 1, reference: str | None = None) -> HoldRequest:
    ret = Return(external_id="R1", order_external_id="BOL-9", status=ReturnStatus.REQUESTED,
                 channel_reason="Too small", created_at=datetime(2026, 11, 20, tzinfo=timezone.utc),
                 currency="EUR", customer=Customer(name="Eva Rossi", email="eva@example.com"),
                 lines=(ReturnLine(external_id="L1", sku="SKU-1", ean="8712345678901", title="Rain jacket",
                                   quantity=1, unit_price=9800),))
    return HoldRequest(hold_id=1, key=key, source_channel="bol", source_title="Bol.com", ret=ret, attempt=attempt,
                       requested_at=datetime.now(timezone.utc), reference=reference)


def test_a_held_return_is_one_merchandise_return_on_the_hold_order_that_the_shops_own_pull_leaves_out(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, store = synced
    result = carry_out_hold(connector, hold())
    assert result.status is PushStatus.PUSHED and result.reference
    record = shop.order_return(result.reference)
    assert record["id_order"] == HOLD_ORDER_ID and record["id_customer"] == HOLD_CUSTOMER_ID and record["state"] == 1
    assert record["question"].splitlines() == [
        "Bol.com return R1 (order BOL-9): Too small", "1 x Rain jacket (SKU SKU-1, EAN 8712345678901)",
        "buyer: Eva Rossi, eva@example.com", "(retsync hold bol/R1)"]
    [thread] = [t for t in shop.tables["customer_threads"].values() if t["id_order"] == HOLD_ORDER_ID]
    assert thread["email"] == "marketplace-returns@shop.example.com", "replies never reach the marketplace's buyer"
    [opening] = [m for m in shop.tables["customer_messages"].values() if m["id_customer_thread"] == thread["id"]]
    assert opening["private"] == "1" and "(retsync hold bol/R1)" in opening["message"]
    assert not applied(shop, "create", "orders"), "no order is created: an order POST would be a paid sale"
    assert store.run(connector) == [], "the held return is neither a return nor a sale of the shop"
    assert str(HOLD_ORDER_ID) not in store.orders and result.reference not in store.returns
    assert shop.held_returns() == {"bol/R1": result.reference}


def test_a_hold_whose_answer_was_lost_is_found_on_the_retry_not_made_twice(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, _ = synced
    shop.lose_answer("POST", "/api/order_returns")
    first = carry_out_hold(connector, hold())
    assert first.status is PushStatus.RETRY and first.reference is None
    again = carry_out_hold(connector, hold(attempt=2))
    assert again.status is PushStatus.PUSHED
    assert len(applied(shop, "create", "order_returns")) == 1 and len(applied(shop, "create", "customer_threads")) == 1
    assert shop.held_returns() == {"bol/R1": again.reference}
    third = carry_out_hold(connector, hold(attempt=3, reference=again.reference))
    assert third.reference == again.reference and len(applied(shop, "create", "customer_messages")) == 1


def test_holding_needs_a_hold_order_and_prestashop_9(shop: PrestaShopEmulator, make_connector: Make) -> None:
    unset = carry_out_hold(make_connector(shop, hold_order_id=None), hold())
    assert unset.status is PushStatus.FAILED and "hold_order_id" in (unset.detail or "")
    missing = carry_out_hold(make_connector(shop, hold_order_id="999999"), hold())
    assert missing.status is PushStatus.FAILED and "999999" in (missing.detail or "")
    old = carry_out_hold(make_connector(PrestaShopEmulator(seed=11, version="8.1.7")), hold())
    assert old.status is PushStatus.FAILED and "PrestaShop 9" in (old.detail or "")
    assert not applied(shop, "create")


def test_a_decision_taken_on_the_held_return_is_read_back_with_the_merchants_reply(
        synced: tuple[PrestaShopConnector, InMemoryStore], shop: PrestaShopEmulator) -> None:
    connector, _ = synced
    accepted, rejected = carry_out_hold(connector, hold("bol/R1")), carry_out_hold(connector, hold("bol/R2"))
    waiting = carry_out_hold(connector, hold("bol/R3"))
    assert accepted.reference and rejected.reference and waiting.reference
    shop.panel_decide(accepted.reference, "accept")
    shop.panel_decide(rejected.reference, "reject", note="Worn and washed")
    decided = connector.held_decisions([accepted.reference, rejected.reference, waiting.reference])
    assert set(decided) == {accepted.reference, rejected.reference}
    assert decided[accepted.reference].kind is DecisionKind.ACCEPT and decided[accepted.reference].shop_status == "2"
    assert decided[accepted.reference].note == "decided in the shop (return state 2 Waiting for package)"
    assert decided[rejected.reference].kind is DecisionKind.REJECT
    assert decided[rejected.reference].note == "Worn and washed"


def test_the_shop_refuses_an_order_post_without_a_real_cart(shop: PrestaShopEmulator, make_connector: Make) -> None:
    """Why held returns are not orders: the webservice creates orders through validateOrder with a cart."""
    client = make_connector(shop).client
    with pytest.raises(ApiError) as refused:
        client.create("orders", {"id_cart": "0", "module": "ps_checkpayment", "id_customer": "41"})
    assert refused.value.status_code == 400 and "id_cart" in refused.value.message


# --- PrestaShop 9 Admin API -----------------------------------------------------------------------


def test_where_the_admin_api_is_configured_a_state_is_one_patch(shop: PrestaShopEmulator, make_connector: Make) -> None:
    from retsync_connectors.prestashop.emulator import SANDBOX_ADMIN_CLIENT, SANDBOX_ADMIN_SECRET

    connector = make_connector(shop, admin_api_client_id=SANDBOX_ADMIN_CLIENT,
                               admin_api_client_secret=SANDBOX_ADMIN_SECRET)
    store = InMemoryStore()
    store.run(connector)
    record = open_return(store)
    result = carry_out(connector, act_for(record, DecisionKind.REJECT, note="Past the 30 days"))
    assert result.status is PushStatus.PUSHED, result.detail
    assert applied(shop, "state") == [{"kind": "state", "order_return": int(record.external_id), "from": 1, "to": 4,
                                       "via": "admin-api"}]
    assert not [r for r in shop.requests if r.method == "PUT"]
    token = next(r for r in shop.requests if r.path == "/admin-api/access_token")
    assert "order_return_write" in token.body and "grant_type=client_credentials" in token.body
    patch = next(r for r in shop.requests if r.method == "PATCH")
    assert patch.body == {"orderReturnStateId": 4} and patch.headers["authorization"].startswith("Bearer ")


def test_the_admin_api_refusing_a_state_is_a_clear_failure(shop: PrestaShopEmulator, make_connector: Make) -> None:
    from retsync_connectors.prestashop.emulator import SANDBOX_ADMIN_CLIENT, SANDBOX_ADMIN_SECRET

    connector = make_connector(shop, admin_api_client_id=SANDBOX_ADMIN_CLIENT,
                               admin_api_client_secret=SANDBOX_ADMIN_SECRET, accept_state="42")
    store = InMemoryStore()
    store.run(connector)
    result = carry_out(connector, act_for(open_return(store), DecisionKind.ACCEPT))
    assert result.status is PushStatus.FAILED
    assert "HTTP 422: orderReturnStateId: This value is not valid." in (result.detail or "")


def test_admin_api_id_and_secret_go_together() -> None:
    from pydantic import ValidationError

    from retsync_connectors.prestashop.connector import PrestaShopSettings
    with pytest.raises(ValidationError, match="go together"):
        PrestaShopSettings(connector="prestashop", base_url="https://x", api_key="k" * 32, admin_api_client_id="c")
