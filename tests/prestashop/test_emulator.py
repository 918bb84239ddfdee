"""The PrestaShop sandbox speaks as the notes say: JSON/XML output, list options, error bodies, XML input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from retsync.testing.specs import spec_file
from retsync_connectors.prestashop.client import xml_body
from retsync_connectors.prestashop.emulator import SANDBOX_KEY, PrestaShopEmulator

JSON = {"output_format": "JSON"}


@pytest.fixture
def shop() -> PrestaShopEmulator:
    return PrestaShopEmulator(seed=5)


@pytest.fixture
def api(shop: PrestaShopEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://shop.example.com/api", transport=shop.transport(),
                      auth=(SANDBOX_KEY, "")) as client:
        yield client


def test_the_same_seed_gives_the_same_shop() -> None:
    def strip(e: PrestaShopEmulator) -> list:
        return [(o["id"], o["current_state"], o["total_paid"]) for o in e.tables["orders"].values()] + \
            [(r["id"], r["state"]) for r in e.tables["order_returns"].values()]
    assert strip(PrestaShopEmulator(seed=3)) == strip(PrestaShopEmulator(seed=3))
    assert strip(PrestaShopEmulator(seed=3)) != strip(PrestaShopEmulator(seed=4))


def test_the_stock_return_states_are_the_installed_ones(shop: PrestaShopEmulator) -> None:
    """Ids are the insertion order of install-dev's data file; names its English translations."""
    from xml.etree import ElementTree

    from retsync_connectors.prestashop.emulator import RETURN_STATES
    from retsync_connectors.prestashop.mapping import STOCK_RETURN_STATES, STOCK_STATE_NAMES

    data = ElementTree.parse(spec_file("prestashop", "install-dev/data/xml/order_return_state.xml")).getroot()
    langs = ElementTree.parse(spec_file("prestashop", "install-dev/langs/en/data/order_return_state.xml")).getroot()
    names = {node.get("id"): node.findtext("name") for node in langs}
    installed = {str(n): names[node.get("id")] for n, node in enumerate(data.iter("order_return_state"), start=1)}
    assert installed == STOCK_STATE_NAMES == {str(k): v for k, v in RETURN_STATES.items() if k <= 5}
    assert set(STOCK_RETURN_STATES) == set(installed)
    assert {r["state"] for r in shop.tables["order_returns"].values()} <= set(RETURN_STATES)


def test_list_shapes_ids_only_full_and_chosen_fields(api: httpx.Client) -> None:
    ids = api.get("/orders", params={**JSON, "limit": "0,3"}).json()
    assert ids == {"orders": [{"id": 1}, {"id": 2}, {"id": 3}]}
    chosen = api.get("/orders", params={**JSON, "limit": "2", "display": "[id,current_state]"}).json()["orders"]
    assert [set(o) for o in chosen] == [{"id", "current_state"}] * 2
    full = api.get("/order_returns", params={**JSON, "display": "full", "limit": "0,1"}).json()["order_returns"][0]
    assert set(full) == {"id", "id_customer", "id_order", "question", "state", "date_add", "date_upd"}
    single = api.get("/order_slip/1", params=JSON).json()
    assert set(single) == {"order_slip"} and "order_slip_details" in single["order_slip"]["associations"]


def test_an_empty_list_is_a_bare_array(api: httpx.Client) -> None:
    response = api.get("/orders", params={**JSON, "filter[id]": "[999999]"})
    assert response.status_code == 200 and response.json() == []


def test_filters_or_interval_and_dates_need_date_1(api: httpx.Client, shop: PrestaShopEmulator) -> None:
    either = api.get("/orders", params={**JSON, "filter[id]": "[2|5]"}).json()["orders"]
    assert [o["id"] for o in either] == [2, 5]
    between = api.get("/orders", params={**JSON, "filter[id]": "[3,6]"}).json()["orders"]
    assert [o["id"] for o in between] == [3, 4, 5, 6]
    refused = api.get("/orders", params={**JSON, "filter[date_upd]": "[2026-01-01 00:00:00,2100-01-01 00:00:00]"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == 32, "no date filter without date=1"
    assert "This filter does not exist" in refused.json()["errors"][0]["message"]
    dates = sorted(o["date_upd"] for o in shop.tables["orders"].values())
    middle = dates[len(dates) // 2]
    body = api.get("/orders", params={**JSON, "display": "full", "date": "1", "sort": "[date_upd_ASC,id_ASC]",
                                      "filter[date_upd]": f"[{middle},2100-01-01 00:00:00]", "limit": "0,500"}).json()
    seen = [o["date_upd"] for o in body["orders"]]
    assert seen == sorted(seen) and all(value >= middle for value in seen) and len(seen) >= len(dates) // 2


def test_offset_paging_has_no_total(api: httpx.Client) -> None:
    first = api.get("/orders", params={**JSON, "limit": "0,100"})
    second = api.get("/orders", params={**JSON, "limit": "100,100"})
    assert len(first.json()["orders"]) == 100 and len(second.json()["orders"]) == 81, "180 sales + the hold order"
    assert not {"x-total-count", "x-wp-total"} & set(first.headers)


@pytest.mark.parametrize("auth, code, message", [
    (None, 16, "Please enter the authentication key as the login. No password required"),
    (("", ""), 17, "Authentication key is empty"),
    (("SHORTKEY", ""), 18, "Invalid authentication key format"),
    (("WRONGKEY" * 4, ""), 20, "Authentification key is not active"),
])
def test_the_key_is_checked_with_prestashop_error_bodies(shop: PrestaShopEmulator, auth: tuple[str, str] | None,
                                                         code: int, message: str) -> None:
    with httpx.Client(base_url="https://shop.example.com/api", transport=shop.transport(), auth=auth) as client:
        response = client.get("/orders", params=JSON)
    assert response.status_code == 401 and response.json() == {"errors": [{"code": code, "message": message}]}
    assert response.headers["www-authenticate"].startswith('Basic realm="Welcome to PrestaShop Webservice')


def test_xml_by_default_json_when_asked(api: httpx.Client) -> None:
    xml = api.get("/orders/1")
    assert xml.headers["content-type"].startswith("text/xml") and b"<prestashop><order>" in xml.content
    error = api.get("/nothing")
    assert error.status_code == 400 and b"<errors><error><code>27</code>" in error.content
    assert api.get("/orders/1", headers={"Output-Format": "JSON"}).json()["order"]["id"] == 1


def test_order_returns_exist_only_from_9() -> None:
    shop = PrestaShopEmulator(seed=5, version="8.1.7")
    with httpx.Client(base_url="https://x/api", transport=shop.transport(), auth=(SANDBOX_KEY, "")) as client:
        response = client.get("/order_returns", params=JSON)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == 27
    assert 'Resource of type "order_returns" does not exists' in response.json()["errors"][0]["message"]


def test_a_put_replaces_the_whole_return_and_checks_it(api: httpx.Client, shop: PrestaShopEmulator) -> None:
    partial = api.put("/order_returns/1", params=JSON, content=xml_body("order_returns", {"id": 1, "state": 2}))
    assert partial.status_code == 400 and "id_customer" in partial.json()["errors"][0]["message"]
    record = shop.order_return(1)
    full = {"id": 1, "id_customer": record["id_customer"], "id_order": record["id_order"], "question": "q",
            "state": 4}
    assert api.put("/order_returns/1", params=JSON, content=xml_body("order_returns", full)).json()[
        "order_return"]["state"] == 4
    as_json = api.put("/order_returns/1", params=JSON, content=json.dumps({"order_return": full}).encode(),
                      headers={"Content-Type": "application/json"})
    assert as_json.status_code == 500 and as_json.json()["errors"][0]["code"] == 127, "the webservice reads XML only"
    assert as_json.json()["errors"][0]["message"].startswith("XML error : ")
    assert shop.order_return(1)["state"] == 4 and len(shop.applied) == 1


def test_a_slip_cannot_refund_more_than_was_bought(api: httpx.Client, shop: PrestaShopEmulator) -> None:
    order = shop.order(1)
    detail = next(d for d in shop.tables["order_details"].values() if d["id_order"] == 1)
    body = {"id_customer": order["id_customer"], "id_order": 1, "conversion_rate": "1", "total_products_tax_excl":
            "1", "total_products_tax_incl": "1", "total_shipping_tax_excl": "0", "total_shipping_tax_incl": "0",
            "associations": {"order_slip_details": [{"id_order_detail": detail["id"],
                                                     "product_quantity": int(detail["product_quantity"]) + 1}]}}
    response = api.post("/order_slip", params=JSON, content=xml_body("order_slip", body))
    assert response.status_code == 400 and "Cannot refund" in response.json()["errors"][0]["message"]
    assert not shop.applied


def test_hooks_for_the_shared_suites(shop: PrestaShopEmulator) -> None:
    odd = shop.add_odd_return()
    assert shop.order_return(odd)["state"] == 6 and shop.order_return(odd)["question"] == ""
    assert shop.held_returns() == {}


@pytest.mark.parametrize("value, expected", [
    ("%[Jansen]%", {"Jansen", "de Jansen-Meyer"}), ("[jan]%", {"Jansen"}), ("%[meyer]", {"de Jansen-Meyer"}),
])
def test_begins_ends_and_contains_filters(api: httpx.Client, shop: PrestaShopEmulator, value: str,
                                          expected: set[str]) -> None:
    shop.tables["customers"] = {1: {"id": 1, "lastname": "Jansen"}, 2: {"id": 2, "lastname": "de Jansen-Meyer"},
                                3: {"id": 3, "lastname": "Rossi"}}
    body = api.get("/customers", params={**JSON, "display": "full", "filter[lastname]": value}).json()
    assert {c["lastname"] for c in body["customers"]} == expected


def test_an_order_post_needs_a_real_cart_and_payment_module(api: httpx.Client) -> None:
    """`Order::addWs` runs the cart through the payment module's validateOrder."""
    unknown = api.post("/orders", params=JSON, content=xml_body("orders", {"id_cart": "0", "module": "retsync"}))
    no_cart = api.post("/orders", params=JSON, content=xml_body("orders", {"id_cart": "9",
                                                                            "module": "ps_checkpayment"}))
    assert unknown.status_code == 500 and "payment module" in unknown.json()["errors"][0]["message"]
    assert no_cart.status_code == 400 and "id_cart" in no_cart.json()["errors"][0]["message"]


def test_a_merchandise_return_is_created_only_on_an_order_of_its_customer(api: httpx.Client,
                                                                          shop: PrestaShopEmulator) -> None:
    order = shop.order(1)
    wrong = api.post("/order_returns", params=JSON, content=xml_body("order_returns", {
        "id_customer": str(order["id_customer"] + 1), "id_order": "1", "question": "x", "state": "1"}))
    assert wrong.status_code == 400 and "id_customer" in wrong.json()["errors"][0]["message"]
    made = api.post("/order_returns", params=JSON, content=xml_body("order_returns", {
        "id_customer": str(order["id_customer"]), "id_order": "1", "question": "x", "state": "1"}))
    assert made.status_code == 201 and made.json()["order_return"]["state"] == 1
