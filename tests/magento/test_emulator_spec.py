"""The sandbox answers by Magento's own Admin REST schema 2.4.9 (not by what the connector expects), and what the
connector sends follows the schema's request bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.magento.client import error_text
from retsync_connectors.magento.emulator import SANDBOX_PASSWORD, SANDBOX_USERNAME, MagentoEmulator
from retsync_connectors.magento.sandbox_data import rma_status

from .spec import body_schema, problems, response_schema

ROOT = "https://shop.example.com/rest/default"


def call(emulator: MagentoEmulator, method: str, path: str, **options: Any) -> httpx.Response:
    token = emulator.issue_token(60)
    with httpx.Client(transport=emulator.transport(), base_url=ROOT,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        return client.request(method, path, **options)


def check(emulator: MagentoEmulator, method: str, path: str, spec_path: str, status: int = 200,
          **options: Any) -> Any:
    answer = call(emulator, method, path, **options)
    assert answer.status_code == status, answer.text
    found = problems(answer.json(), response_schema(spec_path, method, status))
    assert not found, f"{method} {path}:\n" + "\n".join(found[:20])
    return answer.json()


def everything(field: str = "entity_id") -> dict[str, str]:
    return {"searchCriteria[pageSize]": "300", "searchCriteria[sortOrders][0][field]": field}


def test_lists_follow_the_schema() -> None:
    emulator = MagentoEmulator(seed=4)
    emulator.add_odd_return()
    rmas = check(emulator, "GET", "/V1/returns", "/V1/returns", params=everything())
    assert rmas["total_count"] == len(emulator.rmas) and {r["status"] for r in rmas["items"]} >= {"pending", "closed"}
    check(emulator, "GET", "/V1/orders", "/V1/orders", params=everything())
    check(emulator, "GET", "/V1/creditmemos", "/V1/creditmemos", params=everything())
    check(emulator, "GET", "/V1/returns/100", "/V1/returns/{id}")
    check(emulator, "GET", "/V1/returns/100/comments", "/V1/returns/{id}/comments")
    check(emulator, "GET", "/V1/orders/1000/comments", "/V1/orders/{id}/comments")
    for code in ("reason", "condition", "resolution"):
        check(emulator, "GET", f"/V1/returnsAttributeMetadata/{code}", "/V1/returnsAttributeMetadata/{attributeCode}")


def test_the_admin_token_follows_the_schema() -> None:
    emulator = MagentoEmulator(seed=4)
    body = {"username": SANDBOX_USERNAME, "password": SANDBOX_PASSWORD}
    assert not problems(body, body_schema("/V1/integration/admin/token", "POST"))
    token = check(emulator, "POST", "/V1/integration/admin/token", "/V1/integration/admin/token", json=body)
    assert isinstance(token, str) and token in emulator.tokens
    check(emulator, "POST", "/V1/integration/admin/token", "/V1/integration/admin/token", status=401,
          json={**body, "password": "guess"})


def test_every_write_the_connector_makes_follows_the_schema(make_connector: Any) -> None:
    """The bodies of the connector's requests, and the sandbox's answers to them, against the schema."""
    emulator = MagentoEmulator(seed=4)
    connector = make_connector(emulator)
    store = InMemoryStore()
    store.run(connector)
    from retsync.kit.model import DecisionKind

    received = next(r for r in store.returns.values()
                    if {i["status"] for i in emulator.rmas[int(r.external_id)]["items"]} == {"received"})
    assert carry_out(connector, act_for(received, DecisionKind.ACCEPT)).status.value == "pushed"
    pending = next(r for r in store.returns.values()
                   if {i["status"] for i in emulator.rmas[int(r.external_id)]["items"]} == {"pending"})
    assert carry_out(connector, act_for(pending, DecisionKind.KEEP)).status.value == "pushed"
    specs = {("PUT", "returns/"): "/V1/returns/{id}", ("POST", "/comments"): "/V1/returns/{id}/comments",
             ("POST", "/refund"): "/V1/order/{orderId}/refund"}
    seen = set()
    for request in emulator.requests:
        if request.method == "GET" or "token" in request.path:
            continue
        spec_path = next(v for (method, part), v in specs.items() if request.method == method and part in request.path)
        seen.add(spec_path)
        found = problems(request.body, body_schema(spec_path, request.method))
        assert not found, f"{request.method} {request.path}:\n" + "\n".join(found[:20])
    assert seen == set(specs.values())


def test_answers_to_writes_follow_the_schema() -> None:
    emulator = MagentoEmulator(seed=4)
    rma = next(r for r in emulator.rmas.values() if {i["status"] for i in r["items"]} == {"received"})
    items = [{**item, "status": "approved", "qty_approved": item["qty_requested"]} for item in rma["items"]]
    saved = check(emulator, "PUT", f"/V1/returns/{rma['entity_id']}", "/V1/returns/{id}",
                  json={"rmaDataObject": {**rma, "items": items}})
    assert saved["status"] == "processed_closed"
    order = emulator.orders[rma["order_id"]]
    assert isinstance(check(emulator, "POST", f"/V1/order/{order['entity_id']}/refund", "/V1/order/{orderId}/refund",
                            json={"items": [{"order_item_id": order["items"][0]["item_id"], "qty": 1}]}), int)
    assert check(emulator, "POST", "/V1/returns/101/comments", "/V1/returns/{id}/comments",
                 json={"data": {"comment": "hello"}}) is True
    hold = {**rma, "entity_id": 0, "increment_id": "", "items": [{**rma["items"][0], "entity_id": 0}],
            "comments": [], "tracks": []}
    assert not problems({"rmaDataObject": hold}, body_schema("/V1/returns", "POST"))
    check(emulator, "POST", "/V1/returns", "/V1/returns", json={"rmaDataObject": hold})


@pytest.mark.parametrize("method, path, options, status, spec_path, words", [
    ("GET", "/V1/returns/77", {}, 404, "/V1/returns/{id}", "No such entity with entity_id = 77"),
    ("GET", "/V1/returns", {"params": {"searchCriteria[pageSize]": "100000"}}, 400, "/V1/returns",
     "Maximum value for pageSize is 300"),
    ("PUT", "/V1/returns/104", {"json": {}}, 400, "/V1/returns/{id}", '"rmaDataObject" is required'),
    ("POST", "/V1/order/1000/refund", {"json": {"items": []}}, 400, "/V1/order/{orderId}/refund",
     "without products"),
    ("GET", "/V1/unknown", {}, 404, "/V1/returns/{id}", "Request does not match any route."),
], ids=["no-such-rma", "page-size", "no-rma-object", "no-products", "no-route"])
def test_errors_come_as_error_responses(method: str, path: str, options: dict[str, Any], status: int,
                                        spec_path: str, words: str) -> None:
    emulator = MagentoEmulator(seed=4)
    answer = call(emulator, method, path, **options)
    assert answer.status_code == status
    assert not problems(answer.json(), response_schema(spec_path, method, status))
    assert words in (error_text(answer.json()) or "")


def test_a_closed_rma_is_refused_and_an_unknown_token_too() -> None:
    emulator = MagentoEmulator(seed=4)
    closed = next(r for r in emulator.rmas.values() if r["status"] == "closed")
    answer = call(emulator, "PUT", f"/V1/returns/{closed['entity_id']}", json={"rmaDataObject": closed})
    assert answer.status_code == 400 and "closed" in answer.json()["message"]
    with httpx.Client(transport=emulator.transport(), base_url=ROOT) as client:
        refused = client.get("/V1/returns", headers={"Authorization": "Bearer guess"})
    assert refused.status_code == 401 and not problems(refused.json(), response_schema("/V1/returns", "GET", 401))


def test_searchcriteria_filters_sort_and_repeat_the_last_page() -> None:
    emulator = MagentoEmulator(seed=4)
    base = {"searchCriteria[filterGroups][0][filters][0][field]": "status",
            "searchCriteria[filterGroups][0][filters][0][value]": "pending,authorized",
            "searchCriteria[filterGroups][0][filters][0][conditionType]": "in",
            "searchCriteria[sortOrders][0][field]": "date_requested",
            "searchCriteria[sortOrders][0][direction]": "DESC", "searchCriteria[pageSize]": "5"}
    first = call(emulator, "GET", "/V1/returns", params={**base, "searchCriteria[currentPage]": "1"}).json()
    wanted = [r for r in emulator.rmas.values() if r["status"] in ("pending", "authorized")]
    assert first["total_count"] == len(wanted) > 5
    dates = [r["date_requested"] for r in first["items"]]
    assert dates == sorted(dates, reverse=True) and dates[0] == max(r["date_requested"] for r in wanted)
    last = -(-len(wanted) // 5)
    at_end = call(emulator, "GET", "/V1/returns", params={**base, "searchCriteria[currentPage]": str(last)}).json()
    past = call(emulator, "GET", "/V1/returns", params={**base, "searchCriteria[currentPage]": str(last + 3)}).json()
    assert past["items"] == at_end["items"] and past["items"], "a page past the end repeats the last page"


def test_the_rma_status_follows_its_items() -> None:
    assert rma_status(["pending", "pending"]) == "pending"
    assert rma_status(["authorized", "authorized"]) == "authorized"
    assert rma_status(["authorized", "pending"]) == "partially_authorized"
    assert rma_status(["denied"]) == "closed"
    assert rma_status(["received", "authorized"]) == "received_on_item"
    assert rma_status(["approved", "denied"]) == "processed_closed"
    assert rma_status(["approved", "received"]) == "received_on_item"
    assert rma_status(["rejected", "denied"]) == "closed"
    assert rma_status(["approved", "rejected"]) == "processed_closed"


def test_open_source_has_no_rma_routes() -> None:
    emulator = MagentoEmulator(seed=4, edition="open_source")
    assert call(emulator, "GET", "/V1/returnsAttributeMetadata/reason").status_code == 404
    assert call(emulator, "GET", "/V1/returns").status_code == 404
    check(emulator, "GET", "/V1/creditmemos", "/V1/creditmemos", params=everything())
