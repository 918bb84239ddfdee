"""The bol connector against the emulator, in-process: what gets stored, and what bol gets asked."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from retsync.kit.contract import PushStatus, Runtime, Stream
from retsync.kit.http import AuthError, BadPayload
from retsync.kit.model import DecisionKind, Return, ReturnLine, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.bol.connector import BolConnector, BolSettings, _Handling, _reference
from retsync_connectors.bol.emulator import MEDIA_TYPE, BolEmulator
from retsync_connectors.bol.mapping import map_return, reduced_from_detail

from .conftest import NOW, bearer, listed

MakeConnector = Callable[..., BolConnector]

# seed 7 with 500 returns: 56 open FBR (2 pages), 19 open FBB, 351 handled FBR (8 pages), 74 handled FBB (2 pages)
SEED, SIZE = 7, 500


@pytest.fixture
def emu() -> BolEmulator:
    return BolEmulator(seed=SEED, n_returns=SIZE)


def list_calls(emu: BolEmulator) -> list[tuple[str, str, str]]:
    return [
        (r.query["fulfilment-method"], r.query["handled"], r.query["page"])
        for r in emu.requests
        if r.method == "GET" and r.path == "/retailer/returns" and r.status == 200
    ]


def puts(emu: BolEmulator) -> list[dict[str, object]]:
    return [r.body for r in emu.requests if r.method == "PUT"]


def stored_return(emu: BolEmulator, return_id: str) -> Return:
    """The return as retsync stores it, read from bol's detail: what a decision is recorded on."""
    with httpx.Client(base_url="https://api.bol.com", transport=emu.transport()) as client:
        detail = client.get(f"/retailer/returns/{return_id}", headers=bearer(emu)).json()
    emu.requests.clear()
    return map_return(reduced_from_detail(detail), detail, {})


def unknown_return(return_id: str, *rma_ids: str) -> Return:
    """A return bol does not know (or with items that are no rmaIds), one unit per item."""
    return Return(external_id=return_id, status=ReturnStatus.REQUESTED, created_at=NOW,
                  lines=tuple(ReturnLine(external_id=rma_id, quantity=1) for rma_id in rma_ids))


def open_fbr_item(emu: BolEmulator) -> tuple[Return, str, int]:
    """(the return, rmaId, expectedQuantity) of the oldest open FBR return, which has one item."""
    record = stored_return(emu, listed(emu, "FBR", handled=False)[0])
    assert len(record.lines) == 1
    emu.requests.clear()
    return record, record.lines[0].external_id, record.lines[0].quantity


# --- pull ----------------------------------------------------------------------------------


def test_a_full_pass_stores_every_return_once_with_its_orders(emu: BolEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu))

    assert store.ids() == emu.truth()
    assert len(store.written) == len(set(store.written)) == SIZE
    referenced = {line.order_external_id for r in store.returns.values() for line in r.lines}
    assert referenced == set(store.orders) == emu.truth()["orders"]
    order_gets = Counter(r.path for r in emu.requests if r.path.startswith("/retailer/orders/"))
    assert order_gets and max(order_gets.values()) == 1, "an order shared by two returns is fetched once"
    assert store.cursor is not None
    assert {key: store.cursor[key] for key in ("phase", "page", "last_pass", "full_pass")} == {
        "phase": 0, "page": 1, "last_pass": store.now.isoformat(), "full_pass": store.now.isoformat()}
    walked = list(dict.fromkeys((method, handled) for method, handled, _ in list_calls(emu)))
    assert walked == [("FBR", "false"), ("FBB", "false"), ("FBR", "true"), ("FBB", "true")]


def test_lines_carry_order_line_price_and_detail_fields(emu: BolEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu))

    lines = [line for r in store.returns.values() for line in r.lines]
    assert all(line.order_line_external_id and line.unit_price and line.title for line in lines)
    assert all(line.currency == "EUR" for line in lines)
    fbb = [r for r in store.returns.values() if r.extra.get("fulfilmentMethod") == "FBB"]
    assert fbb and all(r.handled_by_channel for r in fbb)
    assert not any(r.handled_by_channel for r in store.returns.values() if r.extra["fulfilmentMethod"] == "FBR")
    assert any(r.tracking_number and r.carrier for r in store.returns.values())
    assert all(r.customer.email and r.customer.postcode for r in store.returns.values())
    statuses = Counter(r.status for r in store.returns.values())
    assert statuses[ReturnStatus.REFUNDED] and statuses[ReturnStatus.DECIDED] and statuses[ReturnStatus.CANCELLED]
    assert statuses[ReturnStatus.REQUESTED] + statuses[ReturnStatus.IN_TRANSIT] == 56 + 19


def test_an_unchanged_full_pass_stops_handled_paging_after_one_page(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    connector = make_connector(emu, full_pass_every="0s")
    store = InMemoryStore()
    store.run(connector)
    emu.requests.clear()

    store.run(connector, pretend_stored=lambda return_id: True)

    assert list_calls(emu) == [
        ("FBR", "false", "1"), ("FBR", "false", "2"), ("FBB", "false", "1"), ("FBR", "true", "1"), ("FBB", "true", "1"),
    ]
    assert not [r for r in emu.requests if r.path.startswith(("/retailer/returns/", "/retailer/orders/"))]


def test_between_full_passes_a_poll_reads_only_the_end_of_each_open_list(make_connector: MakeConnector) -> None:
    emu = BolEmulator(seed=SEED, n_returns=2000)  # open FBR returns over several pages
    connector = make_connector(emu)
    store = InMemoryStore()
    store.run(connector)
    full_walk = [c for c in list_calls(emu) if c[:2] == ("FBR", "false")]
    fbb_walk = [c for c in list_calls(emu) if c[:2] == ("FBB", "false")]
    assert len(full_walk) >= 3, "precondition: the open FBR list has several pages"
    emu.requests.clear()
    added = str(emu.add_return()["returnId"])  # a new open FBR return joins the end of its list

    store.run(connector)

    assert added in store.returns
    assert list_calls(emu) == [("FBR", "false", full_walk[-1][2]), fbb_walk[-1], ("FBR", "true", "1"),
                               ("FBB", "true", "1")], "four list requests, however long the open lists"
    assert [r.path for r in emu.requests if r.path.startswith("/retailer/returns/")] == [f"/retailer/returns/{added}"]


def test_when_an_open_list_got_shorter_its_end_is_looked_for_a_page_earlier(make_connector: MakeConnector) -> None:
    emu = BolEmulator(seed=SEED, n_returns=2000)
    connector = make_connector(emu)
    store = InMemoryStore()
    store.run(connector)
    open_fbr = listed(emu, "FBR", handled=False)
    last_page = (len(open_fbr) - 1) // 50 + 1
    for return_id in open_fbr[: len(open_fbr) - 50 * (last_page - 1)]:  # the last page's worth leaves the list
        emu.handle_externally(rma_of(return_id), "RETURN_RECEIVED")
    emu.requests.clear()
    added = str(emu.add_return()["returnId"])

    store.run(connector)

    assert added in store.returns
    fbr_open = [c[2] for c in list_calls(emu) if c[:2] == ("FBR", "false")]
    assert fbr_open == [str(last_page), str(last_page - 1), str(last_page)], "empty now, so one page back, on"


def test_the_hourly_full_pass_asks_for_returns_that_left_the_open_list(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    connector = make_connector(emu)
    store = InMemoryStore()
    store.run(connector)
    record, rma_id, _ = open_fbr_item(emu)
    emu.handle_externally(rma_id, "RETURN_DOES_NOT_MEET_CONDITIONS")

    store.run(connector)  # within the hour: only the lists' ends
    assert store.returns[record.external_id].status is not ReturnStatus.DECIDED

    store.now += timedelta(hours=1)
    store.run(connector)
    assert store.returns[record.external_id].status is ReturnStatus.DECIDED


def test_a_new_handled_return_is_picked_up_on_the_first_handled_page(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    connector = make_connector(emu)
    store = InMemoryStore()
    store.run(connector)
    added = emu.add_return()
    rma_id = added["returnItems"][0]["rmaId"]
    emu.handle_externally(rma_id, "RETURN_RECEIVED")
    emu.requests.clear()

    store.run(connector)

    assert store.returns[added["returnId"]].status is ReturnStatus.REFUNDED
    handled_pages = [c for c in list_calls(emu) if c[1] == "true"]
    assert handled_pages == [("FBR", "true", "1"), ("FBR", "true", "2"), ("FBB", "true", "1")], "page 2 brings nothing new"
    assert store.ids() == emu.truth()


def test_a_return_handled_on_bol_between_passes_is_updated_although_it_sits_deep_in_the_handled_list(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    connector = make_connector(emu, full_pass_every="0s")
    store = InMemoryStore()
    store.run(connector)
    record, rma_id, _ = open_fbr_item(emu)
    return_id = record.external_id
    assert store.returns[return_id].status in (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT)
    emu.handle_externally(rma_id, "RETURN_DOES_NOT_MEET_CONDITIONS")
    assert listed(emu, "FBR", handled=True).index(return_id) >= 50, "precondition: beyond the first handled page"
    emu.requests.clear()

    store.run(connector)

    updated = store.returns[return_id]
    assert updated.status is ReturnStatus.DECIDED
    assert updated.lines[0].channel_decision is DecisionKind.REJECT
    assert updated.lines[0].channel_status == "handled:RETURN_DOES_NOT_MEET_CONDITIONS:REJECTED"
    assert [c for c in list_calls(emu) if c[1] == "true"] == [("FBR", "true", "1"), ("FBB", "true", "1")]
    assert [r.path for r in emu.requests if r.path.startswith("/retailer/returns/")] == [f"/retailer/returns/{return_id}"]


def test_an_open_return_skipped_because_the_list_shifted_is_still_followed(make_connector: MakeConnector) -> None:
    emu = BolEmulator(seed=SEED, n_returns=2000)  # enough old open returns that the one skipped sits deep
    open_fbr = listed(emu, "FBR", handled=False)
    first, shifted = open_fbr[0], open_fbr[50]  # `shifted` moves to page 1 once `first` leaves the list
    watched = {first, shifted}
    store = InMemoryStore()
    connector = make_connector(emu, full_pass_every="0s")

    def pretend_stored(return_id: str) -> bool:  # everything but the watched two counts as stored long ago
        return return_id not in watched

    store.run(connector, pretend_stored=pretend_stored)
    emu.requests.clear()
    pages = connector.pull(Stream.RETURNS, store.context(pretend_stored=pretend_stored))
    store.store(next(pages))
    emu.handle_externally(rma_of(first), "RETURN_RECEIVED")  # handled in the seller dashboard while we page
    for page in pages:
        store.store(page)
    assert f"/retailer/returns/{shifted}" in [r.path for r in emu.requests], "precondition: missed by the list"
    emu.handle_externally(rma_of(shifted), "RETURN_DOES_NOT_MEET_CONDITIONS")
    assert listed(emu, "FBR", handled=True).index(shifted) >= 50, "precondition: beyond the first handled page"

    store.run(connector, pretend_stored=pretend_stored)

    assert store.returns[shifted].status is ReturnStatus.DECIDED
    assert store.returns[first].status is ReturnStatus.REFUNDED


def rma_of(return_id: str) -> str:
    """The first rmaId of a sandbox return (the emulator numbers them from the returnId)."""
    return str(60_000_000 + 2 * (int(return_id) - 10_000_000))


def test_resuming_from_a_cursor_reads_only_what_is_left(emu: BolEmulator, make_connector: MakeConnector) -> None:
    handled_fbr, handled_fbb = listed(emu, "FBR", handled=True), listed(emu, "FBB", handled=True)
    emu.requests.clear()
    store = InMemoryStore(cursor={"phase": 2, "page": 2})

    store.run(make_connector(emu))

    assert list_calls(emu)[0] == ("FBR", "true", "2")
    assert set(store.written) == set(handled_fbr[50:]) | set(handled_fbb)
    assert store.cursor is not None and store.cursor["phase"] == 0 and "last_pass" in store.cursor


def test_a_pass_killed_midway_resumes_where_it_stopped_and_misses_nothing(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu), max_pages=4)
    assert store.cursor is not None
    assert (store.cursor["phase"], store.cursor["page"]) == (2, 2), "two FBR pages, one FBB page, one handled FBR page"
    emu.requests.clear()

    store.run(make_connector(emu))  # a new process: nothing but the stored cursor survives

    assert store.ids() == emu.truth()
    assert list_calls(emu)[0] == ("FBR", "true", "2")


def test_stop_signal_ends_the_pass_between_pages(emu: BolEmulator, make_connector: MakeConnector, tmp_path: Path) -> None:
    runtime = Runtime(state_dir=tmp_path, transport=emu.transport(), sleep=lambda seconds: None)
    connector = make_connector(emu, runtime=runtime)
    pages = connector.pull(Stream.RETURNS, InMemoryStore().context())
    first = next(pages)
    runtime.stop.set()

    assert list(pages) == []
    assert first.cursor is not None and (first.cursor["phase"], first.cursor["page"]) == (0, 2)
    assert len(list_calls(emu)) == 1


def test_handled_history_before_the_backfill_window_is_left_alone(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu), backfill_since=NOW - timedelta(days=10))

    handled = [r for r in store.returns.values() if r.status not in (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT)]
    assert handled and all(r.created_at >= NOW - timedelta(days=10) for r in handled)
    open_ids = set(listed(emu, "FBR", handled=False)) | set(listed(emu, "FBB", handled=False))
    assert open_ids <= set(store.returns), "open returns are taken whatever their age"
    assert len([c for c in list_calls(emu) if c[1] == "true"]) < 10


def test_a_return_whose_order_bol_no_longer_serves_is_stored_without_it(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    orphan = emu.add_return(with_order=False)
    store = InMemoryStore()
    store.run(make_connector(emu))

    stored = store.returns[orphan["returnId"]]
    order_id = orphan["returnItems"][0]["orderId"]
    assert stored.lines[0].order_external_id == order_id
    assert stored.lines[0].order_line_external_id is None
    assert order_id not in store.orders
    assert [r.status for r in emu.requests if r.path == f"/retailer/orders/{order_id}"] == [404]


def test_stored_orders_are_not_fetched_again(emu: BolEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu))
    store.returns.clear()  # every return looks new, every order is stored
    emu.requests.clear()

    store.run(make_connector(emu))

    assert len(store.returns) == SIZE
    assert not [r for r in emu.requests if r.path.startswith("/retailer/orders/")]


def test_a_wrongly_shaped_list_stops_the_pass_instead_of_looking_empty(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    emu.inject("wrong_shape", path="/retailer/returns")
    store = InMemoryStore()

    with pytest.raises(BadPayload, match="not an array"):
        store.run(make_connector(emu))
    assert store.cursor is None


def test_empty_pages_sent_as_an_empty_object_end_a_list(make_connector: MakeConnector) -> None:
    emu = BolEmulator(seed=29, n_returns=150, omit_empty_lists=True)  # exactly 100 handled FBR returns
    store = InMemoryStore()
    store.run(make_connector(emu))

    assert store.ids() == emu.truth()
    assert [c for c in list_calls(emu) if c[:2] == ("FBR", "true")] == [("FBR", "true", p) for p in ("1", "2", "3")]
    assert store.cursor is not None and "last_pass" in store.cursor


# --- HTTP behaviour seen from the channel ----------------------------------------------------


def test_one_token_serves_a_whole_pass(emu: BolEmulator, make_connector: MakeConnector) -> None:
    InMemoryStore().run(make_connector(emu))

    assert [r.path for r in emu.requests].count("/token") == 1
    assert len(emu.requests) > 500
    api = [r for r in emu.requests if r.path != "/token"]
    assert all(r.headers["accept"] == MEDIA_TYPE for r in api)
    assert all(r.headers["authorization"].startswith("Bearer ") for r in api)


def test_a_token_expiring_mid_sync_is_refreshed_once(emu: BolEmulator, make_connector: MakeConnector) -> None:
    connector = make_connector(emu)
    store = InMemoryStore()
    store.run(connector, max_pages=2)
    emu.inject("expire_tokens")
    store.run(connector)

    assert store.ids() == emu.truth()
    assert [r.path for r in emu.requests].count("/token") == 2
    assert [r.status for r in emu.requests].count(401) == 1


def test_rate_limit_429_waits_retry_after_then_continues(
    emu: BolEmulator, make_connector: MakeConnector, sleeps: list[float]
) -> None:
    emu.inject("status", status=429, retry_after="1", path="/retailer/returns")
    store = InMemoryStore()
    store.run(make_connector(emu))

    assert store.ids() == emu.truth()
    statuses = [r.status for r in emu.requests if r.path == "/retailer/returns"]
    assert statuses[:2] == [429, 200]
    assert any(0.9 <= seconds <= 1.0 for seconds in sleeps), sleeps


def test_the_client_paces_itself_on_bols_rate_limit_headers(make_connector: MakeConnector, tmp_path: Path) -> None:
    # a window wide enough that a busy CI machine still sends 6 requests inside it
    emu = BolEmulator(seed=2, n_returns=10, rate_limit=6, rate_window=0.3)
    waits: list[float] = []

    def short_sleep(seconds: float) -> None:  # bol says "1 s"; the emulator's window is 0.3 s
        waits.append(seconds)
        time.sleep(min(seconds, 0.35))

    store = InMemoryStore()
    store.run(make_connector(emu, runtime=Runtime(state_dir=tmp_path, transport=emu.transport(), sleep=short_sleep)))

    assert store.ids() == emu.truth()
    assert waits, "the client waited when x-ratelimit-remaining reached 0"
    assert 429 not in [r.status for r in emu.requests]


def test_wrong_credentials_are_reported_as_an_auth_problem(emu: BolEmulator, make_connector: MakeConnector) -> None:
    connector = make_connector(emu, client_secret="not-the-secret")

    with pytest.raises(AuthError, match="client_id and client_secret"):
        InMemoryStore().run(connector)
    result = carry_out(connector, act_for(unknown_return("10000000", "60000001"), DecisionKind.ACCEPT))
    assert result.status is PushStatus.RETRY, "the decision waits until the credentials are fixed"
    assert "client_id and client_secret" in (result.detail or "")
    assert not puts(emu)


# --- decisions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "handling"),
    [
        (DecisionKind.ACCEPT, "RETURN_RECEIVED"),
        (DecisionKind.REJECT, "RETURN_DOES_NOT_MEET_CONDITIONS"),
        (DecisionKind.REPAIR, "REPAIR_PRODUCT"),
        (DecisionKind.EXCHANGE, "EXCHANGE_PRODUCT"),
        (DecisionKind.KEEP, "CUSTOMER_KEEPS_PRODUCT_PAID"),
    ],
)
def test_each_decision_is_one_put_that_changes_bol(
    emu: BolEmulator, make_connector: MakeConnector, kind: DecisionKind, handling: str
) -> None:
    record, rma_id, quantity = open_fbr_item(emu)
    connector = make_connector(emu)

    result = carry_out(connector, act_for(record, kind))

    assert result.status is PushStatus.PUSHED, result.detail
    assert result.detail == f"bol applied handlingResult={handling} quantityReturned={quantity} on rma {rma_id}"
    assert puts(emu) == [{"handlingResult": handling, "quantityReturned": quantity}]
    put = next(r for r in emu.requests if r.method == "PUT")
    assert put.path == f"/retailer/returns/{rma_id}"
    assert put.headers["content-type"] == MEDIA_TYPE
    item = emu.item(rma_id)
    assert item["handled"] is True
    assert item["processingResults"][-1]["handlingResult"] == handling
    assert emu.handled_log == {rma_id: [handling]}
    assert emu.acts_applied() == [("handling", record.external_id, rma_id, handling)]
    assert json.loads(result.reference or "") == {rma_id: put_reference(emu)}


def put_reference(emu: BolEmulator) -> str:
    polls = [r.path for r in emu.requests if r.path.startswith("/shared/process-status/")]
    return polls[-1].rsplit("/", 1)[1]


def two_item_return(emu: BolEmulator) -> Return:
    """The oldest open FBR return with two items (two rmaIds)."""
    for return_id in listed(emu, "FBR", handled=False):
        record = stored_return(emu, return_id)
        if len(record.lines) == 2:
            return record
    raise AssertionError("the sandbox holds an open FBR return with two items")


def test_a_whole_return_act_is_one_put_per_rma_and_pushed_once_bol_handled_both(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    record = two_item_return(emu)
    rmas = [line.external_id for line in record.lines]

    result = carry_out(make_connector(emu), act_for(record, DecisionKind.ACCEPT))

    assert result.status is PushStatus.PUSHED, result.detail
    assert sorted(r.path for r in emu.requests if r.method == "PUT") == sorted(f"/retailer/returns/{rma}" for rma in rmas)
    assert emu.handled_log == {rma: ["RETURN_RECEIVED"] for rma in rmas}
    assert sorted(emu.acts_applied()) == sorted(("handling", record.external_id, rma, "RETURN_RECEIVED") for rma in rmas)
    assert set(json.loads(result.reference or "")) == set(rmas)
    assert all(f"rma {rma} (quantityReturned=" in (result.detail or "") for rma in rmas)


def test_a_slow_whole_return_act_stays_pending_until_every_process_is_done(
    make_connector: MakeConnector, sleeps: list[float]
) -> None:
    emu = BolEmulator(seed=SEED, n_returns=SIZE, process_polls_until_done=2, process_seconds=None)
    record = two_item_return(emu)
    rmas = [line.external_id for line in record.lines]
    connector = make_connector(emu, process_poll_attempts=1)
    act = act_for(record, DecisionKind.REPAIR)

    pending = carry_out(connector, act)

    assert pending.status is PushStatus.PENDING
    assert set(json.loads(pending.reference or "")) == set(rmas), "the reference follows every item's process"
    assert sleeps == [0.25], "one pause, then both processes are checked"
    done = carry_out(connector, act_for(record, DecisionKind.REPAIR, key=act.key, attempt=2,
                                        reference=pending.reference))

    assert done.status is PushStatus.PUSHED, done.detail
    assert len(puts(emu)) == 2
    assert emu.handled_log == {rma: ["REPAIR_PRODUCT"] for rma in rmas}
    assert not [r for r in emu.requests if r.path in ("/shared/process-status", f"/retailer/returns/{record.external_id}")], \
        "followed by the reference, bol need not be asked what it did"


@pytest.mark.parametrize("lost_put", [0, 1])
def test_a_lost_answer_on_one_put_of_a_whole_return_act_never_handles_an_rma_twice(
    emu: BolEmulator, make_connector: MakeConnector, lost_put: int
) -> None:
    record = two_item_return(emu)
    rmas = [line.external_id for line in record.lines]
    connector = make_connector(emu)
    act = act_for(record, DecisionKind.ACCEPT)
    emu.inject("lost", method="PUT", after=lost_put)

    lost = carry_out(connector, act)
    assert lost.status is PushStatus.RETRY, lost.detail
    retry = carry_out(connector, act_for(record, DecisionKind.ACCEPT, key=act.key, attempt=2))

    assert retry.status is PushStatus.PUSHED, retry.detail
    put_paths = [r.path for r in emu.requests if r.method == "PUT"]
    assert sorted(put_paths) == sorted(f"/retailer/returns/{rma}" for rma in rmas), "one PUT per rmaId, ever"
    assert emu.handled_log == {rma: ["RETURN_RECEIVED"] for rma in rmas}
    applied = emu.acts_applied()
    assert len(applied) == len(set(applied)) == 2


def test_a_refusal_on_the_second_item_names_it_and_what_went_through(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    record = two_item_return(emu)
    first, second = (line.external_id for line in record.lines)
    too_many = record.lines[1].quantity + 1

    result = carry_out(make_connector(emu), act_for(record, DecisionKind.ACCEPT,
                                                    quantities=[record.lines[0].quantity, too_many]))

    assert result.status is PushStatus.FAILED
    assert f"rma {second}: " in (result.detail or "") and "exceeds the expected quantity" in (result.detail or "")
    assert f"rma {first} went through" in (result.detail or "")


def test_an_act_naming_something_that_is_no_rma_sends_nothing(emu: BolEmulator, make_connector: MakeConnector) -> None:
    result = carry_out(make_connector(emu), act_for(unknown_return("10000000", "60000001", "shop-line-7"),
                                                    DecisionKind.ACCEPT))

    assert result.status is PushStatus.FAILED
    assert "'shop-line-7'" in (result.detail or "")
    assert emu.requests == []


def test_cancel_is_unsupported_and_bol_is_not_asked(emu: BolEmulator, make_connector: MakeConnector) -> None:
    connector = make_connector(emu)

    result = carry_out(connector, act_for(unknown_return("10000000", "60000001"), DecisionKind.CANCEL))

    assert result.status is PushStatus.UNSUPPORTED
    assert "seller dashboard" in (result.detail or "")
    assert emu.requests == []
    assert not BolConnector.capabilities.supports(DecisionKind.CANCEL)


def test_a_retry_after_a_lost_answer_does_not_handle_twice(emu: BolEmulator, make_connector: MakeConnector) -> None:
    record, rma_id, _ = open_fbr_item(emu)
    connector = make_connector(emu)
    act = act_for(record, DecisionKind.ACCEPT)
    first = carry_out(connector, act)
    assert first.status is PushStatus.PUSHED

    retry = carry_out(connector, act_for(record, DecisionKind.ACCEPT, key=act.key, attempt=2))

    assert retry.status is PushStatus.PUSHED
    assert "already applied" in (retry.detail or "")
    assert len(puts(emu)) == 1
    assert emu.handled_log == {rma_id: ["RETURN_RECEIVED"]}


def test_a_retry_that_bol_never_saw_is_sent(emu: BolEmulator, make_connector: MakeConnector) -> None:
    record, rma_id, _ = open_fbr_item(emu)

    result = carry_out(make_connector(emu), act_for(record, DecisionKind.ACCEPT, attempt=3))

    assert result.status is PushStatus.PUSHED
    assert [(r.method, r.path) for r in emu.requests if r.path != "/token"][:3] == [
        ("GET", f"/retailer/returns/{record.external_id}"), ("GET", "/shared/process-status"),
        ("PUT", f"/retailer/returns/{rma_id}"),
    ]
    assert emu.handled_log == {rma_id: ["RETURN_RECEIVED"]}


def test_a_slow_process_is_left_pending_then_followed_by_its_reference(
    make_connector: MakeConnector, sleeps: list[float]
) -> None:
    emu = BolEmulator(seed=SEED, n_returns=SIZE, process_polls_until_done=3)
    record, rma_id, _ = open_fbr_item(emu)
    connector = make_connector(emu, process_poll_attempts=2)
    act = act_for(record, DecisionKind.REPAIR)

    pending = carry_out(connector, act)

    assert pending.status is PushStatus.PENDING
    assert pending.reference
    assert emu.item(rma_id)["handled"] is False
    assert sleeps == [0.25, 0.25]

    done = carry_out(connector, act_for(record, DecisionKind.REPAIR, key=act.key, attempt=2,
                                        reference=pending.reference))

    assert done.status is PushStatus.PUSHED
    assert len(puts(emu)) == 1
    assert emu.handled_log == {rma_id: ["REPAIR_PRODUCT"]}


def test_a_reference_from_before_acts_is_still_followed(make_connector: MakeConnector) -> None:
    """A decision left pending by an older retsync holds its one process id, not an object."""
    emu = BolEmulator(seed=SEED, n_returns=SIZE, process_polls_until_done=2, process_seconds=None)
    record, rma_id, _ = open_fbr_item(emu)
    connector = make_connector(emu, process_poll_attempts=1)
    pending = carry_out(connector, act_for(record, DecisionKind.ACCEPT))
    assert pending.status is PushStatus.PENDING
    bare = json.loads(pending.reference or "")[rma_id]
    emu.requests.clear()

    done = carry_out(connector, act_for(record, DecisionKind.ACCEPT, attempt=2, reference=bare))

    assert done.status is PushStatus.PUSHED, done.detail
    assert [r.path for r in emu.requests if r.path != "/token"] == [f"/shared/process-status/{bare}"]


@pytest.mark.parametrize("reference", ["00000000-gone", '{"%s": "00000000-gone"}'])
def test_a_purged_process_status_is_checked_against_the_return_before_sending_again(
    emu: BolEmulator, make_connector: MakeConnector, reference: str
) -> None:
    record, rma_id, _ = open_fbr_item(emu)
    connector = make_connector(emu)

    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT, attempt=2,
                                          reference=reference.replace("%s", rma_id)))

    assert result.status is PushStatus.PUSHED
    assert f"/retailer/returns/{record.external_id}" in [r.path for r in emu.requests]
    assert len(puts(emu)) == 1


def test_a_process_failure_is_a_failed_push_with_bols_message(emu: BolEmulator, make_connector: MakeConnector) -> None:
    record = stored_return(emu, listed(emu, "FBB", handled=False)[0])
    rma_id = record.lines[0].external_id

    result = carry_out(make_connector(emu), act_for(record, DecisionKind.ACCEPT, lines=[0], quantities=[1]))

    assert result.status is PushStatus.FAILED
    assert "FAILURE" in (result.detail or "") and "FBB" in (result.detail or "")
    assert emu.item(rma_id)["handled"] is False
    assert emu.handled_log == {}


def test_a_400_problem_is_a_failed_push_naming_the_violation(emu: BolEmulator, make_connector: MakeConnector) -> None:
    record, rma_id, quantity = open_fbr_item(emu)

    result = carry_out(make_connector(emu), act_for(record, DecisionKind.ACCEPT, quantities=[quantity + 1]))

    assert result.status is PushStatus.FAILED
    assert f"quantityReturned: Quantity returned ({quantity + 1}) exceeds the expected quantity ({quantity})" in (
        result.detail or ""
    )
    assert len(puts(emu)) == 1, "a refused PUT is not repeated"
    assert emu.item(rma_id)["handled"] is False


def test_an_unknown_rma_is_a_failed_push(emu: BolEmulator, make_connector: MakeConnector) -> None:
    result = carry_out(make_connector(emu), act_for(unknown_return("19999999", "69999999"), DecisionKind.ACCEPT))

    assert result.status is PushStatus.FAILED
    assert "HTTP 404" in (result.detail or "")


def test_a_server_error_on_put_is_retried_by_the_outbox_not_by_the_transport(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    record, _, _ = open_fbr_item(emu)
    emu.inject("status", status=503, method="PUT")

    result = carry_out(make_connector(emu), act_for(record, DecisionKind.ACCEPT))

    assert result.status is PushStatus.RETRY
    assert len([r for r in emu.requests if r.method == "PUT"]) == 1
    assert emu.handled_log == {}


def test_a_put_whose_answer_is_lost_is_not_resent_by_the_transport(
    emu: BolEmulator, make_connector: MakeConnector
) -> None:
    record, rma_id, _ = open_fbr_item(emu)
    emu.inject("truncated", method="PUT")
    connector = make_connector(emu)
    act = act_for(record, DecisionKind.ACCEPT)

    lost = carry_out(connector, act)
    assert lost.status is PushStatus.RETRY
    emu.settle()  # bol processed it anyway
    retry = carry_out(connector, act_for(record, DecisionKind.ACCEPT, key=act.key, attempt=2))

    assert retry.status is PushStatus.PUSHED
    assert len(puts(emu)) == 1
    assert emu.handled_log == {rma_id: ["RETURN_RECEIVED"]}


def test_a_retry_while_the_lost_put_is_still_processing_follows_it_instead_of_sending_again(
    make_connector: MakeConnector,
) -> None:
    emu = BolEmulator(seed=SEED, n_returns=SIZE, process_seconds=None)  # finishes only when polled
    record, rma_id, _ = open_fbr_item(emu)
    emu.inject("truncated", method="PUT")
    connector = make_connector(emu)
    act = act_for(record, DecisionKind.EXCHANGE)
    assert carry_out(connector, act).status is PushStatus.RETRY

    retry = carry_out(connector, act_for(record, DecisionKind.EXCHANGE, key=act.key, attempt=2))

    assert retry.status is PushStatus.PUSHED, retry.detail
    assert len(puts(emu)) == 1
    assert emu.handled_log == {rma_id: ["EXCHANGE_PRODUCT"]}
    lookups = [r.query for r in emu.requests if r.path == "/shared/process-status"]
    assert lookups == [{"entity-id": rma_id, "event-type": "HANDLE_RETURN_ITEM"}]

# --- orders and sandbox --------------------------------------------------------------------


def test_fetch_order_maps_the_order_or_says_none(emu: BolEmulator, make_connector: MakeConnector) -> None:
    connector = make_connector(emu)
    order_id = sorted(emu.truth()["orders"])[0]

    order = connector.fetch_order(order_id)

    assert order is not None and order.external_id == order_id
    assert order.lines and all(line.unit_price and line.ean for line in order.lines)
    assert connector.fetch_order("999") is None


def test_the_sandbox_channel_table_talks_to_the_sandbox_over_loopback(tmp_path: Path) -> None:
    assert isinstance(BolConnector.sandbox(seed=4), BolEmulator)
    emu = BolEmulator(seed=4, n_returns=8)  # small: every request here is real HTTP
    with emu.serve() as base_url:
        settings = BolSettings(**BolConnector.sandbox_channel(base_url), process_poll_delay=0.05)
        connector = BolConnector("sandbox", settings, Runtime(state_dir=tmp_path))
        try:
            store = InMemoryStore()
            store.run(connector)
            record, rma_id, _ = open_fbr_item(emu)
            result = carry_out(connector, act_for(record, DecisionKind.ACCEPT))
        finally:
            connector.close()

    assert store.ids() == emu.truth()
    assert result.status is PushStatus.PUSHED
    assert emu.item(rma_id)["handled"] is True


def test_the_reference_of_a_many_item_act_fits_its_column_running_processes_first() -> None:
    """bol returns rarely hold more than three items, but a reference over 200 characters would not be stored;
    the items left out are found on the next attempt by asking bol (its return and its process list)."""
    handlings = [_Handling(str(60_000_000 + n), 1, status={"processStatusId": f"{n:08d}-0000-4000-8000-000000000000",
                                                           "status": "SUCCESS" if n < 3 else "PENDING"})
                 for n in range(6)]

    reference = _reference(handlings)

    assert reference is not None and len(reference) <= 200
    kept = json.loads(reference)
    assert 1 <= len(kept) < 6
    assert list(kept) == [str(60_000_000 + n) for n in range(3, 3 + len(kept))], "the running ones come first"
