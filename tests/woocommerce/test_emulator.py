"""The WooCommerce sandbox speaks as the notes say: paging headers, error bodies, auth, refund rules, and speed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from retsync.kit.contract import Runtime
from retsync.testing.memory import InMemoryStore
from retsync_connectors.woocommerce.connector import WooCommerceConnector, WooCommerceSettings
from retsync_connectors.woocommerce.emulator import PREFIX, SANDBOX_KEY, SANDBOX_SECRET, WooCommerceEmulator


@pytest.fixture
def shop() -> WooCommerceEmulator:
    return WooCommerceEmulator(seed=5)


@pytest.fixture
def api(shop: WooCommerceEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://shop.example.com" + PREFIX, transport=shop.transport(),
                      auth=(SANDBOX_KEY, SANDBOX_SECRET)) as client:
        yield client


def test_the_same_seed_gives_the_same_shop() -> None:
    first, second = WooCommerceEmulator(seed=3), WooCommerceEmulator(seed=3)
    strip = lambda e: [(o["id"], o["status"], o["total"], len(o["meta_data"])) for o in e.orders.values()]  # noqa: E731
    assert strip(first) == strip(second)
    assert strip(first) != strip(WooCommerceEmulator(seed=4))


def test_paging_headers_and_link(api: httpx.Client, shop: WooCommerceEmulator) -> None:
    response = api.get("/orders", params={"per_page": 100, "page": 2})
    visible = len(shop.truth()["orders"])
    assert response.headers["X-WP-Total"] == str(visible)
    assert response.headers["X-WP-TotalPages"] == str(-(-visible // 100))
    assert 'rel="prev"' in response.headers["Link"] and 'rel="next"' in response.headers["Link"]
    assert len(response.json()) == 100
    assert len(api.get("/orders").json()) == 10, "WordPress's default page size"


@pytest.mark.parametrize("params, code", [
    ({"per_page": 101}, "rest_invalid_param"),
    ({"orderby": "price"}, "rest_invalid_param"),
    ({"page": 99, "per_page": 100}, "rest_post_invalid_page_number"),
    ({"modified_after": "last tuesday"}, "rest_invalid_param"),
])
def test_bad_list_parameters_get_wordpress_error_bodies(api: httpx.Client, params: dict, code: str) -> None:
    response = api.get("/orders", params=params)
    body = response.json()
    assert response.status_code == 400 and body["code"] == code and body["data"]["status"] == 400
    assert body["message"]


def test_modified_after_in_gmt_lists_only_later_changes_oldest_first(api: httpx.Client,
                                                                     shop: WooCommerceEmulator) -> None:
    modified = sorted(o["date_modified_gmt"] for o in shop.orders.values() if o["status"] != "trash")
    middle = modified[len(modified) // 2]
    body = api.get("/orders", params={"modified_after": middle, "dates_are_gmt": "true", "orderby": "modified",
                                      "order": "asc", "per_page": 100}).json()
    seen = [o["date_modified_gmt"] for o in body]
    assert seen == sorted(seen) and all(value > middle for value in seen)


def test_include_with_modified_after_lists_only_the_named_orders_changed_since(api: httpx.Client,
                                                                               shop: WooCommerceEmulator) -> None:
    modified = sorted((o["date_modified_gmt"], o["id"]) for o in shop.orders.values() if o["status"] != "trash")
    middle = modified[len(modified) // 2][0]
    older, newer = modified[0][1], modified[-1][1]
    named = {"include": f"{older},{newer},1", "per_page": 100}
    assert sorted(o["id"] for o in api.get("/orders", params=named).json()) == sorted([older, newer])
    since = api.get("/orders", params={**named, "modified_after": middle, "dates_are_gmt": "true"}).json()
    assert [o["id"] for o in since] == [newer]


def test_refunds_after_a_date_are_the_later_ones_oldest_first_and_a_deleted_one_is_gone(
        api: httpx.Client, shop: WooCommerceEmulator) -> None:
    every = sorted((r["date_created_gmt"], r["id"], order_id) for order_id, refunds in shop.refunds.items()
                   for r in refunds)
    middle = every[len(every) // 2][0]
    later = [(r[1], r[2]) for r in every if r[0] > middle]
    params = {"after": middle, "dates_are_gmt": "true", "order": "asc", "per_page": 100}
    assert [(r["id"], r["parent_id"]) for r in api.get("/refunds", params=params).json()] == later
    newest = api.get("/refunds", params={**params, "order": "desc"}).json()
    assert [(r["id"], r["parent_id"]) for r in newest] == later[::-1]
    order = next(o for o in shop.orders.values() if o["status"] == "completed" and not o["refunds"])
    refund_id = shop.refund_in_admin(order["id"], amount="1.00")
    assert api.get("/refunds", params=params).json()[-1]["id"] == refund_id, "a new refund is listed last"
    with shop.lock:  # the manager deletes it in wp-admin
        shop.refunds[order["id"]] = []
    assert refund_id not in [r["id"] for r in api.get("/refunds", params=params).json()]


@pytest.mark.parametrize("auth, message", [
    (None, "Sorry, you cannot list resources."),
    (("ck_other", SANDBOX_SECRET), "Consumer key is invalid."),
    ((SANDBOX_KEY, "cs_other"), "Consumer secret is invalid."),
])
def test_keys_are_checked(shop: WooCommerceEmulator, auth: tuple[str, str] | None, message: str) -> None:
    with httpx.Client(base_url="https://shop.example.com" + PREFIX, transport=shop.transport(), auth=auth) as client:
        response = client.get("/orders")
    assert response.status_code == 401 and response.json()["message"] == message


def test_keys_in_the_query_string_work_too(shop: WooCommerceEmulator) -> None:
    with httpx.Client(base_url="https://shop.example.com" + PREFIX, transport=shop.transport()) as client:
        response = client.get("/orders", params={"consumer_key": SANDBOX_KEY, "consumer_secret": SANDBOX_SECRET})
    assert response.status_code == 200


def test_unknown_routes_say_rest_no_route(api: httpx.Client) -> None:
    response = api.get("/returns")
    assert response.status_code == 404 and response.json()["code"] == "rest_no_route"


def test_refunds_follow_core_rules(api: httpx.Client, shop: WooCommerceEmulator) -> None:
    order = next(o for o in shop.orders.values() if o["status"] == "completed" and not o["refunds"])
    item = order["line_items"][0]
    negative = api.post(f"/orders/{order['id']}/refunds", json={"amount": "-1.00"})
    assert negative.status_code == 400 and negative.json()["code"] == "woocommerce_rest_invalid_order_refund"
    too_much = api.post(f"/orders/{order['id']}/refunds", json={"amount": "100000.00"})
    assert too_much.status_code == 500 and too_much.json()["message"] == "Invalid refund amount."
    created = api.post(f"/orders/{order['id']}/refunds", json={
        "reason": "RMA 1", "api_refund": "yes", "line_items": [
            {"id": item["id"], "quantity": 1, "refund_total": 10, "refund_tax": [{"id": 1, "refund_total": 2.1}]}]})
    assert created.status_code == 201
    refund = created.json()
    assert refund["amount"] == "12.10" and refund["refunded_payment"] is True, "a non-boolean api_refund means true"
    assert refund["line_items"][0]["quantity"] == -1 and refund["line_items"][0]["total"] == "-10.00"
    listed = api.get(f"/orders/{order['id']}").json()
    assert listed["refunds"][0] == {"id": refund["id"], "reason": "RMA 1", "total": "-12.10"}
    assert listed["date_modified_gmt"] > order["date_created_gmt"]
    assert shop.acts_applied() == [("refund", str(order["id"]), str(item["id"]))], "named by item, not refund id"
    everywhere = api.get("/refunds", params={"per_page": 100}).json()
    assert any(r["id"] == refund["id"] and r["parent_id"] == order["id"] for r in everywhere)
    missing = api.post("/orders/1/refunds", json={"amount": "1.00"})
    assert missing.status_code == 404 and missing.json()["code"] == "woocommerce_rest_invalid_order_id"


def test_notes_and_statuses(api: httpx.Client, shop: WooCommerceEmulator) -> None:
    order_id = next(o["id"] for o in shop.orders.values() if o["status"] == "return-requested")
    assert api.post(f"/orders/{order_id}/notes", json={}).json()["code"] == "rest_missing_callback_param"
    api.post(f"/orders/{order_id}/notes", json={"note": "Label sent", "customer_note": True})
    assert api.get(f"/orders/{order_id}/notes", params={"type": "customer"}).json()[0]["note"] == "Label sent"
    assert api.put(f"/orders/{order_id}", json={"status": "nonsense"}).json()["code"] == "rest_invalid_param"
    updated = api.put(f"/orders/{order_id}", json={"status": "return-approved",
                                                   "meta_data": [{"key": "x", "value": 1}]}).json()
    assert updated["status"] == "return-approved" and {"key": "x"}.items() <= updated["meta_data"][-1].items()
    assert [e["kind"] for e in shop.applied] == ["note", "status"]
    assert shop.acts_applied() == [("note", str(order_id), "Label sent"), ("status", str(order_id), "return-approved")]


def test_a_refund_made_twice_shows_twice_in_the_acts_applied(api: httpx.Client, shop: WooCommerceEmulator) -> None:
    order = next(o for o in shop.orders.values() if o["status"] == "completed" and not o["refunds"]
                 and len([i for i in o["line_items"] if i["quantity"] >= 2]) >= 2)
    first, second = [item for item in order["line_items"] if item["quantity"] >= 2][:2]
    body = {"line_items": [{"id": item["id"], "quantity": 1, "refund_total": 1} for item in (first, second)]}
    for _ in range(2):
        assert api.post(f"/orders/{order['id']}/refunds", json=body).status_code == 201
    once = [("refund", str(order["id"]), str(first["id"])), ("refund", str(order["id"]), str(second["id"]))]
    assert shop.acts_applied() == once * 2


def test_the_contract_sandbox_holds_an_open_return_of_several_lines() -> None:
    """The contract suite decides a whole return on the seed-7 shop; it must have one of two lines or more,
    requested within the default 90 days of backfill."""
    shop = WooCommerceConnector.sandbox(seed=7)
    recent = (shop.now - timedelta(days=89)).replace(tzinfo=None).isoformat()
    assert any(o["status"] == "return-requested" and not o["refunds"] and o["date_modified_gmt"] > recent
               and len(next((m["value"] for m in o["meta_data"] if m["key"] == "wps_rma_request_made"), {})) >= 2
               for o in shop.orders.values())


def test_a_big_shop_is_walked_completely(tmp_path: Path) -> None:
    """Speed is measured by the benchmarks (bench/); here only that a big sandbox is served whole."""
    shop = WooCommerceEmulator(seed=2, n_orders=5_000)
    shop.log_requests = False
    settings = WooCommerceSettings(connector="woocommerce", base_url="https://shop.example.com",
                                   consumer_key=SANDBOX_KEY, consumer_secret=SANDBOX_SECRET)
    connector = WooCommerceConnector("big", settings, Runtime(state_dir=tmp_path, transport=shop.transport()))
    store = InMemoryStore()
    store.run(connector)
    connector.close()
    assert set(store.returns) == shop.truth()["returns"] and len(store.returns) > 1_000


def test_the_sandbox_serves_on_loopback_for_the_demo(shop: WooCommerceEmulator, tmp_path: Path,
                                                    make_connector: Callable[..., WooCommerceConnector]) -> None:
    with shop.serve() as base_url:
        table = WooCommerceConnector.sandbox_channel(base_url)
        settings = WooCommerceConnector.settings_model(**table)
        connector = WooCommerceConnector("demo", settings, Runtime(state_dir=tmp_path))
        store = InMemoryStore()
        try:
            store.run(connector)
        finally:
            connector.close()
    assert set(store.returns) == shop.truth()["returns"]
