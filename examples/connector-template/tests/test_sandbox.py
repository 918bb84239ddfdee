"""The sandbox answers by the API's contract (api/template-api.json), not by what the connector expects."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from retsync_connector_template.emulator import SANDBOX_API_KEY, TemplateEmulator
from template_api import problems


def call(emulator: TemplateEmulator, method: str, path: str, **options: Any) -> httpx.Response:
    with httpx.Client(transport=emulator.transport(), base_url="https://api.example.com",
                      headers={"X-Api-Key": SANDBOX_API_KEY}) as client:
        return client.request(method, path, **options)


def test_every_answer_follows_the_contract(emulator: TemplateEmulator) -> None:
    returns = call(emulator, "GET", "/v1/returns", params={"per_page": 100}).json()
    assert problems(returns, "ReturnsPage") == []
    ids = ",".join(r["order_id"] for r in returns["returns"][:100] if r.get("order_id"))
    assert problems(call(emulator, "GET", "/v1/orders", params={"ids": ids}).json(), "OrdersPage") == []
    target = next(r for r in returns["returns"] if r["status"] == "requested")
    body = {"key": "k-1", "decision": "refund", "note": None,
            "lines": [{"line_id": line["id"], "quantity": line["quantity"]} for line in target["lines"]]}
    assert problems(body, "DecisionRequest") == []
    decided = call(emulator, "POST", f"/v1/returns/{target['id']}/decisions", json=body)
    assert decided.status_code == 201 and problems(decided.json(), "DecisionAnswer") == []
    listed = call(emulator, "GET", f"/v1/returns/{target['id']}/decisions").json()
    assert problems(listed, "DecisionsPage") == []
    held_body = {"key": "bol/1", "source": "Bol.com", "return": {"external_id": "1", "lines": [
        {"line_id": "1", "sku": None, "title": "Mug", "quantity": 1}]}}
    assert problems(held_body, "HeldReturnRequest") == []
    held = call(emulator, "POST", "/v1/held-returns", json=held_body).json()
    emulator.panel_decide(held["held_return"]["id"], "accept")
    assert problems(call(emulator, "GET", "/v1/held-returns", params={"key": "bol/1"}).json(),
                    "HeldReturnsPage") == []


@pytest.mark.parametrize("method, path, options, status, code", [
    ("GET", "/v1/returns", {"params": {"per_page": 101}}, 400, "invalid_parameter"),
    ("GET", "/v1/orders", {"params": {"ids": ""}}, 400, "invalid_parameter"),
    ("GET", "/v1/returns/R-1/decisions", {}, 404, "return_not_found"),
    ("POST", "/v1/returns/R-20000/decisions", {"json": {"key": "k", "decision": "reject", "lines": []}}, 422,
     "note_required"),
    ("GET", "/v1/unknown", {}, 404, "not_found"),
])
def test_errors_come_in_the_documented_body(emulator: TemplateEmulator, method: str, path: str,
                                            options: dict[str, Any], status: int, code: str) -> None:
    answer = call(emulator, method, path, **options)
    assert answer.status_code == status and problems(answer.json(), "Error") == []
    assert answer.json()["error"]["code"] == code


def test_a_wrong_key_is_refused(emulator: TemplateEmulator) -> None:
    with httpx.Client(transport=emulator.transport(), base_url="https://api.example.com") as client:
        answer = client.get("/v1/returns", headers={"X-Api-Key": "guess"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"


def test_the_same_seed_on_the_same_day_is_the_same_data() -> None:
    assert TemplateEmulator(seed=4).returns == TemplateEmulator(seed=4).returns
    assert TemplateEmulator(seed=4).returns != TemplateEmulator(seed=5).returns


def test_the_seed_holds_open_multi_line_returns_to_decide_on() -> None:
    returns = TemplateEmulator(seed=7).returns.values()
    open_ = [r for r in returns if r["status"] in ("requested", "in_transit", "received")]
    assert len(open_) >= 10 and any(len(r["lines"]) >= 2 for r in open_)
