"""PrestaShop's answers as its classes shape them (`tests.prestashop.shapes`), checked two ways: the sandbox serves
them, and the connector syncs a shop that answers with them (recorded answers, `tests.prestashop.recorded`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from retsync.app.daemon import Runner
from retsync.config import Config, Settings
from retsync.kit.contract import PushStatus, Runtime
from retsync.kit.model import DecisionKind
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.prestashop.connector import PrestaShopConnector, PrestaShopSettings
from retsync_connectors.prestashop.emulator import SANDBOX_KEY, PrestaShopEmulator
from tests.prestashop.recorded import RecordedShop
from tests.prestashop.shapes import EMPTY_LIST, ERRORS, NODES, ErrorCase, one_object

JSON = {"output_format": "JSON"}
XML = {"Content-Type": "application/xml"}

# --- the sandbox serves what PrestaShop serves ------------------------------------------------


@pytest.fixture
def shop() -> PrestaShopEmulator:
    return PrestaShopEmulator(seed=7)


@pytest.fixture
def api(shop: PrestaShopEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://shop.example.com/api", transport=shop.transport(),
                      auth=(SANDBOX_KEY, "")) as client:
        thread = client.post("/customer_threads", params=JSON, headers=XML, content=(
            b"<prestashop><customer_thread><id_lang>1</id_lang><id_contact>1</id_contact><id_order>2</id_order>"
            b"<email>a@example.com</email><token>abc</token><status>open</status></customer_thread></prestashop>"))
        assert thread.status_code == 201, thread.text
        made = client.post("/customer_messages", params=JSON, headers=XML, content=(
            b"<prestashop><customer_message><id_customer_thread>%d</id_customer_thread><message>Hello</message>"
            b"<private>0</private></customer_message></prestashop>" % thread.json()["customer_thread"]["id"]))
        assert made.status_code == 201, made.text
        yield client


@pytest.mark.parametrize("resource", sorted(NODES))
def test_the_sandbox_names_lists_and_objects_as_the_classes_do(api: httpx.Client, resource: str) -> None:
    node = NODES[resource]
    listed = api.get(f"/{resource}", params={**JSON, "display": "full", "limit": "0,1"}).json()
    assert set(listed) == {node.many}, node.source
    entry = listed[node.many][0]
    single = api.get(f"/{resource}/{entry['id']}", params=JSON)
    assert single.status_code == 200 and single.json() == one_object(resource, entry), (
        f"{node.source}: one object under {node.one!r}, its empty fields left out")
    ids_only = api.get(f"/{resource}", params={**JSON, "limit": "0,1"}).json()
    assert ids_only == {node.many: [{"id": entry["id"]}]}


@pytest.mark.parametrize("resource", sorted(NODES))
def test_a_list_with_no_match_is_a_bare_empty_array(api: httpx.Client, resource: str) -> None:
    answer = api.get(f"/{resource}", params={**JSON, "display": "full", "filter[id]": "[999999]"})
    assert answer.status_code == 200 and answer.json() == EMPTY_LIST


def test_a_list_keeps_empty_fields_one_object_leaves_them_out(api: httpx.Client) -> None:
    """array_filter runs on each top-level value: the list itself (its entries stay whole), or the one object."""
    entry = api.get("/orders", params={**JSON, "display": "full", "filter[id]": "[2]"}).json()["orders"][0]
    assert entry["note"] == "" and entry["gift"] == "0" and entry["total_discounts"] == "0.000000"
    single = api.get("/orders/2", params=JSON).json()["order"]
    assert "note" not in single and "gift" not in single, "empty fields are left out of one object"
    assert single["total_discounts"] == "0.000000", '"0.000000" is not empty to PHP'
    assert single["associations"]["order_rows"], "associations stay"
    xml = api.get("/orders/2")
    assert b"<note" in xml.content, "XML output keeps every field"


def _ask(case: ErrorCase, shop: PrestaShopEmulator, api: httpx.Client) -> httpx.Response:
    """The request that meets each case of the table."""
    keyed = {"no key": None, "an empty key": ("", ""), "a key not 32 characters long": ("SHORTKEY", ""),
             "a key the shop does not have": ("K" * 32, "")}
    if case.what in keyed:
        with httpx.Client(base_url="https://shop.example.com/api", transport=shop.transport(),
                          auth=keyed[case.what]) as client:
            return client.get("/orders", params=JSON)
    ret = shop.order_return(1)
    whole = (f"<id_customer>{ret['id_customer']}</id_customer><id_order>{ret['id_order']}</id_order>"
             f"<question>q</question><state>2</state>")
    requests: dict[str, Callable[[], httpx.Response]] = {
        "an unknown resource": lambda: api.get("/nothing", params=JSON),
        "a filter on an unknown field": lambda: api.get("/orders", params={**JSON, "filter[nothing]": "[1]"}),
        "a date filter without date=1": lambda: api.get("/orders", params={
            **JSON, "filter[date_upd]": "[2026-01-01 00:00:00,2100-01-01 00:00:00]"}),
        "a display of an unknown field": lambda: api.get("/orders", params={**JSON, "display": "[id,nothing]"}),
        "a display without brackets": lambda: api.get("/orders", params={**JSON, "display": "id"}),
        "a sort without a direction": lambda: api.get("/orders", params={**JSON, "sort": "[id]"}),
        "a sort on an unknown field": lambda: api.get("/orders", params={**JSON, "sort": "[nothing_ASC]"}),
        "a limit of three numbers": lambda: api.get("/orders", params={**JSON, "limit": "1,2,3"}),
        "a JSON body": lambda: api.put("/order_returns/1", params=JSON, content=json.dumps(
            {"order_return": {"id": 1, **{k: ret[k] for k in ("id_customer", "id_order", "question")},
                              "state": 2}}).encode(), headers={"Content-Type": "application/json"}),
        "a PUT without id": lambda: api.put("/order_returns/1", params=JSON, headers=XML, content=(
            f"<prestashop><order_return>{whole}</order_return></prestashop>").encode()),
        "a POST with an id": lambda: api.post("/order_returns", params=JSON, headers=XML, content=(
            f"<prestashop><order_return><id>77</id>{whole}</order_return></prestashop>").encode()),
        "a PUT of an unknown id": lambda: api.put("/order_returns/99999", params=JSON, headers=XML, content=(
            f"<prestashop><order_return><id>99999</id>{whole}</order_return></prestashop>").encode()),
        "a POST without a required field": lambda: api.post("/order_slip", params=JSON, headers=XML, content=(
            b"<prestashop><order_slip><id_customer>3</id_customer><conversion_rate>1</conversion_rate>"
            b"</order_slip></prestashop>")),
        "a field validateFields refuses": lambda: api.post("/order_returns", params=JSON, headers=XML, content=(
            f"<prestashop><order_return>{whole.replace('<state>2', '<state>99')}</order_return></prestashop>"
        ).encode()),
        "a method the key may not use": lambda: api.put("/orders/1", params=JSON, headers=XML, content=(
            b"<prestashop><order><id>1</id></order></prestashop>")),
        "GET of an unknown id": lambda: api.get("/orders/999999", params=JSON),
    }
    return requests[case.what]()


@pytest.mark.parametrize("case", ERRORS, ids=[case.what for case in ERRORS])
def test_the_sandbox_answers_the_documented_errors(case: ErrorCase, shop: PrestaShopEmulator,
                                                   api: httpx.Client) -> None:
    before = [dict(r) for r in shop.tables["order_returns"].values()]
    answer = _ask(case, shop, api)
    assert answer.status_code == case.status, f"{case.what} ({case.source}): {answer.text[:200]}"
    if case.code is None:
        assert answer.content == b""
    else:
        [error] = answer.json()["errors"]
        assert error["code"] == case.code and error["message"].startswith(case.message), error
    assert [dict(r) for r in shop.tables["order_returns"].values()] == before, "a refused request changes nothing"


# --- the connector syncs a shop answering as PrestaShop does -----------------------------------

READ = {"orders", "order_details", "order_slip", "customers", "currencies", "customer_threads",
        "customer_messages", "order_returns"}
"""Every resource a pull reads (order_returns too: on 1.7/8 the shop answers that it has none)."""


@pytest.fixture
def connect(tmp_path: Path) -> Iterator[Callable[..., PrestaShopConnector]]:
    made: list[PrestaShopConnector] = []

    def make(recorded: RecordedShop) -> PrestaShopConnector:
        settings = PrestaShopSettings(connector="prestashop", base_url="https://shop.example.com",
                                      api_key=SANDBOX_KEY, max_backoff="0.01s")
        made.append(PrestaShopConnector("recorded", settings, Runtime(state_dir=tmp_path,
                                                                      transport=recorded.transport(),
                                                                      sleep=lambda _: None)))
        return made[-1]

    yield make
    for connector in made:
        connector.close()


@pytest.mark.parametrize("resource", sorted(NODES))
def test_the_client_reads_every_resource_under_its_classes_node_names(
        resource: str, connect: Callable[..., PrestaShopConnector]) -> None:
    """Each resource's list, empty list and one object, shaped by the table, read through the client."""
    record = {"id": 5, "id_order": "7", "name": "", "active": "0", "date_upd": "2026-10-01 10:00:00"}
    shop = RecordedShop("9.0.0", data={name: [] for name in NODES})
    shop.data[resource] = [record]
    client = connect(shop).client
    assert client.list(resource, {"limit": "0,100"}) == [record]
    assert client.list(resource, {"filter[id]": "[6]"}) == [], "a bare [] is an empty page"
    assert client.get(resource, "5") == {"id": 5, "id_order": "7", "date_upd": "2026-10-01 10:00:00"}
    assert client.get(resource, "6") is None, "an unknown id: 404 without a body"


def lines(store: InMemoryStore, external_id: str) -> list[tuple[str, int]]:
    return [(line.external_id, line.quantity) for line in store.returns[external_id].lines]


def test_on_8_a_real_shops_answers_give_returns_from_returned_quantities_and_slips(
        connect: Callable[..., PrestaShopConnector]) -> None:
    recorded, store = RecordedShop("8.1.7"), InMemoryStore()
    store.run(connect(recorded))
    assert set(store.orders) == {"7", "8", "9"}
    assert set(store.returns) == {"order-7", "order-9"}
    assert lines(store, "order-7") == [("70", 1)], "one unit of row 70 came back (product_quantity_return)"
    assert lines(store, "order-9") == [("90", 1)] and store.returns["order-9"].refund_amount == 11760
    assert store.returns["order-7"].customer.email == "eva@example.com" and store.returns["order-7"].currency == "EUR"
    assert recorded.keys_answered() == READ
    slips = [params for method, resource, params in recorded.asked if resource == "order_slip"]
    assert slips and all(params["output_format"] == "JSON" for params in slips)


def test_on_9_merchandise_returns_take_their_lines_from_the_order_and_unknown_lines_stay_unknown(
        connect: Callable[..., PrestaShopConnector]) -> None:
    recorded, store = RecordedShop("9.0.0"), InMemoryStore()
    store.run(connect(recorded))
    assert set(store.returns) == {"12", "13"}
    assert lines(store, "12") == [("70", 1)]
    unknown = store.returns["13"]
    assert unknown.lines == () and "does not say which items came back" in unknown.extra["lines_unknown"], (
        "order 8's one row is not taken as returned: nothing in the shop says it came back")
    assert unknown.channel_reason is None, "an empty question is read as none"
    assert recorded.keys_answered() == READ
    recorded.data["order_details"][2]["product_quantity_return"] = "1"  # the merchant books the parcel in
    recorded.data["order_returns"][1]["date_upd"] = "2026-10-09 10:00:00"
    store.run(connect(recorded))
    assert lines(store, "13") == [("80", 1)] and "lines_unknown" not in store.returns["13"].extra


def test_on_9_a_second_return_on_the_same_order_leaves_both_without_guessed_lines(
        connect: Callable[..., PrestaShopConnector]) -> None:
    recorded, store = RecordedShop("9.0.0"), InMemoryStore()
    recorded.data["order_returns"].append({"id": 14, "id_customer": "3", "id_order": "7", "question": "Mug cracked",
                                           "state": "1", "date_add": "2026-10-08 08:00:00",
                                           "date_upd": "2026-10-08 08:00:00"})
    store.run(connect(recorded))
    assert {key: lines(store, key) for key in ("12", "14")} == {"12": [], "14": []}, (
        "row 70's returned unit is the order's: it cannot be told which of the two returns holds it")
    assert "order 7 has several merchandise returns" in store.returns["14"].extra["lines_unknown"]


def test_one_object_without_its_empty_fields_is_read_and_decisions_go_as_xml(
        connect: Callable[..., PrestaShopConnector]) -> None:
    recorded, store = RecordedShop("8.1.7"), InMemoryStore()
    connector = connect(recorded)
    store.run(connector)
    order = connector.fetch_order("8")
    assert order is not None and [line.external_id for line in order.lines] == ["80"]
    assert order.total_amount == 1890 and order.customer.email == "ben@example.com"
    result = carry_out(connector, act_for(store.returns["order-7"], DecisionKind.ACCEPT))
    assert result.status is PushStatus.PUSHED, result.detail
    written = [(method, resource) for method, resource, _ in recorded.written]
    assert written == [("POST", "customer_messages"), ("POST", "order_slip"), ("POST", "customer_messages")], (
        "the note on the order's existing thread, the slip, retsync's private record")
    assert all(body.startswith(b"<?xml") for _, _, body in recorded.written), "the webservice reads XML only"
    slip = recorded.data["order_slip"][-1]
    assert slip["id_order"] == "7" and slip["associations"]["order_slip_details"][0]["id_order_detail"] == "70"
    assert slip["associations"]["order_slip_details"][0]["product_quantity"] == "1"


# --- through the daemon into the database: the merchant sees the unknown lines --------------------


@pytest.fixture
def runner(db: Engine, db_url: str, tmp_path: Path) -> Iterator[tuple[Runner, RecordedShop]]:
    recorded = RecordedShop("9.0.0")
    table: dict[str, Any] = {**PrestaShopConnector.sandbox_channel("https://shop.example.com"),
                             "max_backoff": "0.05s"}
    del table["hold_order_id"]
    settings = Settings(database={"url": db_url}, daemon={"state_dir": tmp_path}, channels={"shop": table})
    config = Config(path=tmp_path / "config.toml", settings=settings, channels={"shop": PrestaShopSettings(**table)})
    runner = Runner(config, transports={"shop": recorded.transport()}, db=db)
    runner.open()
    yield runner, recorded
    runner.close()


def test_a_merchandise_return_with_unknown_lines_is_stored_without_lines_and_flagged(
        runner: tuple[Runner, RecordedShop], db: Engine) -> None:
    daemon, recorded = runner
    assert daemon.pull("shop").ok
    with db.connect() as conn:
        stored = {row[0]: row[1] for row in conn.execute(text(
            "SELECT r.external_id, COUNT(rl.id) FROM returns r LEFT JOIN return_lines rl ON rl.return_id = r.id "
            "GROUP BY r.external_id"))}
        flagged = set(conn.execute(text(
            "SELECT r.external_id FROM return_flags f JOIN returns r ON r.id = f.return_id "
            "WHERE f.code = 'lines_unknown' AND f.resolved_at IS NULL")).scalars())
    assert stored == {"12": 1, "13": 0} and flagged == {"13"}
    recorded.data["order_details"][2]["product_quantity_return"] = "1"
    recorded.data["order_returns"][1]["date_upd"] = "2026-10-09 10:00:00"
    assert daemon.pull("shop").ok
    with db.connect() as conn:
        open_flags = set(conn.execute(text(
            "SELECT r.external_id FROM return_flags f JOIN returns r ON r.id = f.return_id "
            "WHERE f.code = 'lines_unknown' AND f.resolved_at IS NULL")).scalars())
        lines_13 = conn.execute(text("SELECT rl.external_id, rl.quantity FROM return_lines rl JOIN returns r "
                                     "ON r.id = rl.return_id WHERE r.external_id = '13'")).all()
    assert open_flags == set() and [tuple(row) for row in lines_13] == [("80", 1)]
