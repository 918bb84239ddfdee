"""The Shoper sandbox speaks as the notes say: list envelope, filters, error bodies, auth, the leaky bucket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retsync.kit.contract import Runtime
from retsync.testing.memory import InMemoryStore
from retsync_connectors.shoper.connector import ShoperConnector
from retsync_connectors.shoper.emulator import PREFIX, SANDBOX_LOGIN, SANDBOX_PASSWORD, ShoperEmulator
from tests.shoper.conftest import FakeClock


@pytest.fixture
def roomy() -> ShoperEmulator:
    return ShoperEmulator.roomy(seed=5)


def _token(emulator: ShoperEmulator) -> str:
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=emulator.transport()) as client:
        response = client.post("/auth", auth=(SANDBOX_LOGIN, SANDBOX_PASSWORD))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    return str(body["access_token"])


@pytest.fixture
def api(roomy: ShoperEmulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {_token(roomy)}"}
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=roomy.transport(),
                      headers=headers) as client:
        yield client


def test_the_same_seed_gives_the_same_shop() -> None:
    strip = lambda e: [(o["order_id"], o["status_id"], o["sum"]) for o in e.orders.values()]  # noqa: E731
    assert strip(ShoperEmulator(seed=3)) == strip(ShoperEmulator(seed=3))
    assert strip(ShoperEmulator(seed=3)) != strip(ShoperEmulator(seed=4))


def test_lists_come_in_the_envelope_with_a_string_count(api: httpx.Client, roomy: ShoperEmulator) -> None:
    body = api.get("/orders", params={"limit": 50, "page": 2}).json()
    assert set(body) == {"count", "pages", "page", "list"}
    assert body["count"] == str(len(roomy.orders)) and body["pages"] == 5 and body["page"] == 2
    assert len(body["list"]) == 50 and body["list"][0]["order_id"] == "1050", "in id order"
    order = body["list"][0]
    assert all(isinstance(order[k], str) for k in ("order_id", "status_id", "sum", "date", "status_date"))
    assert order["status"]["type"] in ("1", "2", "3", "4") and order["status"]["translations"]["pl_PL"]["name"]
    assert len(api.get("/orders").json()["list"]) == 10, "the default page size"
    statuses = api.get("/statuses", params={"limit": 50}).json()["list"]
    assert {s["status_id"] for s in statuses} >= {"1", "14", "15", "16", "17", "21"}


def test_filters_compare_dates_ids_and_lists(api: httpx.Client, roomy: ShoperEmulator) -> None:
    middle = sorted(o["status_date"] for o in roomy.orders.values())[120]
    since = {"status_date": {">=": middle}}
    body = api.get("/orders", params={"limit": 50, "filters": json.dumps(since)}).json()
    assert int(body["count"]) == 120 and all(o["status_date"] >= middle for o in body["list"])
    picked = api.get("/order-products", params={"limit": 50,
                                                "filters": json.dumps({"order_id": {"in": [1001, 1002]}})}).json()
    assert {p["order_id"] for p in picked["list"]} == {"1001", "1002"}
    exact = api.get("/orders", params={"filters": json.dumps({"status_id": "14"})}).json()
    assert all(o["status_id"] == "14" for o in exact["list"]) and int(exact["count"]) > 0


@pytest.mark.parametrize("params, description", [
    ({"limit": 51}, "limit must be between 1 and 50"),
    ({"filters": "{not json"}, "filters: not a valid JSON object"),
    ({"filters": json.dumps({"colour": "red"})}, "filters: unknown field colour"),
    ({"filters": json.dumps({"status_date": {"~": "x"}})}, "unknown operator"),
])
def test_bad_list_parameters_get_shoper_error_bodies(api: httpx.Client, params: dict, description: str) -> None:
    response = api.get("/orders", params=params)
    body = response.json()
    assert response.status_code == 400 and body["error"] == "invalid_request"
    assert description in body["error_description"]


def test_sign_in_and_tokens_are_checked(roomy: ShoperEmulator) -> None:
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=roomy.transport()) as client:
        wrong = client.post("/auth", auth=(SANDBOX_LOGIN, "nope"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "auth_failure"
        assert client.post("/auth").json()["error"] == "invalid_request"
        unsigned = client.get("/orders")
        assert unsigned.status_code == 401 and unsigned.json()["error_description"]


def test_unknown_routes_and_objects_answer_404_in_shopers_words(api: httpx.Client) -> None:
    assert api.get("/returns").json()["error"] == "invalid_request", "Shoper has no returns resource"
    missing = api.get("/orders/99999")
    assert missing.status_code == 404 and "does not exist" in missing.json()["error_description"]


def test_every_answer_says_how_full_the_bucket_is_and_a_full_one_answers_429() -> None:
    clock = FakeClock()
    shop = ShoperEmulator(seed=5, clock=clock)
    token = _token(shop)
    with httpx.Client(base_url="https://sklep.example.pl" + PREFIX, transport=shop.transport(),
                      headers={"Authorization": f"Bearer {token}"}) as client:
        answers = [client.get("/currencies") for _ in range(10)]
        assert [a.headers["X-Shop-Api-Calls"] for a in answers] == [str(n) for n in range(2, 11)] + ["10"]
        assert all(a.headers["X-Shop-Api-Limit"] == "10" and a.headers["X-Shop-Api-Bandwidth"] == "2"
                   for a in answers)
        assert answers[-1].status_code == 429
        assert answers[-1].headers["Retry-After"] == "1"
        assert answers[-1].json()["error"] == "temporarily_unavailable"
        clock.now += 1  # two calls leak out
        assert client.get("/currencies").status_code == 200


def test_refunds_follow_the_insert_rules(api: httpx.Client, roomy: ShoperEmulator) -> None:
    transaction = next(t for t in roomy.transactions.values()
                       if not any(r["transaction_id"] == t["transaction_id"] for r in roomy.refunds.values()))
    base = {"transaction_id": int(transaction["transaction_id"]), "currency_id": 1, "status": 3}
    assert api.post("/order-refunds", json={**base, "currency_value": 0}).json()["error"] == "invalid_request"
    assert "required" in api.post("/order-refunds", json={"currency_value": 1}).json()["error_description"]
    assert "at most 256" in api.post("/order-refunds", json={**base, "currency_value": 1,
                                                             "comment": "x" * 257}).json()["error_description"]
    too_much = api.post("/order-refunds", json={**base, "currency_value": 1_000_000})
    assert too_much.status_code == 400 and "left to refund" in too_much.json()["error_description"]
    created = api.post("/order-refunds", json={**base, "currency_value": 1.5, "comment": "RMA 1"})
    refund_id = created.json()
    assert created.status_code == 200 and isinstance(refund_id, int)
    listed = api.get(f"/order-refunds/{refund_id}").json()
    assert listed["order_id"] == transaction["order_id"] and listed["currency_value"] == "1.50"
    assert listed["status"] == "3"
    assert api.put(f"/order-refunds/{refund_id}", json={"status": 2}).json() == 1
    assert roomy.applied[-1] == {"kind": "refund_status", "refund": refund_id, "order": int(transaction["order_id"]),
                                 "from": "3", "to": "2"}


def test_acts_applied_name_what_was_acted_on_never_the_new_refunds_id(api: httpx.Client,
                                                                      roomy: ShoperEmulator) -> None:
    """A refund made twice is the same entry twice; a hold's order and products are no decision's effect."""
    transaction = next(t for t in roomy.transactions.values()
                       if not any(r["transaction_id"] == t["transaction_id"] for r in roomy.refunds.values()))
    order_id, body = transaction["order_id"], {"transaction_id": int(transaction["transaction_id"]),
                                               "currency_id": 1, "status": 3, "currency_value": 2.5, "comment": "R"}
    first, second = api.post("/order-refunds", json=body).json(), api.post("/order-refunds", json=body).json()
    assert first != second
    api.put(f"/orders/{order_id}", json={"status_id": "16", "notes_pub": "Przyjęty"})
    api.post("/orders", json={"status_id": "20", "payment_id": "1", "shipping_id": "1"})
    refund = ("refund", f"order {order_id}", f"transaction {transaction['transaction_id']}", "2.50", "R")
    assert roomy.acts_applied() == [refund, refund, ("notes", f"order {order_id}", "notes_pub", "Przyjęty"),
                                    ("status", f"order {order_id}", "16")]


def test_a_status_change_moves_the_status_date(api: httpx.Client, roomy: ShoperEmulator) -> None:
    order = next(o for o in roomy.orders.values() if o["status_id"] == "14")
    before = order["status_date"]
    assert api.put(f"/orders/{order['order_id']}", json={"notes_pub": "Etykieta wysłana"}).json() == 1
    assert order["status_date"] == before, "a note is no status change"
    assert api.put(f"/orders/{order['order_id']}", json={"status_id": "99"}).status_code == 400
    api.put(f"/orders/{order['order_id']}", json={"status_id": "16"})
    assert order["status_id"] == "16" and order["status"]["status_id"] == "16" and order["status_date"] > before
    assert [e["kind"] for e in roomy.applied] == ["notes", "status"]


def test_the_sandbox_serves_on_loopback_for_the_demo(roomy: ShoperEmulator, tmp_path: Path) -> None:
    with roomy.serve() as base_url:
        settings = ShoperConnector.settings_model(**ShoperConnector.sandbox_channel(base_url))
        connector = ShoperConnector("demo", settings, Runtime(state_dir=tmp_path))
        store = InMemoryStore()
        try:
            store.run(connector)
        finally:
            connector.close()
    assert set(store.returns) == roomy.truth()["returns"]
