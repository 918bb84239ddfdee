"""Every kind of answer the sandbox gives validates against Channable's own OpenAPI file (the returns tag) for
that path, method and status, read from the contract folder (`retsync.testing.specs.spec_file`), never copied.

Object schemas are checked strictly (no undeclared fields), so a misspelt field in the sandbox fails here instead
of teaching the connector a field Channable never sends. The sandbox's return `data` (a free object in the schema)
is checked against the typed anonymized shape the contract documents, plus the PII fields of its example.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from retsync.testing.specs import spec_file, strict
from retsync_connectors.channable.emulator import SANDBOX_TOKEN, ChannableEmulator
from retsync_connectors.channable.sandbox_data import COMPANY_ID, PROJECT_ID

V1 = "/v1/companies/{company_id}/projects/{project_id}"
BASE = f"/v1/companies/{COMPANY_ID}/projects/{PROJECT_ID}"
URI = "urn:channable:returns"


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(strict(copy.deepcopy(document)), default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(URI, resource)

    def errors(self, instance: Any, ref: str) -> list[str]:
        validator = OAS31Validator({"$ref": URI + ref}, registry=self.registry, format_checker=oas31_format_checker)
        return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
                for error in validator.iter_errors(instance)]

    def check(self, response: httpx.Response, path: str, method: str) -> Any:
        declared = self.document["paths"][path][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in declared, f"{method} {path} answered {status}; the spec declares {sorted(declared)}"
        content_type = response.headers.get("content-type", "")
        media = declared[status].get("content", {})
        assert content_type in media, f"{method} {path} {status} answered {content_type}"
        body = response.json()
        problems = self.errors(body, media[content_type]["schema"]["$ref"])
        assert not problems, f"{method} {path} {status}:\n" + "\n".join(problems[:20])
        return body

    def check_data(self, record: dict[str, Any]) -> None:
        """A return's `data` as the anonymized schema types it, with the example's PII fields beside."""
        example = self.document["components"]["schemas"]["SingleEfferentReturn"]["example"]["return"]["data"]
        data = copy.deepcopy(record["data"])
        pii = {"address": set(example["address"]) | {"email"}, "customer": set(example["customer"])}
        for part, allowed in pii.items():
            typed = set(self.document["components"]["schemas"][f"AnonymizedEfferentReturnData{part.title()}"]
                        ["properties"])
            assert set(data[part]) <= allowed, f"{part} has fields the contract does not show: {set(data[part]) - allowed}"
            data[part] = {key: value for key, value in data[part].items() if key in typed}
        assert set(data["item"]) <= set(example["item"]), set(data["item"]) - set(example["item"])
        data["item"] = {key: value for key, value in data["item"].items() if key != "comment"}
        problems = self.errors(data, "#/components/schemas/AnonymizedEfferentReturnData")
        assert not problems, "\n".join(problems[:20])


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec(yaml.safe_load(spec_file("channable", "channable-returns-api-openapi.yml").read_text()))


@pytest.fixture
def emu() -> ChannableEmulator:
    return ChannableEmulator(seed=21)


@pytest.fixture
def api(emu: ChannableEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://api.channable.com", transport=emu.transport(),
                      headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}) as client:
        yield client


def test_the_strict_check_catches_a_misspelt_field(spec: Spec, emu: ChannableEmulator) -> None:
    record = copy.deepcopy(next(iter(emu.returns.values())))
    assert spec.errors({"return": record}, "#/components/schemas/SingleEfferentReturn") == []
    record["channelName"] = record.pop("channel_name")
    assert spec.errors({"return": record}, "#/components/schemas/SingleEfferentReturn")


def test_every_page_of_returns_and_every_return(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    seen = []
    for offset in (0, 100):
        body = spec.check(api.get(f"{BASE}/returns", params={"offset": offset, "limit": 100}), V1 + "/returns", "GET")
        assert body["total"] == len(body["returns"])
        seen += body["returns"]
    assert len(seen) == len(emu.returns) and len({r["id"] for r in seen}) == len(seen)
    assert [r["created"] for r in seen] == sorted((r["created"] for r in seen), reverse=True), "newest first"
    for record in seen:
        spec.check_data(record)
    for record in seen[:5]:
        one = spec.check(api.get(f"{BASE}/returns/{record['id']}"), V1 + "/returns/{return_id}", "GET")
        assert one["return"] == record
    statuses = {r["status"] for r in seen}
    assert statuses == set(spec.document["components"]["schemas"]["ChannableReturnsStatus"]["enum"])


def test_last_modified_after_filters(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    moments = sorted(r["modified"] for r in emu.returns.values())
    middle = moments[len(moments) // 2]
    body = spec.check(api.get(f"{BASE}/returns", params={"last_modified_after": middle}), V1 + "/returns", "GET")
    assert body["returns"] and all(r["modified"] >= middle for r in body["returns"])


@pytest.mark.parametrize("params", [{"limit": 500}, {"offset": -1}, {"last_modified_after": "yesterday"}])
def test_a_bad_query_is_a_validation_error(spec: Spec, api: httpx.Client, params: dict[str, Any]) -> None:
    response = api.get(f"{BASE}/returns", params=params)
    assert response.status_code == 422
    spec.check(response, V1 + "/returns", "GET")


def test_status_changes_and_their_conflicts(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    path = V1 + "/returns/{return_id}/status"
    record = next(r for r in emu.returns.values() if r["status"] == "new")
    url = f"{BASE}/returns/{record['id']}/status"
    done = spec.check(api.post(url, json={"status": "accepted"}), path, "POST")
    assert done["status"] == "success"
    again = api.post(url, json={"status": "accepted"})
    assert again.status_code == 409 and "already has status accepted" in spec.check(again, path, "POST")["message"]
    other = api.post(url, json={"status": "rejected"})
    assert other.status_code == 409 and "cannot be changed" in spec.check(other, path, "POST")["message"]
    for bad in ({"status": "new"}, {"status": "refunded"}, {}):
        wrong = api.post(url, json=bad)
        assert wrong.status_code == 422
        spec.check(wrong, path, "POST")
    assert emu.acts_applied() == [("accepted", str(record["id"]))]


def test_a_test_return(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    path = V1 + "/returns/test"
    made = spec.check(api.post(f"{BASE}/returns/test", json={"order_id": next(iter(emu.orders))}), path, "POST")
    number = int(made["data"][0]["id"])
    assert emu.returns[number]["data"]["meta"]["is_test_return"] is True
    spec.check(api.get(f"{BASE}/returns/{number}"), V1 + "/returns/{return_id}", "GET")
    unknown = api.post(f"{BASE}/returns/test", json={"order_id": 1})
    assert unknown.status_code == 404
    spec.check(unknown, path, "POST")
    bad = api.post(f"{BASE}/returns/test", json={"order_id": "x"})
    assert bad.status_code == 422
    spec.check(bad, path, "POST")


def test_odd_and_poisoned_returns_keep_the_envelope(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    emu.add_odd_return()
    emu.add_poison_return("postcode")
    body = api.get(f"{BASE}/returns", params={"limit": 2}).json()
    for record in body["returns"]:
        record = dict(record, status="new")  # the odd one's status is one Channable has not added yet
        assert spec.errors({"return": record}, "#/components/schemas/SingleEfferentReturn") == []


def test_errors_are_channable_error_responses(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    unauthorized = api.get(f"{BASE}/returns", headers={"Authorization": "Bearer revoked"})
    other_company = api.get("/v1/companies/1/projects/10001/returns")
    for response, status in ((unauthorized, 401), (other_company, 403)):
        assert response.status_code == status
        assert spec.errors(response.json(), "#/components/schemas/ChannableErrorResponse") == []


def test_the_leaky_bucket_answers_429_past_the_burst(spec: Spec, api: httpx.Client, emu: ChannableEmulator) -> None:
    emu.burst, emu.leak_per_second = 5, 0.001
    answers = [api.get(f"{BASE}/returns/{next(iter(emu.returns))}").status_code for _ in range(7)]
    assert answers == [200] * 5 + [429] * 2
    limited = api.get(f"{BASE}/returns")
    assert spec.errors(limited.json(), "#/components/schemas/ChannableErrorResponse") == []
    emu.leak_per_second = 1e6
    assert api.get(f"{BASE}/returns").status_code == 200, "the bucket drains"


def test_an_order_as_the_notes_describe_it(api: httpx.Client, emu: ChannableEmulator) -> None:
    """The orders spec is not among the contract's files: its fields as NOTES.md lists them."""
    number = next(iter(emu.orders))
    body = api.get(f"/v2/companies/{COMPANY_ID}/projects/{PROJECT_ID}/orders/{number}").json()
    assert set(body) == {"order", "events"}
    order = body["order"]
    assert set(order) <= {"id", "channel_name", "platform_name", "project_id", "order_config_id", "platform_id",
                          "channel_id", "channel_id_internal", "status_paid", "status_shipped", "error",
                          "error_reason", "obfuscated", "created", "modified", "retrieved_at", "data",
                          "fulfillments", "attachments"}
    assert set(order["data"]) <= {"billing", "shipping", "price", "customer", "products", "extra", "delivery_request"}
    fields = {"id", "price", "quantity", "shipping", "ean", "article_number", "reference_code", "title",
              "delivery_period", "discount", "commission", "price_tax", "shipping_tax", "gift_message", "platform_id",
              "channel_id", "channel_product_id", "channel_stock_level", "channable_order_item_id"}
    assert all(set(product) <= fields for product in order["data"]["products"])
    assert order["status_paid"] in ("not_paid", "paid", "cancelled", "manual", "cancellation_request")
    assert api.get(f"/v2/companies/{COMPANY_ID}/projects/{PROJECT_ID}/orders/1").status_code == 404
    listed = api.get(f"/v2/companies/{COMPANY_ID}/projects/{PROJECT_ID}/orders", params={"limit": 100}).json()
    assert set(listed) == {"total", "error_count", "orders"} and listed["total"] == len(listed["orders"]) == len(emu.orders)
