"""The Allegro connector against the emulator, in-process: what gets stored, and what Allegro gets asked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from retsync.kit.contract import DecisionAct, PushStatus
from retsync.kit.model import DecisionKind, Return, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.allegro.client import BETA, PUBLIC
from retsync_connectors.allegro.connector import AllegroConnector
from retsync_connectors.allegro.emulator import AllegroEmulator
from retsync_connectors.allegro.mapping import map_return

from .conftest import NOW, MakeConnector

SEED, SIZE = 7, 400
DAY = 86400.0


@pytest.fixture
def emu() -> AllegroEmulator:
    return AllegroEmulator(seed=SEED, n_returns=SIZE)


def api_calls(emu: AllegroEmulator, method: str | None = None) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emu.requests
            if not r.path.startswith("/auth/") and (method is None or r.method == method)]


def writes(emu: AllegroEmulator) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.body) for r in emu.requests if r.method == "POST" and not r.path.startswith("/auth/")]


KEY = "5b0e3f4c-1d2a-4c8e-9f00-000000000001"


def stored(emu: AllegroEmulator, return_id: str) -> Return:
    """The return as retsync stores it after a pull (its lines name the checkout form's line items)."""
    entry = emu.return_entry(return_id)
    return map_return(entry, emu.checkout_form(entry["orderId"]))


def decision(emu: AllegroEmulator, return_id: str, kind: DecisionKind, *, note: str | None = None,
             attempt: int = 1, lines: list[int] | None = None, key: str = KEY) -> DecisionAct:
    """The act the outbox hands over for a decision on the whole return (or on the lines at `lines`)."""
    return act_for(stored(emu, return_id), kind, lines=lines, note=note, attempt=attempt, key=key)


# --- pull ----------------------------------------------------------------------------------


def test_a_backfill_stores_every_visible_return_with_its_order_lines(emu: AllegroEmulator,
                                                                     make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu))

    truth = emu.truth()
    assert set(store.returns) == truth["returns"]
    assert set(store.orders) == truth["orders"]
    assert len(store.written) == len(truth["returns"]), "each return once"
    for stored in store.returns.values():
        order = store.orders[stored.order_external_id]
        for line in stored.lines:
            assert line.order_line_external_id in {o.external_id for o in order.lines}
            assert line.unit_price and line.currency == "PLN"
    fulfilled = [r for r in store.returns.values() if r.handled_by_channel]
    assert fulfilled and all(r.extra["isFulfillment"] is True for r in fulfilled)


def test_customer_returns_are_asked_for_with_the_beta_media_type_and_big_pages(emu: AllegroEmulator,
                                                                              make_connector: MakeConnector) -> None:
    InMemoryStore().run(make_connector(emu))
    listing = [r for r in emu.requests if r.path == "/order/customer-returns"]
    assert listing and all(r.headers["accept"] == BETA and r.status == 200 for r in listing)
    assert {r.query["limit"] for r in listing} == {"1000"}
    forms = [r for r in emu.requests if r.path.startswith("/order/checkout-forms/")]
    assert forms and all(r.headers["accept"] == PUBLIC for r in forms)
    assert len(forms) == len({r.path for r in forms}), "each checkout form fetched once per pass"


def test_the_backfill_window_limits_the_first_pass(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    store.run(make_connector(emu), backfill_since=NOW - timedelta(days=30))
    assert 0 < len(store.returns) < len(emu.truth()["returns"])
    assert all(r.created_at >= NOW - timedelta(days=30) for r in store.returns.values())


def test_an_incremental_pass_picks_up_new_returns_and_status_changes(emu: AllegroEmulator,
                                                                    make_connector: MakeConnector) -> None:
    connector = make_connector(emu)
    store = InMemoryStore()
    store.run(connector)
    store.run(connector)
    assert store.written == [], "nothing changed, nothing re-stored"

    before = {key: r.channel_status for key, r in store.returns.items()}
    open_before = {key for key, r in store.returns.items()
                   if r.status in (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT, ReturnStatus.RECEIVED)}
    emu.advance(2 * DAY)
    emu.requests.clear()
    store.run(connector)

    truth = emu.truth()
    assert set(store.returns) == truth["returns"]
    new = truth["returns"] - set(before)
    assert new, "precondition: advancing time brought new returns"
    moved = {key for key in before if store.returns[key].channel_status != before[key]}
    assert moved and moved <= open_before, "only returns stored as open can change"
    for key in moved | new:
        assert store.returns[key].channel_status == emu.status_of(key)
    assert set(store.written) == moved | new
    rereads = [r for r in emu.requests if r.path == "/order/customer-returns" and "customerReturnId" in r.query]
    assert rereads, "open returns are re-read by id"


def test_a_pass_resumes_from_its_cursor(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    connector = make_connector(emu, page_size=50)
    store = InMemoryStore()
    store.run(connector, max_pages=2)
    assert store.cursor and store.cursor["offset"] == 100
    store.run(connector)
    assert set(store.returns) == emu.truth()["returns"]
    assert len(store.written) == len(emu.truth()["returns"]) - 100


def listings(emu: AllegroEmulator) -> list[dict[str, str]]:
    return [r.query for r in emu.requests if r.path == "/order/customer-returns" and "customerReturnId" not in r.query]


def test_a_cursor_stored_by_an_earlier_release_resumes_where_it_was(emu: AllegroEmulator,
                                                                   make_connector: MakeConnector) -> None:
    """Cursors stored before the typed cursor (`+00:00` dates, keys left out) are read with the same keys."""
    created_from = NOW - timedelta(days=200)
    store = InMemoryStore(cursor={"newest": (NOW - timedelta(days=100)).isoformat(),
                                  "created_from": created_from.isoformat(), "offset": 100})
    store.run(make_connector(emu, page_size=50))
    first = listings(emu)[0]
    assert first["offset"] == "100"
    assert first["createdAt.gte"] == created_from.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert store.cursor is not None and store.cursor["offset"] == 0 and store.cursor["last_pass"]
    assert set(store.cursor) == {"newest", "created_from", "offset", "last_pass"}


def test_after_a_whole_pass_the_next_starts_an_overlap_before_the_newest_return(
        emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    connector = make_connector(emu)
    store.run(connector)
    newest = max(r.created_at for r in store.returns.values())
    emu.requests.clear()
    store.run(connector)
    since = datetime.fromisoformat(listings(emu)[0]["createdAt.gte"])
    assert abs(since - (newest - timedelta(hours=1))) < timedelta(milliseconds=1)
    assert listings(emu)[0]["offset"] == "0"


@pytest.mark.parametrize("cursor", [{"offset": "many", "newest": "2026-01-01T00:00:00Z"},
                                    {"newest": "not a date"}, {"created_from": 17, "offset": -3}])
def test_an_unreadable_cursor_starts_from_the_backfill_date(emu: AllegroEmulator, make_connector: MakeConnector,
                                                            cursor: dict[str, object]) -> None:
    backfill = NOW - timedelta(days=30)
    store = InMemoryStore(cursor=dict(cursor))
    store.run(make_connector(emu), backfill_since=backfill)
    assert listings(emu)[0]["createdAt.gte"] == backfill.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert listings(emu)[0]["offset"] == "0"


def test_a_cursor_dated_in_year_9999_is_brought_back_to_now(emu: AllegroEmulator,
                                                            make_connector: MakeConnector) -> None:
    store = InMemoryStore(cursor={"newest": "9999-12-31T00:00:00+00:00"})
    store.run(make_connector(emu))
    since = datetime.fromisoformat(listings(emu)[0]["createdAt.gte"])
    assert since <= store.now - timedelta(hours=1)
    assert store.cursor is not None and datetime.fromisoformat(store.cursor["newest"]) <= store.now


# --- decisions -----------------------------------------------------------------------------


def open_return(emu: AllegroEmulator, n: int = 0, *, items: int | None = None) -> str:
    candidates = [r for r in emu.open_return_ids() if items is None or len(emu.return_entry(r)["items"]) == items]
    emu.requests.clear()
    return candidates[n]


def line_ids(act: DecisionAct) -> list[str | None]:
    return [line.order_line_external_id for line in act.lines]


def test_accept_refunds_the_line_reads_it_back_and_claims_the_commission(emu: AllegroEmulator,
                                                                         make_connector: MakeConnector) -> None:
    return_id = open_return(emu, items=1)
    act = decision(emu, return_id, DecisionKind.ACCEPT)
    result = carry_out(make_connector(emu), act)

    assert result.status is PushStatus.PUSHED, result.detail
    sent = writes(emu)
    assert [path for _, path, _ in sent] == ["/payments/refunds", "/order/refund-claims"]
    refund_body = sent[0][2]
    assert refund_body["commandId"] == act.key and refund_body["reason"] == "REFUND"
    assert refund_body["lineItems"] == [{"id": line_ids(act)[0], "type": "QUANTITY", "quantity": act.quantity}]
    assert refund_body["order"]["id"] == act.order_external_id
    assert sent[1][2] == {"lineItem": {"id": line_ids(act)[0]}, "quantity": act.quantity}
    assert ("GET", "/payments/refunds") in api_calls(emu, "GET")
    assert result.result is not None
    assert result.result["refund_status"] == "SUCCESS" and result.result["refund_amount"] > 0
    assert result.result["currency"] == "PLN" and result.result["claims"][0]["claim_id"]
    assert result.reference == result.result["refund_id"]
    assert emu.status_of(return_id) == "FINISHED"


def test_a_whole_return_accept_is_one_refund_with_every_line_and_a_claim_per_line(
        emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    return_id = open_return(emu, items=2)
    act = decision(emu, return_id, DecisionKind.ACCEPT)
    assert len(act.lines) == 2
    result = carry_out(make_connector(emu), act)

    assert result.status is PushStatus.PUSHED, result.detail
    sent = writes(emu)
    assert [path for _, path, _ in sent] == ["/payments/refunds", "/order/refund-claims", "/order/refund-claims"]
    assert sent[0][2]["commandId"] == act.key
    assert sent[0][2]["lineItems"] == [{"id": line.order_line_external_id, "type": "QUANTITY",
                                        "quantity": line.quantity} for line in act.lines]
    assert [body["lineItem"]["id"] for _, _, body in sent[1:]] == line_ids(act)
    refunds = [entry for entry in emu.acts_applied() if entry[0] == "refund"]
    assert [entry[2] for entry in refunds] == line_ids(act), "one refund holding both line items"
    assert len({entry[1] for entry in emu.applied if entry[0] == "refund"}) == 1, "one refund id for both lines"
    assert result.result is not None and [c["line_item_id"] for c in result.result["claims"]] == line_ids(act)
    assert "commission claims" in (result.detail or "")


@pytest.mark.parametrize("fault", ["lost", "truncated"])
def test_a_whole_return_refund_whose_answer_was_lost_is_found_on_the_retry(
        emu: AllegroEmulator, make_connector: MakeConnector, fault: str) -> None:
    connector = make_connector(emu)
    return_id = open_return(emu, items=2)
    emu.inject(fault, path="/payments/refunds", method="POST")
    first = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT))
    assert first.status is PushStatus.RETRY, "the answer was lost: the outbox tries again later"

    second = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT, attempt=2))
    assert second.status is PushStatus.PUSHED and "already applied" in (second.detail or ""), second.detail
    assert [path for _, path, _ in writes(emu)].count("/payments/refunds") == 1
    applied = emu.acts_applied()
    assert len(applied) == len(set(applied)), applied
    assert [entry[0] for entry in applied] == ["refund", "refund", "claim", "claim"]


def test_a_claim_whose_answer_was_lost_is_found_not_claimed_again(emu: AllegroEmulator,
                                                                  make_connector: MakeConnector) -> None:
    connector = make_connector(emu)
    return_id = open_return(emu, items=2)
    emu.inject("lost", path="/order/refund-claims", method="POST", after=1)
    first = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT))
    assert first.status is PushStatus.RETRY and "Allegro refunded" in (first.detail or ""), first.detail

    second = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT, attempt=2))
    assert second.status is PushStatus.PUSHED, second.detail
    applied = emu.acts_applied()
    assert len(applied) == len(set(applied)), applied
    assert [entry[0] for entry in applied].count("claim") == 2


def test_only_the_lines_not_refunded_in_allegro_yet_are_refunded(emu: AllegroEmulator,
                                                                 make_connector: MakeConnector) -> None:
    return_id = open_return(emu, items=2)
    connector = make_connector(emu)
    kept = carry_out(connector, decision(emu, return_id, DecisionKind.KEEP, lines=[0],
                                         key="00000000-0000-4000-8000-00000000000c"))
    assert kept.status is PushStatus.PUSHED, kept.detail
    emu.requests.clear()
    act = decision(emu, return_id, DecisionKind.ACCEPT, key="00000000-0000-4000-8000-00000000000d")
    result = carry_out(connector, act)
    assert result.status is PushStatus.PUSHED, result.detail
    refunds = [body for _, path, body in writes(emu) if path == "/payments/refunds"]
    assert [[item["id"] for item in body["lineItems"]] for body in refunds] == [line_ids(act)[1:]]
    assert f"refunded before (refund {kept.reference})" in (result.detail or "")


def test_accept_without_commission_claims_only_refunds(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    result = carry_out(make_connector(emu, commission_claims=False),
                       decision(emu, open_return(emu), DecisionKind.ACCEPT))
    assert result.status is PushStatus.PUSHED
    assert [path for _, path, _ in writes(emu)] == ["/payments/refunds"]


def test_keep_is_a_refund_without_return(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    result = carry_out(make_connector(emu), decision(emu, open_return(emu), DecisionKind.KEEP))
    assert result.status is PushStatus.PUSHED, result.detail
    sent = writes(emu)
    assert [path for _, path, _ in sent] == ["/payments/refunds"]
    assert sent[0][2]["reason"] == "REFUND" and "bez zwrotu" in sent[0][2]["sellerComment"]


@pytest.mark.parametrize(("kind", "code"), [(DecisionKind.REJECT, "REFUND_REJECTED"),
                                            (DecisionKind.REPAIR, "ITEM_FIXED"),
                                            (DecisionKind.EXCHANGE, "NEW_ITEM_SENT")])
def test_reject_repair_and_exchange_are_rejections_with_the_note(emu: AllegroEmulator, make_connector: MakeConnector,
                                                                 kind: DecisionKind, code: str) -> None:
    return_id = open_return(emu)
    result = carry_out(make_connector(emu), decision(emu, return_id, kind, note="  Towar nosi ślady użytkowania. "))
    assert result.status is PushStatus.PUSHED, result.detail
    assert writes(emu) == [("POST", f"/order/customer-returns/{return_id}/rejection",
                            {"rejection": {"code": code, "reason": "Towar nosi ślady użytkowania."}})]
    rejection_request = next(r for r in emu.requests if r.method == "POST" and "/rejection" in r.path)
    assert rejection_request.headers["content-type"] == BETA and rejection_request.headers["accept"] == BETA
    assert emu.status_of(return_id) == "REJECTED"
    assert result.result == {"rejection_code": code, "return_status": "REJECTED"}


def test_a_whole_return_rejection_is_one_rejection(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    return_id = open_return(emu, items=2)
    result = carry_out(make_connector(emu), decision(emu, return_id, DecisionKind.REJECT, note="Brak metki."))
    assert result.status is PushStatus.PUSHED, result.detail
    assert [path for _, path, _ in writes(emu)] == [f"/order/customer-returns/{return_id}/rejection"]
    assert emu.acts_applied() == [("rejection", return_id)]


def test_cancel_is_unsupported_and_sends_nothing(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    result = carry_out(make_connector(emu), decision(emu, open_return(emu), DecisionKind.CANCEL))
    assert result.status is PushStatus.UNSUPPORTED and "cancel" in (result.detail or "")
    assert emu.requests == []


@pytest.mark.parametrize("kind", [DecisionKind.REJECT, DecisionKind.REPAIR, DecisionKind.EXCHANGE])
def test_a_rejection_needs_a_note_of_1_to_250_characters(kind: DecisionKind) -> None:
    assert "--note" in (AllegroConnector.decision_problem(kind, None) or "")
    assert AllegroConnector.decision_problem(kind, "   ")
    assert "250" in (AllegroConnector.decision_problem(kind, "x" * 251) or "")
    assert AllegroConnector.decision_problem(kind, "x" * 250) is None
    assert AllegroConnector.decision_problem(DecisionKind.ACCEPT, None) is None


def test_a_refund_whose_answer_was_lost_is_found_not_repeated(emu: AllegroEmulator,
                                                              make_connector: MakeConnector) -> None:
    connector = make_connector(emu)
    return_id = open_return(emu)
    emu.inject("truncated", path="/payments/refunds", method="POST")
    first = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT))
    assert first.status is PushStatus.RETRY, "the answer was lost: the outbox tries again later"

    second = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT, attempt=2))
    assert second.status is PushStatus.PUSHED and "already applied" in (second.detail or "")
    refunds = [entry for entry in emu.applied if entry[0] == "refund"]
    assert len(refunds) == 1, emu.applied
    assert [path for _, path, _ in writes(emu)].count("/payments/refunds") == 1


def test_the_same_command_id_never_refunds_twice(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    act = decision(emu, open_return(emu, items=2), DecisionKind.KEEP)
    connector = make_connector(emu)
    units = {str(line.order_line_external_id): line.quantity for line in act.lines}
    body = connector._refund_body(act, emu.checkout_form(act.order_external_id or ""), units)
    first, again = connector.client.refund(body), connector.client.refund(body)
    assert first["id"] == again["id"]
    assert len([entry for entry in emu.applied if entry[0] == "refund"]) == 2, "one refund, two line items"


def test_a_line_refunded_in_allegro_already_is_recognised(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    return_id = open_return(emu)
    connector = make_connector(emu)
    assert carry_out(connector, decision(emu, return_id, DecisionKind.KEEP, key="00000000-0000-4000-8000-00000000000a")
                     ).status is PushStatus.PUSHED
    emu.requests.clear()
    again = carry_out(connector, decision(emu, return_id, DecisionKind.ACCEPT,
                                          key="00000000-0000-4000-8000-00000000000b"))
    assert again.status is PushStatus.PUSHED and "already applied" in (again.detail or "")
    assert "/payments/refunds" not in [path for _, path, _ in writes(emu)]
    assert len([entry for entry in emu.applied if entry[0] == "refund"]) == 1


def test_an_already_rejected_return_is_recognised(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    return_id = open_return(emu)
    connector = make_connector(emu)
    carry_out(connector, decision(emu, return_id, DecisionKind.REJECT, note="Brak oryginalnego opakowania."))
    emu.requests.clear()
    again = carry_out(connector, decision(emu, return_id, DecisionKind.REJECT, note="Brak oryginalnego opakowania.",
                                          attempt=2))
    assert again.status is PushStatus.PUSHED and "already applied" in (again.detail or "")
    assert writes(emu) == []
    assert len([entry for entry in emu.applied if entry[0] == "rejection"]) == 1


def test_a_refused_rejection_fails_with_allegros_words(emu: AllegroEmulator, make_connector: MakeConnector) -> None:
    finished = next(r for r in emu.truth()["returns"] if emu.status_of(r) == "FINISHED")
    result = carry_out(make_connector(emu), decision(emu, finished, DecisionKind.REJECT, note="Za późno."))
    assert result.status is PushStatus.FAILED
    assert "already been refunded" in (result.detail or "")
    assert len(writes(emu)) == 1, "a 422 is not retried"


def test_a_decision_that_cannot_be_sent_now_is_retried_later(emu: AllegroEmulator,
                                                             make_connector: MakeConnector) -> None:
    act = decision(emu, open_return(emu), DecisionKind.ACCEPT)
    emu.inject("status", status=503, times=None, path="/payments/refunds", method="POST")
    result = carry_out(make_connector(emu), act)
    assert result.status is PushStatus.RETRY
    assert emu.applied == []
    assert "not repeated" in (result.detail or ""), "a write that may have reached Allegro is checked, not resent"


def _line_bought_twice(emu: AllegroEmulator) -> tuple[str, int]:
    """An open return and the index of a line whose line item was bought exactly twice."""
    for return_id in emu.open_return_ids():
        entry = emu.return_entry(return_id)
        bought = {item["offer"]["id"]: item["quantity"] for item in emu.checkout_form(entry["orderId"])["lineItems"]}
        for index, item in enumerate(entry["items"]):
            if bought.get(item["offerId"], 0) == 2:
                emu.requests.clear()
                return return_id, index
    raise AssertionError("the sandbox holds no line item bought twice")


def test_a_second_unit_returned_later_is_refunded_not_taken_for_the_first(emu: AllegroEmulator,
                                                                         make_connector: MakeConnector) -> None:
    """A buyer returns one of two units, later the other: the first refund covers one unit, so the second
    return's accept is a refund of its own, not "already applied"."""
    return_id, index = _line_bought_twice(emu)
    connector = make_connector(emu)
    first = carry_out(connector, act_for(stored(emu, return_id), DecisionKind.ACCEPT, lines=[index], quantities=[1],
                                         key="00000000-0000-4000-8000-0000000000a1"))
    assert first.status is PushStatus.PUSHED, first.detail
    second = carry_out(connector, act_for(stored(emu, return_id), DecisionKind.ACCEPT, lines=[index], quantities=[1],
                                          key="00000000-0000-4000-8000-0000000000a2"))
    assert second.status is PushStatus.PUSHED and "already applied" not in (second.detail or ""), second.detail
    assert second.reference != first.reference
    refunds = [body for _, path, body in writes(emu) if path == "/payments/refunds"]
    assert [[item["quantity"] for item in body["lineItems"]] for body in refunds] == [[1], [1]]
    third = carry_out(connector, act_for(stored(emu, return_id), DecisionKind.ACCEPT, lines=[index], quantities=[1],
                                         key="00000000-0000-4000-8000-0000000000a3"))
    assert third.status is PushStatus.PUSHED and "already applied" in (third.detail or ""), \
        "every unit bought is refunded: a third accept finds the refunds instead of paying again"
