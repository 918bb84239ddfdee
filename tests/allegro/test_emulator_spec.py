"""Every kind of answer the Allegro emulator gives validates against Allegro's own OpenAPI spec (`spec.yaml`).

Object schemas are checked strictly (no undeclared fields), so a misspelt
field in the emulator fails here instead of teaching the connector a field
Allegro never sends. The status, the media type and the body must all be
what the spec declares for that path and method.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from retsync.testing.specs import spec_file, strict
from retsync_connectors.allegro.client import BETA, PUBLIC
from retsync_connectors.allegro.emulator import AllegroEmulator

URI = "urn:allegro:spec"


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(strict(copy.deepcopy(document)), default_specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(URI, resource)

    def errors(self, instance: Any, ref: str) -> list[str]:
        validator = OAS30Validator({"$ref": URI + ref}, registry=self.registry, format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
                for error in validator.iter_errors(instance)]

    def check(self, response: httpx.Response, path: str, method: str) -> Any:
        declared = self.document["paths"][path][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in declared, f"{method} {path} answered {status}; the spec declares {sorted(declared)}"
        media = declared[status].get("content")
        if not media:
            return None
        content_type = response.headers.get("content-type", "")
        assert content_type in media, f"{method} {path} {status} answered {content_type}; the spec declares {sorted(media)}"
        body = response.json()
        ref = _pointer("paths", path, method.lower(), "responses", status, "content", content_type, "schema")
        problems = self.errors(body, ref)
        assert not problems, f"{method} {path} {status}:\n" + "\n".join(problems[:20])
        return body


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec(_load_yaml(spec_file("allegro", "spec.yaml")))


@pytest.fixture
def emu() -> AllegroEmulator:
    return AllegroEmulator(seed=11, n_returns=300)


@pytest.fixture
def api(emu: AllegroEmulator) -> Iterator[httpx.Client]:
    token = emu.issue_token(300)
    with httpx.Client(base_url="https://api.allegro.pl", transport=emu.transport(),
                      headers={"Authorization": f"Bearer {token}", "Accept": PUBLIC}) as client:
        yield client


def beta(**extra: str) -> dict[str, str]:
    return {"Accept": BETA, **extra}


def test_the_strict_check_catches_a_misspelt_field(spec: Spec) -> None:
    good = {"id": "a", "createdAt": "2026-01-11T09:36:57.000Z", "status": "CREATED"}
    assert spec.errors({"count": 1, "customerReturns": [good]}, "#/components/schemas/CustomerReturnResponse") == []
    assert spec.errors({"count": 1, "customerReturns": [dict(good, isFulfilment=True)]},
                       "#/components/schemas/CustomerReturnResponse")
    assert spec.errors({"count": 1, "customerReturns": [dict(good, createdAt="11-01-2026")]},
                       "#/components/schemas/CustomerReturnResponse")


def test_customer_returns_list_and_detail(spec: Spec, api: httpx.Client, emu: AllegroEmulator) -> None:
    listing = spec.check(api.get("/order/customer-returns", params={"limit": 1000}, headers=beta()),
                         "/order/customer-returns", "GET")
    returns = listing["customerReturns"]
    assert listing["count"] == len(returns) == len(emu.truth()["returns"])
    statuses = {entry["status"] for entry in returns}
    assert {"CREATED", "DELIVERED", "FINISHED", "REJECTED"} <= statuses, statuses
    assert any(entry["isFulfillment"] for entry in returns) and any("refund" in entry for entry in returns)
    assert any("rejection" in entry for entry in returns) and any("parcels" not in entry for entry in returns)
    for entry in returns[::25]:
        detail = spec.check(api.get(f"/order/customer-returns/{entry['id']}", headers=beta()),
                            "/order/customer-returns/{customerReturnId}", "GET")
        assert detail == entry
    some = [entry["id"] for entry in returns[:3]]
    by_id = spec.check(api.get("/order/customer-returns", params=[("customerReturnId", i) for i in some],
                               headers=beta()), "/order/customer-returns", "GET")
    assert [entry["id"] for entry in by_id["customerReturns"]] == some


def test_checkout_forms(spec: Spec, api: httpx.Client, emu: AllegroEmulator) -> None:
    for order_id in sorted(emu.truth()["orders"])[:20]:
        form = spec.check(api.get(f"/order/checkout-forms/{order_id}"), "/order/checkout-forms/{id}", "GET")
        assert form["id"] == order_id
    spec.check(api.get("/order/checkout-forms/00000000-0000-4000-8000-000000000000"), "/order/checkout-forms/{id}",
               "GET")


def _refund_body(emu: AllegroEmulator, return_id: str, command: str) -> dict[str, Any]:
    entry = emu.return_entry(return_id)
    form = emu.checkout_form(entry["orderId"])
    line = next(line for line in form["lineItems"] if line["offer"]["id"] == entry["items"][0]["offerId"])
    return {"payment": {"id": form["payment"]["id"]}, "order": {"id": form["id"]}, "commandId": command,
            "reason": "REFUND", "lineItems": [{"id": line["id"], "type": "QUANTITY", "quantity": line["quantity"]}]}


def post(api: httpx.Client, path: str, body: Any, media: str = PUBLIC) -> httpx.Response:
    return api.post(path, content=json.dumps(body), headers={"Content-Type": media, "Accept": media})


def test_a_refund_its_listing_and_a_refused_second_one(spec: Spec, api: httpx.Client, emu: AllegroEmulator) -> None:
    return_id = emu.open_return_ids()[0]
    body = _refund_body(emu, return_id, "3b8f0b8e-5d2c-4e51-9a43-0c1e2f3a4b5c")
    refund = spec.check(post(api, "/payments/refunds", body), "/payments/refunds", "POST")
    assert refund["status"] == "SUCCESS" and refund["order"]["id"] == body["order"]["id"]
    assert spec.check(post(api, "/payments/refunds", body), "/payments/refunds", "POST")["id"] == refund["id"]
    listed = spec.check(api.get("/payments/refunds", params={"order.id": body["order"]["id"]}), "/payments/refunds",
                        "GET")
    assert [r["id"] for r in listed["refunds"]] == [refund["id"]]
    again = post(api, "/payments/refunds", dict(body, commandId="9c1d2e3f-0000-4000-8000-000000000001"))
    assert again.status_code == 422
    spec.check(again, "/payments/refunds", "POST")
    spec.check(post(api, "/payments/refunds", {"commandId": "x"}), "/payments/refunds", "POST")
    spec.check(post(api, "/payments/refunds", dict(body, order={"id": "00000000-0000-4000-8000-000000000000"},
                                                   commandId="9c1d2e3f-0000-4000-8000-000000000002")),
               "/payments/refunds", "POST")


def test_a_rejection_and_a_second_one(spec: Spec, api: httpx.Client, emu: AllegroEmulator) -> None:
    return_id = emu.open_return_ids()[0]
    path = f"/order/customer-returns/{return_id}/rejection"
    rejected = spec.check(post(api, path, {"rejection": {"code": "REFUND_REJECTED", "reason": "Ślady użytkowania."}},
                               BETA), "/order/customer-returns/{customerReturnId}/rejection", "POST")
    assert rejected["status"] == "REJECTED" and rejected["rejection"]["code"] == "REFUND_REJECTED"
    twice = post(api, path, {"rejection": {"code": "ITEM_FIXED"}}, BETA)
    assert twice.status_code == 422
    spec.check(twice, "/order/customer-returns/{customerReturnId}/rejection", "POST")
    no_reason = post(api, f"/order/customer-returns/{emu.open_return_ids()[0]}/rejection",
                     {"rejection": {"code": "REFUND_REJECTED"}}, BETA)
    assert no_reason.status_code == 400
    spec.check(no_reason, "/order/customer-returns/{customerReturnId}/rejection", "POST")


def test_commission_refund_claims(spec: Spec, api: httpx.Client, emu: AllegroEmulator) -> None:
    body = _refund_body(emu, emu.open_return_ids()[0], "unused")
    line = body["lineItems"][0]
    created = spec.check(post(api, "/order/refund-claims", {"lineItem": {"id": line["id"]}, "quantity": 1}),
                         "/order/refund-claims", "POST")
    claim = spec.check(api.get(f"/order/refund-claims/{created['id']}"), "/order/refund-claims/{claimId}", "GET")
    assert claim["lineItem"]["id"] == line["id"] and claim["status"] == "IN_PROGRESS"
    listed = spec.check(api.get("/order/refund-claims", params={"lineItem.offer.id": claim["lineItem"]["offer"]["id"]}),
                        "/order/refund-claims", "GET")
    assert [c["id"] for c in listed["refundClaims"]] == [created["id"]]
    duplicate = post(api, "/order/refund-claims", {"lineItem": {"id": line["id"]}, "quantity": 1})
    assert duplicate.status_code == 422
    spec.check(duplicate, "/order/refund-claims", "POST")


def test_gateway_refusals(spec: Spec, emu: AllegroEmulator) -> None:
    token = {"Authorization": f"Bearer {emu.issue_token(300)}"}
    with httpx.Client(base_url="https://api.allegro.pl", transport=emu.transport()) as client:
        no_token = client.get("/order/customer-returns", headers=beta())
        public_on_beta = client.get("/order/customer-returns", headers={**token, "Accept": PUBLIC})
        bad_limit = client.get("/order/customer-returns", params={"limit": 5000}, headers={**token, **beta()})
        unknown = client.get("/order/customer-returns/nope", headers={**token, **beta()})
    assert (no_token.status_code, public_on_beta.status_code, bad_limit.status_code, unknown.status_code) == (
        401, 406, 400, 404)
    for response in (no_token, public_on_beta, bad_limit):
        spec.check(response, "/order/customer-returns", "GET")
    spec.check(unknown, "/order/customer-returns/{customerReturnId}", "GET")
    assert "errors" in public_on_beta.json() and "error" in no_token.json()


def _load_yaml(path: Path) -> Any:
    """libyaml's loader when the wheel has it: the official spec is 1.4 MB."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)
