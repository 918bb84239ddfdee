"""The Shopify connector against its sandbox, without a database: the orders walk (backfill, incremental, resume),
each decision's exact mutations, exactly once under lost answers, the cost bucket, and the back office."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from retsync.kit.contract import HoldRequest, PushStatus, Stream
from retsync.kit.model import DecisionKind, Return, ReturnReason, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.shopify.client import ORDERS_PAGE_COST, ORDERS_PAGE_COST_DEFINED, ORDERS_PER_PAGE
from retsync_connectors.shopify.connector import ShopifyConnector
from retsync_connectors.shopify.emulator import MAX_QUERY_COST, Bucket, ShopifyEmulator

from .conftest import VirtualClock, operations

MakeConnector = Callable[..., ShopifyConnector]


@pytest.fixture
def stored(emulator: ShopifyEmulator, make_connector: MakeConnector) -> InMemoryStore:
    store = InMemoryStore()
    store.run(make_connector(emulator))
    return store


def shop_status(emulator: ShopifyEmulator, record: Return) -> str:
    return str(emulator.returns[record.external_id]["status"])


def open_return(emulator: ShopifyEmulator, store: InMemoryStore, status: str, lines: int = 1) -> Return:
    """A stored return in Shopify `status`, nothing of it processed, with at least `lines` lines."""
    return next(r for r in store.returns.values()
                if shop_status(emulator, r) == status and len(r.lines) >= lines
                and not any(line["processed"] for line in emulator.returns[r.external_id]["lines"]))


# --- pull -----------------------------------------------------------------------------------------

def test_a_backfill_stores_every_return_with_its_order_and_linked_lines(
        emulator: ShopifyEmulator, stored: InMemoryStore) -> None:
    assert set(stored.returns) == set(emulator.returns)
    with_returns = {record["orderId"] for record in emulator.returns.values()}
    assert set(stored.orders) == with_returns, "only orders with returns are stored; a plain sale is not"
    assert stored.pages == -(-len(emulator.orders) // ORDERS_PER_PAGE)
    for record in stored.returns.values():
        order = stored.orders[record.order_external_id or ""]
        assert {line.order_line_external_id for line in record.lines} <= {line.external_id for line in order.lines}
        assert all(line.unit_price for line in record.lines)
    assert {r.status for r in stored.returns.values()} >= {ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT,
                                                           ReturnStatus.DECIDED, ReturnStatus.REFUNDED}


def test_from_2026_01_a_line_names_its_reason_definition(stored: InMemoryStore) -> None:
    reasons = {(line.channel_reason, line.reason) for r in stored.returns.values() for line in r.lines}
    assert ("too-small", ReturnReason.WRONG_SIZE) in reasons and ("changed-mind", ReturnReason.NO_LONGER_NEEDED) in reasons
    assert not {code for code, _ in reasons} & {"SIZE_TOO_SMALL", "UNWANTED"}


def test_the_walk_asks_by_updated_at_with_relay_cursors_and_bounded_cost(
        emulator: ShopifyEmulator, stored: InMemoryStore) -> None:
    pages = [r.body["variables"] for r in emulator.requests]
    assert pages[0]["after"] is None and all(p["after"] for p in pages[1:])
    assert len({p["query"] for p in pages}) == 1 and pages[0]["query"].startswith("updated_at:>='")
    assert "sortKey: UPDATED_AT" in emulator.requests[0].body["query"]
    assert {c["requested"] for c in emulator.costs} == {ORDERS_PAGE_COST_DEFINED}
    assert ORDERS_PAGE_COST < ORDERS_PAGE_COST_DEFINED <= MAX_QUERY_COST and all(c["actual"] <= c["requested"] for c in emulator.costs)


def test_an_incremental_pull_reads_only_orders_updated_since_less_the_overlap(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    newest = max(datetime.fromisoformat(o["updatedAt"].replace("Z", "+00:00")) for o in emulator.orders.values())
    since = datetime.fromisoformat(stored.cursor["since"].replace("Z", "+00:00"))
    assert since == newest - stored.context().overlap
    requested = next(r for r in stored.returns.values() if r.status is ReturnStatus.REQUESTED)
    carry_out(make_connector(emulator), act_for(requested, DecisionKind.REJECT, note="Worn"))
    emulator.requests.clear()
    again = stored.run(make_connector(emulator))
    assert requested.external_id in again
    assert stored.returns[requested.external_id].status is ReturnStatus.DECIDED
    assert len(emulator.requests) == 1, "one page of the few orders updated since"
    assert len(again) < len(emulator.returns) // 2


def test_a_pull_cut_short_resumes_after_the_last_page_stored(
        emulator: ShopifyEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    first = store.run(make_connector(emulator), max_pages=2)
    assert store.cursor and store.cursor["after"] and store.cursor["seen"]
    rest = store.run(make_connector(emulator))
    assert set(first) | set(rest) == set(emulator.returns) and not set(first) & set(rest)
    assert store.cursor["after"] is None


def test_an_order_with_more_returns_and_lines_than_a_page_is_completed(
        emulator: ShopifyEmulator, make_connector: MakeConnector) -> None:
    order = next(o for o in emulator.orders.values() if not any(r["orderId"] == o["id"] for r in
                                                                 emulator.returns.values()))
    base = emulator.orders[next(iter(emulator.orders))]["lines"][0]
    order["lines"] = [{**base, "id": str(77_000_000 + i), "fulfillmentLineItemId": str(88_000_000 + i),
                       "quantity": 1} for i in range(12)]
    for number in range(3):
        emulator.returns[str(9_400_000 + number)] = {
            "id": str(9_400_000 + number), "name": f"X-R{number}", "orderId": order["id"], "status": "REQUESTED",
            "createdAt": order["createdAt"], "updatedAt": order["updatedAt"], "closedAt": None,
            "requestApprovedAt": None, "decline": None, "tracking": None, "refunds": [],
            "lines": [{"id": f"{9_400_000 + number}{i:02d}", "lineItemId": line["id"],
                       "fulfillmentLineItemId": line["fulfillmentLineItemId"], "quantity": 1, "processed": 0,
                       "refunded": 0, "returnReason": "UNWANTED", "returnReasonNote": "", "customerNote": None}
                      for i, line in enumerate(order["lines"][:7])]}
    store = InMemoryStore()
    store.run(make_connector(emulator))
    held = [store.returns[str(9_400_000 + n)] for n in range(3)]
    assert [len(r.lines) for r in held] == [7, 7, 7]
    assert len(store.orders[order["id"]].lines) == 12
    assert all(line.order_line_external_id for r in held for line in r.lines)


# --- decisions: each kind's exact mutations -----------------------------------------------------------

@pytest.mark.parametrize("kind, status, mutations, effects", [
    (DecisionKind.ACCEPT, "REQUESTED", ["returnApproveRequest", "returnProcess", "returnClose"],
     ["approve", "process", "close"]),
    (DecisionKind.ACCEPT, "OPEN", ["returnProcess", "returnClose"], ["process", "close"]),
    (DecisionKind.KEEP, "REQUESTED", ["returnApproveRequest", "returnProcess", "returnClose"],
     ["approve", "process", "close"]),
    (DecisionKind.REJECT, "REQUESTED", ["returnDeclineRequest"], ["decline"]),
    (DecisionKind.REJECT, "OPEN", ["orderUpdate", "returnClose"], ["order_note", "close"]),
    (DecisionKind.REPAIR, "REQUESTED", ["returnApproveRequest", "returnProcess", "orderUpdate", "returnClose"],
     ["approve", "process", "order_note", "close"]),
    (DecisionKind.EXCHANGE, "OPEN", ["returnProcess", "orderUpdate", "returnClose"],
     ["process", "order_note", "close"]),
    (DecisionKind.CANCEL, "REQUESTED", ["returnCancel"], ["cancel"]),
    (DecisionKind.CANCEL, "OPEN", ["returnCancel"], ["cancel"]),
], ids=lambda value: value.value if isinstance(value, DecisionKind) else None)
def test_each_decision_is_its_documented_mutations(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore, kind: DecisionKind,
        status: str, mutations: list[str], effects: list[str]) -> None:
    record = open_return(emulator, stored, status)
    emulator.requests.clear()
    result = carry_out(make_connector(emulator), act_for(record, kind, note="Scratched lens"))
    assert result.status is PushStatus.PUSHED, result
    assert operations(emulator) == mutations
    assert [effect[0] for effect in emulator.acts_applied()] == effects
    assert all(effect[1] in (record.external_id, record.order_external_id) for effect in emulator.acts_applied())


def test_accept_refunds_and_restocks_the_decided_units_of_every_line_in_one_process(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(emulator, stored, "REQUESTED", lines=2)
    result = carry_out(make_connector(emulator, restock_location_id="72384598321"), act_for(record, DecisionKind.ACCEPT))
    processed = [e for e in emulator.acts_applied() if e[0] == "process"]
    assert [(e[2], int(e[3]), e[4], e[5]) for e in processed] == [
        (line.external_id, line.quantity, "restocked", "refunded") for line in record.lines]
    shop = emulator.returns[record.external_id]
    assert shop["status"] == "CLOSED" and len(shop["refunds"]) == 1
    assert result.result and result.result["refund_amount"] == sum(
        (line.unit_price or 0) * line.quantity for line in record.lines)
    body = next(r.body for r in emulator.requests if "returnProcess" in r.body["query"])
    dispositions = [d for line in body["variables"]["input"]["returnLineItems"] for d in line["dispositions"]]
    assert {d["locationId"] for d in dispositions} == {"gid://shopify/Location/72384598321"}


def test_keep_refunds_without_restocking(emulator: ShopifyEmulator, make_connector: MakeConnector,
                                         stored: InMemoryStore) -> None:
    record = open_return(emulator, stored, "OPEN")
    carry_out(make_connector(emulator), act_for(record, DecisionKind.KEEP))
    assert {(e[4], e[5]) for e in emulator.acts_applied() if e[0] == "process"} == {("not_restocked", "refunded")}


def test_part_of_a_return_is_processed_and_the_return_stays_open(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(emulator, stored, "REQUESTED", lines=2)
    carry_out(make_connector(emulator), act_for(record, DecisionKind.ACCEPT, lines=[0], quantities=[1]))
    assert [e[0] for e in emulator.acts_applied()] == ["approve", "process"]
    assert emulator.returns[record.external_id]["status"] == "OPEN", "closed only once every unit is processed"


def test_a_reject_sends_the_configured_reason_the_note_and_notify_customer(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(emulator, stored, "REQUESTED")
    connector = make_connector(emulator, decline_reason="FINAL_SALE", notify_customer=True)
    carry_out(connector, act_for(record, DecisionKind.REJECT, note="Sale items are final"))
    body = next(r.body for r in emulator.requests if "returnDeclineRequest" in r.body["query"])
    assert body["variables"]["input"] == {"id": f"gid://shopify/Return/{record.external_id}",
                                          "declineReason": "FINAL_SALE", "declineNote": "Sale items are final",
                                          "notifyCustomer": True}
    assert emulator.returns[record.external_id]["decline"] == {"reason": "FINAL_SALE", "note": "Sale items are final"}


def test_before_2025_07_accept_refunds_with_return_refund(
        clock: VirtualClock, make_connector: MakeConnector) -> None:
    emulator = ShopifyEmulator(seed=3, n_orders=24, clock=clock)
    store = InMemoryStore()
    connector = make_connector(emulator, api_version="2024-10")
    store.run(connector)
    assert all("/admin/api/2024-10/" in r.path for r in emulator.requests)
    assert all(line.channel_reason in ("SIZE_TOO_SMALL", "SIZE_TOO_LARGE", "DEFECTIVE", "NOT_AS_DESCRIBED",
                                       "WRONG_ITEM", "UNWANTED", "COLOR", "STYLE", "OTHER")
               for r in store.returns.values() for line in r.lines), "no reason definitions before 2026-01"
    record = open_return(emulator, store, "REQUESTED")
    emulator.requests.clear()
    result = carry_out(connector, act_for(record, DecisionKind.ACCEPT))
    assert result.status is PushStatus.PUSHED, result
    assert operations(emulator) == ["returnApproveRequest", "returnRefund", "returnClose"]
    assert [e[0] for e in emulator.acts_applied()] == ["approve", "refund", "close"]


def test_cancel_after_processing_fails_with_the_reason_and_sends_nothing(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(emulator, stored, "OPEN", lines=2)
    connector = make_connector(emulator)
    carry_out(connector, act_for(record, DecisionKind.ACCEPT, lines=[0], quantities=[1]))
    emulator.requests.clear()
    result = carry_out(connector, act_for(record, DecisionKind.CANCEL, lines=[1]))
    assert result.status is PushStatus.FAILED and result.detail and "processed" in result.detail
    assert operations(emulator) == []


def test_a_user_error_fails_the_decision_with_shopifys_message(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    record = open_return(emulator, stored, "REQUESTED")
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.REJECT, note="x" * 600))
    assert result.status is PushStatus.PUSHED, "the note is cut to Shopify's 500 characters, not refused"
    other = open_return(emulator, stored, "OPEN")
    monkeypatch.setattr(emulator, "_process", lambda info, input: {"return": None, "userErrors": [
        {"field": ["input"], "message": "The payment gateway declined the refund", "code": "INVALID"}]})
    refused = carry_out(make_connector(emulator), act_for(other, DecisionKind.ACCEPT))
    assert refused.status is PushStatus.FAILED, refused
    assert "refused the accept decision" in (refused.detail or "")
    assert "The payment gateway declined the refund (INVALID)" in (refused.detail or "")
    declined = next(r for r in stored.returns.values() if shop_status(emulator, r) == "DECLINED")
    failed = carry_out(make_connector(emulator), act_for(declined, DecisionKind.CANCEL))
    assert failed.status is PushStatus.FAILED and "declined" in (failed.detail or "")


def test_already_declined_or_closed_on_shopify_is_done(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    declined = next(r for r in stored.returns.values() if shop_status(emulator, r) == "DECLINED")
    result = carry_out(make_connector(emulator), act_for(declined, DecisionKind.REJECT))
    assert result.status is PushStatus.PUSHED and (result.detail or "").startswith("already applied")
    closed = next(r for r in stored.returns.values() if shop_status(emulator, r) == "CLOSED")
    again = carry_out(make_connector(emulator), act_for(closed, DecisionKind.ACCEPT))
    assert again.status is PushStatus.PUSHED and "closed" in (again.detail or "")
    assert emulator.acts_applied() == []


# --- exactly once under lost answers ------------------------------------------------------------------

@pytest.mark.parametrize("lost_after", [0, 1, 2], ids=["approve-lost", "process-lost", "close-lost"])
def test_a_lost_answer_never_does_an_act_twice(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore, lost_after: int) -> None:
    record = open_return(emulator, stored, "REQUESTED", lines=2)
    connector = make_connector(emulator)
    first = act_for(record, DecisionKind.ACCEPT)
    emulator.inject("lost", method="POST", after=lost_after)
    assert carry_out(connector, first).status is PushStatus.RETRY
    again = carry_out(connector, act_for(record, DecisionKind.ACCEPT, key=first.key, attempt=2))
    assert again.status is PushStatus.PUSHED, again
    applied = emulator.acts_applied()
    assert len(applied) == len(set(applied)) and [e[0] for e in applied].count("process") == len(record.lines)
    assert len(emulator.returns[record.external_id]["refunds"]) == 1, "refunded once"
    assert emulator.returns[record.external_id]["status"] == "CLOSED"


def test_a_lost_answer_of_a_query_is_no_lost_write(
        emulator: ShopifyEmulator, make_connector: MakeConnector) -> None:
    emulator.lose_answer("POST", "graphql.json")
    store = InMemoryStore()
    store.run(make_connector(emulator))
    assert set(store.returns) == set(emulator.returns), "a query is read again; the lost fault waits for a write"
    assert len(emulator.faults) == 1 and emulator.faults[0].times == 1


# --- the cost bucket ----------------------------------------------------------------------------------

def test_a_small_bucket_is_paced_before_sending_and_never_throttled(
        clock: VirtualClock, make_connector: MakeConnector) -> None:
    emulator = ShopifyEmulator(seed=3, n_orders=24, clock=clock, bucket_size=1000, restore_rate=50)
    store = InMemoryStore()
    connector = make_connector(emulator)
    store.run(connector)
    assert set(store.returns) == set(emulator.returns)
    assert emulator.throttled == 0 and clock.sleeps, "the connector waited before the bucket ran dry"
    assert connector.client.waits == clock.sleeps
    assert clock.now - 1000.0 < 2 * len(emulator.costs) * ORDERS_PAGE_COST_DEFINED / 50, "waits no longer than needed"


def test_throttled_waits_exactly_what_the_restore_rate_needs_and_never_twice_in_a_row(
        clock: VirtualClock, make_connector: MakeConnector) -> None:
    emulator = ShopifyEmulator(seed=3, n_orders=24, clock=clock, bucket_size=1000, restore_rate=50)
    emulator.bucket = Bucket(1000, 50, clock, available=100)
    store = InMemoryStore()
    store.run(make_connector(emulator))
    assert emulator.answers[:2] == ["throttled", "ok"]
    assert clock.sleeps[0] == pytest.approx((ORDERS_PAGE_COST_DEFINED - 100) / 50)
    assert "throttled,throttled" not in ",".join(emulator.answers)
    assert set(store.returns) == set(emulator.returns)


def test_a_throttled_mutation_is_sent_again_and_done_once(
        clock: VirtualClock, emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(emulator, stored, "REQUESTED")
    emulator.bucket.available = 5
    emulator.bucket.restore_rate = 1
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.CANCEL))
    assert result.status is PushStatus.PUSHED and emulator.acts_applied() == [("cancel", record.external_id)]
    assert "throttled" in emulator.answers and "throttled,throttled" not in ",".join(emulator.answers)


# --- the back office ----------------------------------------------------------------------------------

def hold_request(record: Return, attempt: int = 1) -> HoldRequest:
    return HoldRequest(hold_id=1, key=f"bol/{record.external_id}", source_channel="bol", source_title="Bol.com",
                       ret=record, attempt=attempt, requested_at=datetime.now(timezone.utc))


def test_a_held_return_is_a_draft_order_never_made_twice(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record, connector = next(iter(stored.returns.values())), make_connector(emulator)
    emulator.lose_answer("POST", "graphql.json")
    with pytest.raises(Exception, match="may have been applied"):
        connector.hold_return(hold_request(record))
    again = connector.hold_return(hold_request(record, attempt=2))
    assert again.status is PushStatus.PUSHED and (again.detail or "").startswith("already")
    assert emulator.held_returns() == {f"bol/{record.external_id}": again.reference}
    (draft,) = emulator.drafts.values()
    assert "retsync-hold" in draft["tags"] and draft["lines"] and "Bol.com" in draft["note"]
    assert set(stored.run(make_connector(emulator))) <= set(emulator.returns), "a draft order is never pulled"


def test_a_lost_hold_is_found_even_before_shopifys_search_knows_the_draft(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record, connector = next(iter(stored.returns.values())), make_connector(emulator)
    emulator.search_lag = True
    emulator.lose_answer("POST", "graphql.json")
    with pytest.raises(Exception, match="may have been applied"):
        connector.hold_return(hold_request(record))
    again = connector.hold_return(hold_request(record, attempt=2))
    assert (again.detail or "").startswith("already") and len(emulator.drafts) == 1


def test_the_merchants_tag_and_note_are_read_back(
        emulator: ShopifyEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    connector = make_connector(emulator)
    first, second = (connector.hold_return(hold_request(r)).reference for r in list(stored.returns.values())[:2])
    assert first and second
    emulator.panel_decide(first, "reject", note="Worn and washed")
    decided = connector.held_decisions([first, second])
    assert list(decided) == [first], "an undecided draft is left out"
    assert (decided[first].kind, decided[first].note) == (DecisionKind.REJECT, "Worn and washed")


def test_a_wait_beyond_max_retry_after_is_left_to_the_next_run(
        clock: VirtualClock, make_connector: MakeConnector) -> None:
    emulator = ShopifyEmulator(seed=3, n_orders=24, clock=clock, bucket_size=1000, restore_rate=1)
    emulator.bucket = Bucket(1000, 1, clock, available=100)
    with pytest.raises(Exception, match="more than max_retry_after"):
        InMemoryStore().run(make_connector(emulator, max_retry_after="60s"))
    assert clock.sleeps == [] and emulator.answers == ["throttled"]


def test_a_return_it_cannot_read_is_set_aside_and_its_page_stored(
        emulator: ShopifyEmulator, make_connector: MakeConnector) -> None:
    poisoned = emulator.add_poison_return("quantity")
    odd = emulator.add_odd_return()
    pages = list(make_connector(emulator).pull(Stream.RETURNS, InMemoryStore().context()))
    aside = [item for page in pages for item in page.quarantined]
    assert [(item.kind, item.external_id) for item in aside] == [("return", poisoned)]
    assert "beyond" in aside[0].reason
    stored = {r.external_id: r for page in pages for r in page.returns}
    assert set(stored) == set(emulator.returns) - {poisoned}
    assert stored[odd].lines[0].order_line_external_id is None, "an unverified line names no order line"
    assert pages[-1].cursor and pages[-1].cursor["after"] is None, "the walk moved past it"
