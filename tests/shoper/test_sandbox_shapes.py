"""The Shoper sandbox's answers against a table of documented shapes, written from the contract
(`shared/specs/shoper/NOTES.md`) and the official SDK generated from Shoper's OpenAPI, not from the connector.

Sources: mkasprz/shoper-sdk-php (mirror of `shoper/sdk`) @ 3374b54b / 1cbc9803: `src/Raw/Types/Order.php`
(string ids, money and dates; `is_*` booleans; `total_products`, `total_parcels` integers; `email`, `payment_id`,
`shipping_id`, `shipping_tax_id`, `status_id` required), `OrderProduct.php` (`order_id`, `pkwiu`, `product_id`,
`quantity` required strings, `ean` a string), `ErrorResponse401Error.php` (`unauthorized_client`, `auth_failure`,
…), `ErrorResponse400Error.php` / `ErrorResponse404Error.php` (`invalid_request`), `ErrorResponse429Error.php`
(`temporarily_unavailable`), `Raw/Aboutpages/Types/ListAboutpagesResponse.php` (the list envelope),
`Raw/OrderRefunds/Requests/OrderRefundInsert.php` (an insert answers the new id); the docs' leaky bucket
(`X-Shop-Api-Limit`, `X-Shop-Api-Bandwidth`, `X-Shop-Api-Calls`, 429 with `Retry-After`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from retsync_connectors.shoper.emulator import PREFIX, SANDBOX_LOGIN, SANDBOX_PASSWORD, ShoperEmulator
from tests.shoper.conftest import FakeClock

STR, INT, BOOL, DICT, LIST = str, int, bool, dict, list
DATE = "YYYY-MM-DD HH:MM:SS"
NULL_OR_DATE = "empty or YYYY-MM-DD HH:MM:SS"

ENVELOPE = {"count": STR, "pages": INT, "page": INT, "list": LIST}
"""`{"count": "123", "pages": 3, "page": 1, "list": [...]}`: the count is a string."""
LISTS = ("orders", "order-products", "order-transactions", "order-refunds", "statuses", "currencies")
ORDER: dict[str, Any] = {
    "order_id": STR, "user_id": STR, "date": DATE, "status_date": DATE, "confirm_date": DATE,
    "delivery_date": NULL_OR_DATE, "status_id": STR, "status": DICT, "sum": STR, "paid": STR, "is_paid": BOOL,
    "is_underpayment": BOOL, "is_overpayment": BOOL, "is_cash_on_delivery": BOOL, "payment_id": STR,
    "shipping_id": STR, "shipping_tax_id": STR, "shipping_cost": STR, "email": STR, "delivery_address": DICT,
    "billing_address": DICT, "pickup_point": STR, "notes": STR, "notes_priv": STR, "notes_pub": STR,
    "origin": STR, "currency_id": STR, "currency_rate": STR, "code": STR, "promo_code": STR,
    "total_products": INT, "total_parcels": INT, "additional_fields": LIST,
}
ORDER_PRODUCT: dict[str, Any] = {"id": STR, "order_id": STR, "product_id": STR, "stock_id": STR, "price": STR,
                                 "discount_perc": STR, "quantity": STR, "name": STR, "code": STR, "pkwiu": STR,
                                 "option": STR, "unit": STR, "unit_fp": STR, "ean": STR}
STATUS: dict[str, Any] = {"status_id": STR, "active": STR, "default": STR, "color": STR, "type": STR,
                          "order": STR, "email_change": STR, "translations": DICT}
STATUS_TYPES = {"1", "2", "3", "4"}
"""1 new, 2 opened, 3 closed, 4 not completed."""
REFUND_STATUSES = {"1", "2", "3", "4"}
"""1 pending, 2 canceled, 3 finished, 4 failed (OrderRefundInsert)."""
ORIGINS = {"0", "1", "2", "3", "4", "5", "6", "8"} | {str(n) for n in range(100, 112)}
BUCKET = ("X-Shop-Api-Limit", "X-Shop-Api-Bandwidth", "X-Shop-Api-Calls")
ERRORS: tuple[tuple[str, int, str], ...] = (
    ("a wrong password at /auth", 401, "auth_failure"),
    ("no basic auth at /auth", 400, "invalid_request"),
    ("a token the shop did not issue", 401, "unauthorized_client"),
    ("an unknown resource", 404, "invalid_request"),
    ("an unknown order", 404, "invalid_request"),
    ("a limit over 50", 400, "invalid_request"),
    ("filters that are not JSON", 400, "invalid_request"),
)
"""`{"error": key, "error_description": text}`."""


def conforms(value: Any, kind: Any) -> bool:
    if kind == DATE:
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value) is not None
    if kind == NULL_OR_DATE:
        return value in ("", None) or conforms(value, DATE)
    return isinstance(value, kind) and not (kind is INT and isinstance(value, bool))


def mismatches(record: dict[str, Any], table: dict[str, Any]) -> list[str]:
    return [f"{name}={record.get(name)!r}" for name, kind in table.items()
            if name not in record or not conforms(record[name], kind)]


def token(shop: ShoperEmulator) -> str:
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=shop.transport()) as client:
        answer = client.post("/auth", auth=(SANDBOX_LOGIN, SANDBOX_PASSWORD))
    assert set(answer.json()) >= {"access_token", "expires_in", "token_type"}
    return str(answer.json()["access_token"])


@pytest.fixture
def shop() -> ShoperEmulator:
    return ShoperEmulator.roomy(seed=8)


@pytest.fixture
def api(shop: ShoperEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=shop.transport(),
                      headers={"Authorization": f"Bearer {token(shop)}"}) as client:
        yield client


@pytest.mark.parametrize("resource", LISTS)
def test_every_list_comes_in_the_envelope_with_the_bucket_headers(api: httpx.Client, resource: str) -> None:
    answer = api.get(f"/{resource}", params={"limit": 50})
    body = answer.json()
    assert answer.status_code == 200 and set(body) == set(ENVELOPE) and not mismatches(body, ENVELOPE)
    assert int(body["count"]) >= len(body["list"]) > 0 and body["page"] == 1
    assert body["pages"] == -(-int(body["count"]) // 50)
    assert all(name in answer.headers for name in BUCKET)
    beyond = api.get(f"/{resource}", params={"limit": 50, "page": body["pages"] + 1}).json()
    assert beyond["list"] == [] and beyond["count"] == body["count"]


def test_orders_products_and_statuses_have_the_sdk_fields_and_types(api: httpx.Client) -> None:
    orders = api.get("/orders", params={"limit": 50}).json()["list"]
    for order in orders:
        assert not mismatches(order, ORDER), order["order_id"]
        assert not mismatches(order["status"], STATUS) and order["status"]["status_id"] == order["status_id"]
        assert order["origin"] in ORIGINS
    products = api.get("/order-products", params={"limit": 50}).json()["list"]
    assert products and all(not mismatches(p, ORDER_PRODUCT) for p in products)
    assert any(p["ean"] for p in products) and any(p["ean"] == "" for p in products), "empty when not linked"
    statuses = api.get("/statuses", params={"limit": 50}).json()["list"]
    assert all(not mismatches(s, STATUS) for s in statuses)
    assert {s["type"] for s in statuses} <= STATUS_TYPES
    assert all(all({"name", "message"} <= set(t) for t in s["translations"].values()) for s in statuses)
    refunds = api.get("/order-refunds", params={"limit": 50}).json()["list"]
    assert refunds and {r["status"] for r in refunds} <= REFUND_STATUSES


def test_an_insert_answers_the_new_id(api: httpx.Client, shop: ShoperEmulator) -> None:
    transaction = next(t for t in shop.transactions.values()
                       if not any(r["transaction_id"] == t["transaction_id"] for r in shop.refunds.values()))
    made = api.post("/order-refunds", json={"transaction_id": int(transaction["transaction_id"]), "currency_id": 1,
                                            "currency_value": 1.0, "status": 1})
    assert made.status_code == 200 and isinstance(made.json(), int)
    assert api.get(f"/order-refunds/{made.json()}").json()["status"] == "1"


@pytest.mark.parametrize("what, status, error", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_come_with_the_sdks_keys(shop: ShoperEmulator, what: str, status: int, error: str) -> None:
    base = "https://sklep.example.pl" + PREFIX
    with httpx.Client(base_url=base, transport=shop.transport()) as bare, \
            httpx.Client(base_url=base, transport=shop.transport(),
                         headers={"Authorization": f"Bearer {token(shop)}"}) as signed:
        answer = {
            "a wrong password at /auth": lambda: bare.post("/auth", auth=(SANDBOX_LOGIN, "nope")),
            "no basic auth at /auth": lambda: bare.post("/auth"),
            "a token the shop did not issue": lambda: bare.get("/orders", headers={"Authorization": "Bearer x"}),
            "an unknown resource": lambda: signed.get("/returns"),
            "an unknown order": lambda: signed.get("/orders/99999"),
            "a limit over 50": lambda: signed.get("/orders", params={"limit": 51}),
            "filters that are not JSON": lambda: signed.get("/orders", params={"filters": "{status_id"}),
        }[what]()
    body = answer.json()
    assert answer.status_code == status and set(body) == {"error", "error_description"}
    assert body["error"] == error and body["error_description"]
    assert not shop.applied


def test_a_full_bucket_answers_429_with_retry_after_and_the_bucket_headers() -> None:
    shop = ShoperEmulator(seed=8, clock=FakeClock())
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=shop.transport(),
                      headers={"Authorization": f"Bearer {token(shop)}"}) as client:
        answers = [client.get("/currencies") for _ in range(shop.bucket_limit)]
    full = answers[-1]
    assert full.status_code == 429 and full.json()["error"] == "temporarily_unavailable"
    assert int(full.headers["Retry-After"]) >= 1 and all(name in full.headers for name in BUCKET)
