"""The connector against its sandbox, without a database: the returns walk and its cursor, the orders brought for
linking, the marketplace behind each return, and every decision's exact calls as the outbox runs them
(`carry_out`: what raising means is the outbox's table)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from retsync.kit.contract import PushStatus
from retsync.kit.model import DecisionKind, Return, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.channable.connector import ChannableConnector, ChannableSettings
from retsync_connectors.channable.emulator import ChannableEmulator
from retsync_connectors.channable.sandbox_data import COMPANY_ID, MARKETPLACES, PROJECT_ID

from .conftest import MakeConnector

V1 = f"/v1/companies/{COMPANY_ID}/projects/{PROJECT_ID}"
WORDS = {DecisionKind.ACCEPT: "accepted", DecisionKind.REJECT: "rejected", DecisionKind.REPAIR: "repaired",
         DecisionKind.EXCHANGE: "exchanged", DecisionKind.KEEP: "keeps", DecisionKind.CANCEL: "cancelled"}


def _writes(emulator: ChannableEmulator) -> list[tuple[str, str, object]]:
    return [(r.method, r.path, r.body) for r in emulator.requests if r.method != "GET"]


def _calls(emulator: ChannableEmulator, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests[since:]]


def _open(store: InMemoryStore, skip: int = 0) -> Return:
    found = [r for r in store.returns.values() if r.channel_status == "new"]
    return sorted(found, key=lambda r: int(r.external_id))[skip]


def _parsed(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


@pytest.fixture
def stored(emulator: ChannableEmulator, make_connector: MakeConnector) -> InMemoryStore:
    store = InMemoryStore()
    store.run(make_connector(emulator))
    return store


# --- pull ---------------------------------------------------------------------------------------

def test_a_backfill_pages_by_offset_until_a_short_page(emulator: ChannableEmulator, stored: InMemoryStore) -> None:
    assert set(stored.returns) == {str(i) for i in emulator.returns}
    pages = [r for r in emulator.requests if r.path == f"{V1}/returns"]
    assert [(r.query["offset"], r.query["limit"]) for r in pages] == [("0", "100"), ("100", "100")]
    assert len({r.query["last_modified_after"] for r in pages}) == 1, "one walk, one query start"
    assert stored.pages == 2


def test_the_orders_the_returns_name_are_brought_once_and_lines_link_to_their_products(
        emulator: ChannableEmulator, stored: InMemoryStore) -> None:
    named = {r.order_external_id for r in stored.returns.values()}
    assert named == set(stored.orders) == {str(i) for i in emulator.orders}
    fetched = [r.path for r in emulator.requests if "/orders/" in r.path]
    assert len(fetched) == len(set(fetched)) == len(emulator.orders)
    for record in stored.returns.values():
        (line,) = record.lines
        order = stored.orders[record.order_external_id or ""]
        product = next(o for o in order.lines if o.external_id == line.order_line_external_id)
        assert product.ean == line.ean and line.quantity <= product.quantity


def test_a_documented_return_names_its_marketplace_and_keeps_the_test_marks(stored: InMemoryStore,
                                                                          emulator: ChannableEmulator) -> None:
    markets = {r.marketplace for r in stored.returns.values()}
    assert markets == set(MARKETPLACES)
    for number, raw in emulator.returns.items():
        mapped = stored.returns[str(number)]
        meta = raw["data"]["meta"]
        assert mapped.extra["channel_return_id"] == meta["channel_return_id"]
        assert mapped.extra["channel_order_id"] == meta["channel_order_id"]
        assert mapped.extra.get("is_test_return", False) is meta["is_test_return"]
        assert mapped.extra.get("is_demo_return", False) is meta["is_demo_return"]
    assert any(r.extra.get("is_test_return") for r in stored.returns.values())
    assert any(r.extra.get("is_demo_return") for r in stored.returns.values())


def test_returns_decided_at_the_marketplace_arrive_decided(stored: InMemoryStore) -> None:
    by_status = {}
    for record in stored.returns.values():
        by_status.setdefault(record.channel_status, record)
    assert set(by_status) == {"new", "processing", "manual", "accepted", "rejected", "keeps", "repaired",
                              "exchanged", "cancelled"}
    for word, kind in WORDS.items():
        record = by_status[kind]
        assert record.lines[0].channel_decision is word and record.decided_at is not None
    for word in ("new", "processing", "manual"):
        assert by_status[word].lines[0].channel_decision is None
        assert by_status[word].status in (ReturnStatus.REQUESTED, ReturnStatus.RECEIVED)
    assert by_status["cancelled"].status is ReturnStatus.CANCELLED


def test_a_pull_cut_short_resumes_at_the_offset_after_the_last_page_stored(
        emulator: ChannableEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    first = store.run(make_connector(emulator), max_pages=1)
    assert store.cursor is not None and store.cursor["offset"] == 100 and store.cursor["seen"]
    rest = store.run(make_connector(emulator))
    assert set(first) | set(rest) == {str(i) for i in emulator.returns} and not set(first) & set(rest)
    assert store.cursor["offset"] == 0 and store.cursor["seen"] is None


def test_the_next_walk_starts_at_the_newest_change_less_the_overlap(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    newest = max(_parsed(r["modified"]) for r in emulator.returns.values())
    assert _parsed(stored.cursor["since"]) == newest - timedelta(hours=1)
    record = _open(stored)
    assert carry_out(make_connector(emulator), act_for(record, DecisionKind.ACCEPT)).status is PushStatus.PUSHED
    again = stored.run(make_connector(emulator))
    overlapping = {k for k, r in emulator.returns.items() if _parsed(r["modified"]) >= newest - timedelta(hours=1)}
    assert set(again) == {record.external_id} | {str(k) for k in overlapping}, "only what changed since is read"
    assert stored.returns[record.external_id].lines[0].channel_decision is DecisionKind.ACCEPT


def test_a_return_dated_in_year_9999_never_moves_the_cursor_past_the_pull(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    next(iter(emulator.returns.values()))["modified"] = "9999-12-31T23:59:59+00:00"
    stored.run(make_connector(emulator))
    assert _parsed(stored.cursor["since"]) <= datetime.now(timezone.utc)
    new = emulator.add_odd_return()
    assert new in stored.run(make_connector(emulator)), "later returns are still read"


def test_a_poisoned_return_is_set_aside_and_the_rest_of_its_page_stored(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    poisoned, fine = emulator.add_poison_return("quantity"), emulator.add_odd_return()
    written = stored.run(make_connector(emulator))
    assert fine in written and poisoned not in written


def test_an_order_channable_does_not_know_is_left_out_not_a_failed_page(
        emulator: ChannableEmulator, make_connector: MakeConnector) -> None:
    lost = next(iter(emulator.orders))
    del emulator.orders[lost]
    store = InMemoryStore()
    store.run(make_connector(emulator))
    assert str(lost) not in store.orders and len(store.returns) == len(emulator.returns)


def test_a_test_return_made_through_the_api_is_pulled_marked(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    connector = make_connector(emulator)
    answer = connector.client.http.json("POST", f"{V1}/returns/test", json={"order_id": next(iter(emulator.orders))})
    number = answer["data"][0]["id"]
    assert number in stored.run(connector)
    assert stored.returns[number].extra["is_test_return"] is True


def test_channable_is_paced_below_its_limit_and_a_429_pauses_the_channel(
        emulator: ChannableEmulator, make_connector: MakeConnector, waits: list[float]) -> None:
    settings = ChannableSettings(api_token="t" * 20, company_id=1, project_id=2, connector="channable")
    assert settings.requests_per_second is not None and settings.requests_per_second < 4
    emulator.inject("status", status=429, times=1)
    store = InMemoryStore()
    store.run(make_connector(emulator))
    assert len(store.returns) == len(emulator.returns)
    assert waits and 0.9 < max(waits) <= 1.0, "a 429 without Retry-After pauses the channel for the bucket to drain"


# --- decision acts --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(WORDS), ids=[k.value for k in WORDS])
def test_each_decision_is_one_status_change(emulator: ChannableEmulator, make_connector: MakeConnector,
                                            stored: InMemoryStore, kind: DecisionKind) -> None:
    record = _open(stored)
    before = len(emulator.requests)
    result = carry_out(make_connector(emulator), act_for(record, kind))
    assert result.status is PushStatus.PUSHED and result.reference == record.external_id, result
    assert _calls(emulator, before) == [("GET", f"{V1}/returns/{record.external_id}"),
                                        ("POST", f"{V1}/returns/{record.external_id}/status")]
    assert emulator.requests[-1].body == {"status": WORDS[kind]}
    assert emulator.acts_applied() == [(WORDS[kind], record.external_id)]
    assert emulator.returns[int(record.external_id)]["status"] == WORDS[kind]


def test_an_act_whose_answer_was_lost_is_found_on_the_retry(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record, connector = _open(stored), make_connector(emulator)
    first = act_for(record, DecisionKind.ACCEPT)
    emulator.lose_answer("POST", "/status")
    assert carry_out(connector, first).status is PushStatus.RETRY
    before = len(emulator.requests)
    again = carry_out(connector, act_for(record, DecisionKind.ACCEPT, key=first.key, attempt=2))
    assert again.status is PushStatus.PUSHED and again.detail and again.detail.startswith("already applied")
    assert _calls(emulator, before) == [("GET", f"{V1}/returns/{record.external_id}")], "looked up, not sent again"
    assert emulator.acts_applied() == [("accepted", record.external_id)]


def test_a_retry_that_finds_the_return_undecided_sends_it(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = _open(stored)
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.REJECT, attempt=2))
    assert result.status is PushStatus.PUSHED
    assert [c[0] for c in _calls(emulator)[-2:]] == ["GET", "POST"]
    assert emulator.acts_applied() == [("rejected", record.external_id)]


def test_a_return_already_in_that_status_is_done_without_a_change(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = _open(stored)
    emulator.returns[int(record.external_id)]["status"] = "keeps"  # decided in Channable's own panel meanwhile
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.KEEP))
    assert result.status is PushStatus.PUSHED and result.detail and result.detail.startswith("already applied")
    assert not _writes(emulator) and emulator.acts_applied() == []


def test_a_409_already_in_that_status_is_done(emulator: ChannableEmulator, make_connector: MakeConnector,
                                              stored: InMemoryStore) -> None:
    record, connector = _open(stored), make_connector(emulator)
    read = connector.client.return_

    def read_then_panel(return_id: str) -> dict[str, object]:
        found = read(return_id)
        emulator.returns[int(return_id)]["status"] = "keeps"  # set in Channable's panel between read and change
        return found

    connector.client.return_ = read_then_panel  # type: ignore[method-assign]
    result = carry_out(connector, act_for(record, DecisionKind.KEEP))
    assert result.status is PushStatus.PUSHED and result.detail and result.detail.startswith("already applied")
    assert [r.status for r in emulator.requests if r.method == "POST"] == [409]
    assert emulator.acts_applied() == []


def test_a_decision_on_fewer_units_than_the_return_holds_is_refused_unsent(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = next(r for r in stored.returns.values() if r.channel_status == "new" and r.lines[0].quantity > 1)
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.ACCEPT, quantities=[1]))
    assert result.status is PushStatus.FAILED and result.detail and "covers 1" in result.detail
    assert not _writes(emulator) and emulator.acts_applied() == []


def test_a_409_not_allowed_fails_at_once_with_channables_words(
        emulator: ChannableEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = _open(stored)
    emulator.returns[int(record.external_id)]["status"] = "accepted"
    before = len(emulator.requests)
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.REJECT))
    assert result.status is PushStatus.FAILED, result
    assert result.detail and "refused the reject decision" in result.detail
    assert "cannot be changed from accepted to rejected" in result.detail
    assert _calls(emulator, before) == [("GET", f"{V1}/returns/{record.external_id}"),
                                        ("POST", f"{V1}/returns/{record.external_id}/status"),
                                        ("GET", f"{V1}/returns/{record.external_id}")], "sent once, never retried"
    assert emulator.acts_applied() == []


def test_every_decision_is_taken() -> None:
    caps = ChannableConnector.capabilities
    assert all(caps.supports(kind) for kind in DecisionKind) and not caps.unsupported
