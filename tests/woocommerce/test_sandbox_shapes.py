"""The WooCommerce sandbox's answers against a table of documented shapes, written from the contract
(`shared/specs/woocommerce/NOTES.md`, the wc/v3 docs and WooCommerce's controllers), not from the connector.

Sources: woocommerce-rest-api-docs `_orders.md`, `_order-refunds.md`, `_order-notes.md`, `_introduction.md`
(paging headers, error body); WooCommerce `WC_REST_Orders_V2_Controller::get_items` (X-WP-Total,
X-WP-TotalPages, a Link header built from the request's own query arguments), `WC_REST_Authentication`
(`woocommerce_rest_authentication_error`: "Consumer key is invalid." / "Consumer secret is invalid." with
HTTP basic auth), `class-wc-rest-order-refunds-controller.php`, `class-wc-rest-refunds-controller.php`
(`parent_id`), WordPress `rest_validate_value_from_schema` ("between 1 (inclusive) and 100 (inclusive)").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from retsync_connectors.woocommerce.emulator import PREFIX, SANDBOX_KEY, SANDBOX_SECRET, WooCommerceEmulator

INT, STR, BOOL, LIST, DICT, FLOAT = int, str, bool, list, dict, float
DATE = "date"
"""ISO 8601 without an offset (`2026-10-04T09:00:00`); the `_gmt` twin in UTC."""
NULLABLE_DATE = "date or null"

ORDER: dict[str, Any] = {
    "id": INT, "parent_id": INT, "number": STR, "order_key": STR, "created_via": STR, "version": STR,
    "status": STR, "currency": STR, "date_created": DATE, "date_created_gmt": DATE, "date_modified": DATE,
    "date_modified_gmt": DATE, "discount_total": STR, "discount_tax": STR, "shipping_total": STR,
    "shipping_tax": STR, "cart_tax": STR, "total": STR, "total_tax": STR, "prices_include_tax": BOOL,
    "customer_id": INT, "customer_ip_address": STR, "customer_user_agent": STR, "customer_note": STR,
    "billing": DICT, "shipping": DICT, "payment_method": STR, "payment_method_title": STR, "transaction_id": STR,
    "date_paid": NULLABLE_DATE, "date_paid_gmt": NULLABLE_DATE, "date_completed": NULLABLE_DATE,
    "date_completed_gmt": NULLABLE_DATE, "cart_hash": STR, "meta_data": LIST, "line_items": LIST,
    "tax_lines": LIST, "shipping_lines": LIST, "fee_lines": LIST, "coupon_lines": LIST, "refunds": LIST,
}
"""_orders.md "Order properties" (money as strings, ids as integers)."""
BILLING = {"first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode", "country",
           "email", "phone"}
SHIPPING = BILLING - {"email"}
"""_orders.md: shipping has no e-mail (newer cores add a phone, as here)."""
LINE_ITEM: dict[str, Any] = {"id": INT, "name": STR, "product_id": INT, "variation_id": INT, "quantity": INT,
                             "tax_class": STR, "subtotal": STR, "subtotal_tax": STR, "total": STR, "total_tax": STR,
                             "taxes": LIST, "meta_data": LIST, "sku": STR, "price": (INT, FLOAT)}
ORDER_REFUND = {"id": INT, "reason": STR, "total": STR}
"""An order's `refunds[]`: the total negative (`"-12.10"`)."""
REFUND: dict[str, Any] = {"id": INT, "date_created": DATE, "date_created_gmt": DATE, "amount": STR, "reason": STR,
                          "refunded_by": INT, "refunded_payment": BOOL, "meta_data": LIST, "line_items": LIST}
"""_order-refunds.md; line item quantities and totals negative; `parent_id` only on `GET /refunds`."""
NOTE: dict[str, Any] = {"id": INT, "author": STR, "date_created": DATE, "date_created_gmt": DATE, "note": STR,
                        "customer_note": BOOL}
"""_order-notes.md."""
META = {"id": INT, "key": STR}
STATUSES = {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
            "checkout-draft", "return-requested", "return-approved", "return-cancelled"}
"""Stock statuses and WP Swings' (`wc-` prefix stripped); other plugins' statuses come verbatim."""
ERRORS: tuple[tuple[str, int, str, str], ...] = (
    ("an unknown route", 404, "rest_no_route", "No route was found matching the URL and request method."),
    ("an unknown order", 404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID."),
    ("a refund of an unknown order", 404, "woocommerce_rest_invalid_order_id", "Invalid order ID."),
    ("a negative refund", 400, "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero."),
    ("per_page over 100", 400, "rest_invalid_param", "Invalid parameter(s): per_page"),
    ("no key", 401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    ("an unknown key", 401, "woocommerce_rest_authentication_error", "Consumer key is invalid."),
    ("a wrong secret", 401, "woocommerce_rest_authentication_error", "Consumer secret is invalid."),
    ("a note without text", 400, "rest_missing_callback_param", "Missing parameter(s): note"),
)
"""`{"code", "message", "data": {"status"}}` (_introduction.md "Errors")."""


def conforms(value: Any, kind: Any) -> bool:
    if kind == DATE:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is None and "T" in value
    if kind == NULLABLE_DATE:
        return value is None or conforms(value, DATE)
    return isinstance(value, kind) and not (kind is INT and isinstance(value, bool))


def mismatches(record: dict[str, Any], table: dict[str, Any]) -> list[str]:
    return [f"{name}={record.get(name)!r}" for name, kind in table.items()
            if name not in record or not conforms(record[name], kind)]


@pytest.fixture
def shop() -> WooCommerceEmulator:
    return WooCommerceEmulator(seed=9)


@pytest.fixture
def api(shop: WooCommerceEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://shop.example.com" + PREFIX, transport=shop.transport(),
                      auth=(SANDBOX_KEY, SANDBOX_SECRET)) as client:
        yield client


def test_orders_have_the_documented_fields_and_types(api: httpx.Client) -> None:
    orders = api.get("/orders", params={"per_page": 100}).json()
    assert orders
    for order in orders:
        assert not mismatches(order, ORDER), order["id"]
        assert set(order["billing"]) == BILLING and SHIPPING <= set(order["shipping"])
        assert all(not mismatches(item, LINE_ITEM) for item in order["line_items"])
        assert all(not mismatches(entry, META) and "value" in entry for entry in order["meta_data"])
        assert all(not mismatches(refund, ORDER_REFUND) and refund["total"].startswith("-")
                   for refund in order["refunds"])
    assert {o["status"] for o in orders} & STATUSES, "stock and WP Swings statuses, verbatim"
    assert any(o["date_paid"] is None for o in orders if o["status"] == "pending"), "unpaid: no date_paid"
    assert all(o["date_completed_gmt"] for o in orders if o["status"] == "completed")


def test_refunds_and_notes_have_the_documented_fields(api: httpx.Client, shop: WooCommerceEmulator) -> None:
    everywhere = api.get("/refunds", params={"per_page": 100}).json()
    assert everywhere and all(not mismatches(r, {**REFUND, "parent_id": INT}) for r in everywhere)
    for refund in everywhere:
        assert all(item["quantity"] < 0 and item["total"].startswith("-") for item in refund["line_items"])
    parent = everywhere[0]["parent_id"]
    own = api.get(f"/orders/{parent}/refunds").json()
    assert own and all(not mismatches(r, REFUND) and "parent_id" not in r for r in own)
    note = api.post(f"/orders/{parent}/notes", json={"note": "Label sent", "customer_note": True}).json()
    assert not mismatches(note, NOTE)
    listed = api.get(f"/orders/{parent}/notes")
    assert listed.json()[0] == note and "X-WP-Total" not in listed.headers, "notes are not paged"


def test_paging_headers_and_a_link_that_keeps_the_query(api: httpx.Client, shop: WooCommerceEmulator) -> None:
    query = {"per_page": 20, "page": 2, "status": "completed", "orderby": "id", "order": "asc"}
    answer = api.get("/orders", params=query)
    completed = sorted(o["id"] for o in shop.orders.values() if o["status"] == "completed")
    assert answer.headers["X-WP-Total"] == str(len(completed))
    assert answer.headers["X-WP-TotalPages"] == str(-(-len(completed) // 20))
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', answer.headers["Link"]))
    assert set(links) == {"prev", "next"}
    following = httpx.URL(links["next"])
    assert dict(following.params) == {**{k: str(v) for k, v in query.items()}, "page": "3"}
    assert [o["id"] for o in api.get(following.path.removeprefix(PREFIX), params=following.params).json()] == \
        completed[40:60], "following the link goes on with the same filter"
    empty = api.get("/orders", params={"status": "return-requested", "include": "1"})
    assert empty.json() == [] and empty.headers["X-WP-Total"] == "0" and empty.headers["X-WP-TotalPages"] == "0"


@pytest.mark.parametrize("what, status, code, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_come_in_wordpress_error_bodies(shop: WooCommerceEmulator, what: str, status: int, code: str,
                                               message: str) -> None:
    auth = {"no key": None, "an unknown key": ("ck_other", SANDBOX_SECRET),
            "a wrong secret": (SANDBOX_KEY, "cs_other")}.get(what, (SANDBOX_KEY, SANDBOX_SECRET))
    order = next(o["id"] for o in shop.orders.values() if o["status"] == "completed")
    with httpx.Client(base_url="https://shop.example.com" + PREFIX, transport=shop.transport(),
                      auth=auth) as client:
        answer = {
            "an unknown route": lambda: client.get("/returns"),
            "an unknown order": lambda: client.get("/orders/1"),
            "a refund of an unknown order": lambda: client.post("/orders/1/refunds", json={"amount": "1.00"}),
            "a negative refund": lambda: client.post(f"/orders/{order}/refunds", json={"amount": "-1.00"}),
            "per_page over 100": lambda: client.get("/orders", params={"per_page": 101}),
            "a note without text": lambda: client.post(f"/orders/{order}/notes", json={}),
        }.get(what, lambda: client.get("/orders"))()
    body = answer.json()
    assert answer.status_code == status and body["code"] == code and body["message"] == message
    assert body["data"]["status"] == status
    if what == "per_page over 100":
        assert body["data"]["params"] == {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}
    assert not shop.applied, "a refused request changes nothing"
