"""Every kind of answer the emulator gives validates against bol's own OpenAPI spec for that path, method and status.

Object schemas are checked strictly (no undeclared fields), so a misspelt
field name in the emulator fails here instead of teaching the connector a
field bol never sends.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from retsync.testing.specs import spec_file, strict
from retsync_connectors.bol.emulator import MEDIA_TYPE, BolEmulator

from .conftest import bearer


def _load(name: str) -> dict[str, Any]:
    return json.loads(spec_file("bol-retailer", name).read_text(encoding="utf-8"))


class Spec:
    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.uri = f"urn:bol:{name}"
        self.document = document
        resource = Resource.from_contents(strict(copy.deepcopy(document)), default_specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(self.uri, resource)

    def errors(self, instance: Any, ref: str) -> list[str]:
        validator = OAS30Validator({"$ref": self.uri + ref}, registry=self.registry, format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
                for error in validator.iter_errors(instance)]

    def check(self, response: httpx.Response, path: str, method: str) -> Any:
        """Validate against the schema the spec declares for this path, method, status and content type."""
        content_type = response.headers.get("content-type", "")
        declared = self.document["paths"][path][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in declared, f"{method} {path} answered {status}; the spec declares {sorted(declared)}"
        media = declared[status].get("content", {})
        assert content_type in media, f"{method} {path} {status} answered {content_type}; the spec declares {sorted(media)}"
        body = response.json()
        problems = self.errors(body, media[content_type]["schema"]["$ref"])
        assert not problems, f"{method} {path} {status}:\n" + "\n".join(problems[:20])
        return body


@pytest.fixture(scope="module")
def retailer() -> Spec:
    return Spec("retailer", _load("retailer.json"))


@pytest.fixture(scope="module")
def shared() -> Spec:
    return Spec("shared", _load("shared.json"))


@pytest.fixture
def emu() -> BolEmulator:
    return BolEmulator(seed=21, n_returns=400)


@pytest.fixture
def api(emu: BolEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport(), headers=bearer(emu)) as client:
        yield client


def put_handling(api: httpx.Client, rma_id: str, body: Any) -> httpx.Response:
    return api.put(f"/retailer/returns/{rma_id}", content=json.dumps(body), headers={"content-type": MEDIA_TYPE})


def test_the_strict_check_catches_a_misspelt_field(retailer: Spec) -> None:
    entry = {"returnId": "1", "registrationDateTime": "2016-11-14T11:06:48.423+01:00", "fulfilmentMethod": "FBR",
             "returnItems": []}
    assert retailer.errors({"returns": [entry]}, "#/components/schemas/ReturnsResponse") == []
    assert retailer.errors({"returns": [dict(entry, returnID="1")]}, "#/components/schemas/ReturnsResponse")
    assert retailer.errors({"returns": [dict(entry, registrationDateTime="14-11-2016")]},
                           "#/components/schemas/ReturnsResponse")


@pytest.mark.parametrize("method", ["FBR", "FBB"])
@pytest.mark.parametrize("handled", ["true", "false"])
def test_return_lists_and_details(retailer: Spec, api: httpx.Client, method: str, handled: str) -> None:
    listing = retailer.check(
        api.get("/retailer/returns", params={"handled": handled, "fulfilment-method": method}), "/retailer/returns", "GET"
    )
    assert listing["returns"], "precondition: the list has entries to check"
    assert {entry["fulfilmentMethod"] for entry in listing["returns"]} == {method}
    for entry in listing["returns"][:10]:
        detail = retailer.check(api.get(f"/retailer/returns/{entry['returnId']}"), "/retailer/returns/{return-id}", "GET")
        assert [item["rmaId"] for item in detail["returnItems"]] == [item["rmaId"] for item in entry["returnItems"]]
        assert all(item["handled"] is (handled == "true") for item in entry["returnItems"])


def test_the_variety_a_connector_must_read_is_in_the_data(api: httpx.Client) -> None:
    items = []
    for method in ("FBR", "FBB"):
        for handled in ("true", "false"):
            for entry in api.get("/retailer/returns", params={"handled": handled, "fulfilment-method": method}).json()["returns"]:
                items.extend(api.get(f"/retailer/returns/{entry['returnId']}").json()["returnItems"])
    handlings = {result["handlingResult"] for item in items for result in item["processingResults"]}
    assert {"RETURN_RECEIVED", "RETURN_DOES_NOT_MEET_CONDITIONS"} <= handlings
    assert handlings - {"RETURN_RECEIVED", "EXCHANGE_PRODUCT", "RETURN_DOES_NOT_MEET_CONDITIONS", "REPAIR_PRODUCT",
                        "CUSTOMER_KEEPS_PRODUCT_PAID", "STILL_APPROVED"}, "values bol uses beyond the PUT enum"
    assert any("trackAndTrace" in item for item in items) and any("trackAndTrace" not in item for item in items)
    assert any("detailedReason" in item["returnReason"] for item in items)
    assert any("detailedReason" not in item["returnReason"] for item in items)


def test_an_order(retailer: Spec, api: httpx.Client, emu: BolEmulator) -> None:
    for order_id in sorted(emu.truth()["orders"])[:20]:
        order = retailer.check(api.get(f"/retailer/orders/{order_id}"), "/retailer/orders/{order-id}", "GET")
        assert order["orderId"] == order_id


def test_the_order_list(retailer: Spec, api: httpx.Client) -> None:
    shipped = retailer.check(api.get("/retailer/orders", params={"status": "ALL", "fulfilment-method": "ALL"}),
                             "/retailer/orders", "GET")
    assert len(shipped["orders"]) == 50
    assert retailer.check(api.get("/retailer/orders"), "/retailer/orders", "GET") == {"orders": []}


def test_a_handling_and_its_process_status(retailer: Spec, shared: Spec, api: httpx.Client, emu: BolEmulator) -> None:
    entry = api.get("/retailer/returns", params={"handled": "false", "fulfilment-method": "FBR"}).json()["returns"][0]
    rma_id = entry["returnItems"][0]["rmaId"]

    accepted = retailer.check(put_handling(api, rma_id, {"handlingResult": "RETURN_RECEIVED", "quantityReturned": 1}),
                              "/retailer/returns/{rma-id}", "PUT")
    assert (accepted["status"], accepted["eventType"], accepted["entityId"]) == ("PENDING", "HANDLE_RETURN_ITEM", rma_id)
    done = shared.check(api.get(f"/shared/process-status/{accepted['processStatusId']}"),
                        "/shared/process-status/{process-status-id}", "GET")
    assert done["status"] == "SUCCESS"
    retailer.check(api.get(f"/retailer/returns/{entry['returnId']}"), "/retailer/returns/{return-id}", "GET")


def test_the_process_statuses_of_an_item(shared: Spec, api: httpx.Client) -> None:
    entry = api.get("/retailer/returns", params={"handled": "false", "fulfilment-method": "FBR"}).json()["returns"][0]
    rma_id = entry["returnItems"][0]["rmaId"]
    put_handling(api, rma_id, {"handlingResult": "RETURN_RECEIVED", "quantityReturned": 1})
    put_handling(api, rma_id, {"handlingResult": "RETURN_RECEIVED", "quantityReturned": 1})

    listing = shared.check(api.get("/shared/process-status", params={"entity-id": rma_id, "event-type": "HANDLE_RETURN_ITEM"}),
                           "/shared/process-status", "GET")
    assert len(listing["processStatuses"]) == 2 and {p["entityId"] for p in listing["processStatuses"]} == {rma_id}
    refused = shared.check(api.get("/shared/process-status", params={"entity-id": rma_id, "event-type": "RETURN"}),
                           "/shared/process-status", "GET")
    assert [violation["name"] for violation in refused["violations"]] == ["event-type"]


def test_a_failed_process_status(shared: Spec, api: httpx.Client) -> None:
    entry = api.get("/retailer/returns", params={"handled": "false", "fulfilment-method": "FBB"}).json()["returns"][0]
    accepted = put_handling(api, entry["returnItems"][0]["rmaId"], {"handlingResult": "RETURN_RECEIVED", "quantityReturned": 1})
    failed = shared.check(api.get(f"/shared/process-status/{accepted.json()['processStatusId']}"),
                          "/shared/process-status/{process-status-id}", "GET")
    assert failed["status"] == "FAILURE" and failed["errorMessage"]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"handlingResult": "PLEASE_REFUND", "quantityReturned": 1}, ["handlingResult"]),
        ({"handlingResult": "RETURN_RECEIVED", "quantityReturned": 0}, ["quantityReturned"]),
        ({"quantityReturned": 10000}, ["handlingResult", "quantityReturned"]),
        ({"handlingResult": "RETURN_RECEIVED", "quantityReturned": 9}, ["quantityReturned"]),
    ],
)
def test_a_refused_handling_is_a_400_problem(retailer: Spec, api: httpx.Client, body: Any, names: list[str]) -> None:
    entry = api.get("/retailer/returns", params={"handled": "false", "fulfilment-method": "FBR"}).json()["returns"][0]
    problem = retailer.check(put_handling(api, entry["returnItems"][0]["rmaId"], body), "/retailer/returns/{rma-id}", "PUT")
    assert problem["status"] == 400
    assert [violation["name"] for violation in problem["violations"]] == names


def test_a_bad_list_query_is_a_400_problem(retailer: Spec, api: httpx.Client) -> None:
    problem = retailer.check(api.get("/retailer/returns", params={"handled": "maybe", "page": "0"}),
                             "/retailer/returns", "GET")
    assert [violation["name"] for violation in problem["violations"]] == ["page", "handled"]


def test_unknown_ids_are_404_problems(retailer: Spec, shared: Spec, api: httpx.Client) -> None:
    retailer.check(api.get("/retailer/returns/99999999999"), "/retailer/returns/{return-id}", "GET")
    retailer.check(api.get("/retailer/orders/123"), "/retailer/orders/{order-id}", "GET")
    shared.check(api.get("/shared/process-status/nope"), "/shared/process-status/{process-status-id}", "GET")


def test_gateway_refusals_are_problem_bodies_too(retailer: Spec, emu: BolEmulator) -> None:
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport()) as client:
        no_token = client.get("/retailer/returns", headers={"Accept": MEDIA_TYPE})
        wrong_accept = client.get("/retailer/returns", headers={**bearer(emu), "Accept": "application/json"})
        wrong_type = client.put("/retailer/returns/60000000", headers=bearer(emu), json={"handlingResult": "RETURN_RECEIVED",
                                                                                        "quantityReturned": 1})
    for response, status in ((no_token, 401), (wrong_accept, 406), (wrong_type, 415)):
        assert response.status_code == status
        assert response.headers["content-type"] == MEDIA_TYPE
        assert retailer.errors(response.json(), "#/components/schemas/Problem") == []
