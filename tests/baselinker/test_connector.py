"""The connector against its sandbox without a database: the backfill and the journal, the journal's horizon,
Allegro's mirrored returns, BaseLinker's pace, and each decision's exact calls as the outbox runs them
(`carry_out`: what raising means is the outbox's table), a lost answer never doing an act twice."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from structlog.testing import capture_logs

from retsync.kit.contract import PushStatus, Stream
from retsync.kit.http import TransientError
from retsync.kit.model import DecisionKind, Return, ReturnStatus
from retsync.testing.clock import VirtualClock
from retsync.testing.memory import InMemoryStore, act_for, carry_out
from retsync_connectors.baselinker.connector import BaseLinkerConnector, BaseLinkerSettings
from retsync_connectors.baselinker.emulator import READS, BaseLinkerEmulator

MakeConnector = Callable[..., BaseLinkerConnector]
OPEN = (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT, ReturnStatus.RECEIVED)


def calls(emulator: BaseLinkerEmulator, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(method, parameters) of every request from `since` on."""
    found = []
    for logged in emulator.requests[since:]:
        form = parse_qs(str(logged.body or ""))
        found.append(((form.get("method") or [""])[0], json.loads((form.get("parameters") or ["{}"])[0])))
    return found


def writes(emulator: BaseLinkerEmulator, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(method, params) for method, params in calls(emulator, since) if method not in READS]


def open_return(store: InMemoryStore, lines: int = 1) -> Return:
    return next(r for r in sorted(store.returns.values(), key=lambda r: int(r.external_id))
                if r.status in OPEN and len(r.lines) >= lines)


@pytest.fixture
def stored(emulator: BaseLinkerEmulator, make_connector: MakeConnector) -> InMemoryStore:
    store = InMemoryStore()
    store.run(make_connector(emulator))
    return store


# --- pull ---------------------------------------------------------------------------------------

def test_the_first_run_walks_every_return_with_its_order(emulator: BaseLinkerEmulator, stored: InMemoryStore) -> None:
    assert set(stored.returns) == {str(i) for i in emulator.returns}
    assert {r.order_external_id for r in stored.returns.values()} <= set(stored.orders)
    assert stored.cursor is not None and stored.cursor["phase"] == "journal"
    methods = [method for method, _ in calls(emulator)]
    assert methods.count("getOrderReturns") == 1 and methods.count("getOrderReturnStatusList") == 1
    assert methods.count("getOrders") == len(stored.orders), "one getOrders per order (it takes one order_id)"


def test_statuses_are_kept_verbatim_beside_the_mapped_status(emulator: BaseLinkerEmulator,
                                                            stored: InMemoryStore) -> None:
    raw = next(r for r in emulator.returns.values() if r["status_id"] == 1003)
    mapped = stored.returns[str(raw["return_id"])]
    assert (mapped.status, mapped.channel_status) == (ReturnStatus.RECEIVED, "Otrzymany")
    assert mapped.extra["status_id"] == "1003"
    line, product = mapped.lines[0], raw["products"][0]
    assert line.order_line_external_id == str(product["order_product_id"]), "linked to the order's product line"
    assert line.order_line_external_id in {ol.external_id for ol in stored.orders[mapped.order_external_id].lines}


def test_an_unmapped_status_is_read_from_fulfillment_status(emulator: BaseLinkerEmulator,
                                                            make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    store.run(make_connector(emulator, statuses={}))
    raw = next(r for r in emulator.returns.values() if r["status_id"] == 1008)  # canceled: fulfillment_status 2
    assert store.returns[str(raw["return_id"])].status is ReturnStatus.CANCELLED
    assert store.returns[str(raw["return_id"])].channel_status == "Anulowany"


def test_a_backfill_cut_short_resumes_at_the_next_return_id(make_connector: MakeConnector, clock: VirtualClock) -> None:
    emulator = BaseLinkerEmulator(seed=4, n_returns=230, clock=clock)
    store = InMemoryStore()
    first = store.run(make_connector(emulator), max_pages=1)
    assert len(first) == 100 and store.cursor["phase"] == "backfill"
    assert store.cursor["id_from"] == max(int(i) for i in first) + 1
    rest = store.run(make_connector(emulator))
    assert set(first) | set(rest) == {str(i) for i in emulator.returns} and not set(first) & set(rest)
    assert store.cursor["phase"] == "journal"


def test_the_next_run_reads_the_journal_and_only_the_returns_it_names(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    changed = open_return(stored)
    emulator.m_setOrderReturnStatus({"return_id": int(changed.external_id), "status_id": 1003})
    new = emulator.add_odd_return()
    before = len(emulator.requests)
    written = stored.run(make_connector(emulator))
    assert {changed.external_id, new} <= set(written)
    assert stored.returns[changed.external_id].status is ReturnStatus.RECEIVED
    asked = [method for method, _ in calls(emulator, before)]
    assert "getOrderReturnJournalList" in asked and asked.count("getOrderReturns") == 1, asked
    assert stored.cursor["last_log_id"] == max(entry["id"] for entry in emulator.logs)
    again = len(emulator.requests)
    assert stored.run(make_connector(emulator)) == []
    assert [method for method, _ in calls(emulator, again)] == [
        "getOrderReturnStatusList", "getOrderReturnReasonsList", "getOrderReturnJournalList"]


def test_past_the_journals_three_days_a_date_from_walk_and_the_open_returns_catch_up(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    """The daemon was off for four days: the journal no longer holds what changed then, so its entries are not
    trusted alone; the returns created since the last read and the stored open ones are read again."""
    changed = open_return(stored)
    new = emulator.add_odd_return()
    emulator.m_setOrderReturnStatus({"return_id": int(changed.external_id), "status_id": 1007})
    for entry in emulator.logs[-2:]:  # their entries are older than the journal keeps
        entry["date"] -= 4 * 86400
    emulator.returns[int(new)]["date_add"] -= 4 * 86400 - 3600
    stored.cursor["journal_at"] = (stored.now - timedelta(days=4)).isoformat()
    before = len(emulator.requests)
    with capture_logs() as logs:
        written = stored.run(make_connector(emulator))
    assert any(entry["event"] == "baselinker_journal_gap" for entry in logs)
    assert {new, changed.external_id} <= set(written)
    assert stored.returns[changed.external_id].status is ReturnStatus.CLOSED
    walk = [params for method, params in calls(emulator, before) if method == "getOrderReturns"]
    assert walk[0]["date_from"] <= int((stored.now - timedelta(days=4, hours=1)).timestamp())
    assert stored.cursor["phase"] == "journal" and stored.cursor["journal_at"]


def test_returns_mirrored_from_allegro_are_skipped_where_skip_sources_says(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector) -> None:
    allegro = {str(i) for i, r in emulator.returns.items() if r["order_return_source"] == "allegro"}
    assert allegro
    everything, skipping = InMemoryStore(), InMemoryStore()
    everything.run(make_connector(emulator))
    assert allegro <= set(everything.returns)
    assert everything.returns[next(iter(allegro))].extra["source"] == "allegro"
    with capture_logs() as logs:
        skipping.run(make_connector(emulator, skip_sources=["Allegro"]))
    assert not allegro & set(skipping.returns) and set(skipping.returns) == set(everything.returns) - allegro
    assert any(entry["event"] == "baselinker_returns_skipped" for entry in logs)


def test_a_1000_return_backfill_never_hits_the_block(make_connector: MakeConnector, clock: VirtualClock) -> None:
    """A thousand returns are ten pages and a thousand orders: over 1,000 requests, far past one minute's 100.
    The pace (fake clock: the runtime's sleep moves it) keeps every minute under the limit, and says so."""
    emulator = BaseLinkerEmulator(seed=9, n_returns=1000, clock=clock, log_requests=False)
    # the default minute's budget, and a merchant's too-fast spacing: the budget still holds
    connector = make_connector(emulator, requests_per_second=10,
                               requests_per_minute=BaseLinkerSettings.model_fields["requests_per_minute"].default)
    store = InMemoryStore()
    start = clock.now
    with capture_logs() as logs:
        store.run(connector)
    assert len(store.returns) == 1000 and len(store.orders) == 1000
    assert emulator.blocks == 0, "the account was blocked"
    assert emulator.most_in_a_minute <= 90
    sent = 1000 + 10 + 2
    assert clock.now - start >= (sent - 90) / 90 * 60, "the minute's budget was what paced it"
    assert any(entry["event"] == "baselinker_paced" for entry in logs)
    assert any(entry["event"] == "baselinker_pull_paced" for entry in logs)


def test_the_pace_is_shared_by_the_pull_and_the_decisions(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, clock: VirtualClock) -> None:
    connector = make_connector(emulator, requests_per_minute=40)
    store = InMemoryStore()
    store.run(connector)  # 33 requests
    for ret in sorted(store.returns.values(), key=lambda r: int(r.external_id))[:12]:
        carry_out(connector, act_for(ret, DecisionKind.REJECT))
    assert emulator.blocks == 0 and emulator.most_in_a_minute <= 40


# --- decisions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, status, refund", [
    (DecisionKind.ACCEPT, 1004, True), (DecisionKind.KEEP, 1011, True), (DecisionKind.REJECT, 1005, False),
    (DecisionKind.REPAIR, 1009, False), (DecisionKind.EXCHANGE, 1010, False), (DecisionKind.CANCEL, 1008, False),
])
def test_each_decision_is_its_mapped_status_and_a_refund_where_configured(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, stored: InMemoryStore,
        kind: DecisionKind, status: int, refund: bool) -> None:
    ret = open_return(stored, lines=2)
    before = len(emulator.requests)
    result = carry_out(make_connector(emulator), act_for(ret, kind, note="checked"))
    assert result.status is PushStatus.PUSHED, result
    rid = int(ret.external_id)
    expected: list[tuple[str, dict[str, Any]]] = [
        ("setOrderReturnFields", {"return_id": rid, "admin_comments": f"[retsync {kind.value} "
                                  f"{emulator.refunds.get(rid, {}).get('external_refund_id', '')[:12]}] checked"}),
        ("setOrderReturnStatus", {"return_id": rid, "status_id": status})]
    if refund:
        amount = sum(p["price_brutto"] * p["quantity"] for p in emulator.returns[rid]["products"])
        sent = writes(emulator, before)
        assert sent[0][0] == "setOrderReturnRefund"
        assert sent[0][1]["order_refund_done"] == pytest.approx(amount)
        assert sent[0][1]["refund_comment"] == "checked" and sent[0][1]["external_refund_id"]
        expected.insert(0, sent[0])
    if not refund:  # the note's tag names the act's key
        expected[0][1]["admin_comments"] = writes(emulator, before)[0][1]["admin_comments"]
        assert expected[0][1]["admin_comments"].startswith(f"[retsync {kind.value} act-")
    assert writes(emulator, before) == expected
    assert emulator.returns[rid]["status_id"] == status
    assert emulator.returns[rid]["admin_comments"].endswith("checked")


def test_without_a_note_a_status_decision_is_one_request(emulator: BaseLinkerEmulator,
                                                         make_connector: MakeConnector, stored: InMemoryStore) -> None:
    ret = open_return(stored)
    before = len(emulator.requests)
    assert carry_out(make_connector(emulator), act_for(ret, DecisionKind.REJECT, note=None)).status is PushStatus.PUSHED
    assert calls(emulator, before) == [("setOrderReturnStatus", {"return_id": int(ret.external_id),
                                                                 "status_id": 1005})]


def test_a_partial_keep_refunds_only_the_decided_units(emulator: BaseLinkerEmulator, make_connector: MakeConnector,
                                                       stored: InMemoryStore) -> None:
    ret = open_return(stored, lines=2)
    before = len(emulator.requests)
    carry_out(make_connector(emulator), act_for(ret, DecisionKind.KEEP, lines=[1], quantities=[1]))
    product = emulator.returns[int(ret.external_id)]["products"][1]
    assert writes(emulator, before)[0][1]["order_refund_done"] == pytest.approx(product["price_brutto"])


@pytest.mark.parametrize("lost", ["setOrderReturnStatus", "setOrderReturnRefund", "setOrderReturnFields"])
def test_a_lost_answer_is_never_done_twice(emulator: BaseLinkerEmulator, make_connector: MakeConnector,
                                           stored: InMemoryStore, lost: str) -> None:
    ret = open_return(stored)
    connector = make_connector(emulator)
    emulator.lose_answer_of(lost)
    first = carry_out(connector, act_for(ret, DecisionKind.ACCEPT, key="act-lost"))
    assert first.status is PushStatus.RETRY
    second = carry_out(connector, act_for(ret, DecisionKind.ACCEPT, key="act-lost", attempt=2))
    third = carry_out(connector, act_for(ret, DecisionKind.ACCEPT, key="act-lost", attempt=3))
    assert second.status is PushStatus.PUSHED and third.status is PushStatus.PUSHED
    assert "already" in (third.detail or "")
    applied = emulator.acts_applied()
    assert sorted(kind for kind, *_ in applied) == ["comment", "refund", "status"], applied
    assert emulator.returns[int(ret.external_id)]["admin_comments"].count("decided in a test") == 1


def test_a_decision_without_a_mapped_status_is_unsupported_and_names_the_key(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    connector = make_connector(emulator, decision_statuses={"accept": 1004})
    assert not connector.capabilities.supports(DecisionKind.REJECT)
    assert BaseLinkerConnector.capabilities.supports(DecisionKind.REJECT), "any channel can map it"
    before = len(emulator.requests)
    result = carry_out(connector, act_for(open_return(stored), DecisionKind.REJECT))
    assert result.status is PushStatus.UNSUPPORTED and "decision_statuses.reject" in (result.detail or "")
    assert len(emulator.requests) == before, "nothing was sent"


def test_an_error_body_fails_the_decision_with_its_code_and_message(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    connector = make_connector(emulator, decision_statuses={"reject": 4711})
    result = carry_out(connector, act_for(open_return(stored), DecisionKind.REJECT))
    assert result.status is PushStatus.FAILED
    assert "ERROR_STATUS_NOT_FOUND" in (result.detail or "") and "4711" in (result.detail or "")


def test_a_blocked_account_is_retried_not_failed(emulator: BaseLinkerEmulator, make_connector: MakeConnector,
                                                 stored: InMemoryStore, clock: VirtualClock) -> None:
    emulator.blocked_until = clock.now + 600
    result = carry_out(make_connector(emulator), act_for(open_return(stored), DecisionKind.REJECT))
    assert result.status is PushStatus.RETRY and "ERROR_USER_ACCOUNT_BLOCKED" in (result.detail or "")
    assert emulator.acts_applied() == []


def test_a_blocked_account_fails_the_pull_for_a_later_try(emulator: BaseLinkerEmulator,
                                                          make_connector: MakeConnector, clock: VirtualClock) -> None:
    emulator.blocked_until = clock.now + 600
    with pytest.raises(TransientError, match="ERROR_USER_ACCOUNT_BLOCKED"):
        InMemoryStore().run(make_connector(emulator))


def test_a_refused_token_is_an_auth_problem(emulator: BaseLinkerEmulator, make_connector: MakeConnector,
                                            stored: InMemoryStore) -> None:
    result = carry_out(make_connector(emulator, api_token="not-the-token"),
                       act_for(open_return(stored), DecisionKind.REJECT))
    assert result.status is PushStatus.RETRY and "api_token" in (result.detail or "")


def test_a_poison_return_is_set_aside_and_its_page_stored(emulator: BaseLinkerEmulator,
                                                           make_connector: MakeConnector, stored: InMemoryStore) -> None:
    poison = emulator.add_poison_return("quantity")
    fine = emulator.add_odd_return()
    pages: list[Any] = []
    connector = make_connector(emulator)
    for page in connector.pull(Stream.RETURNS, stored.context()):
        stored.store(page)
        pages.append(page)
    assert fine in stored.returns and poison not in stored.returns
    assert [q.external_id for page in pages for q in page.quarantined] == [poison]


def test_a_busy_journal_is_read_a_hundred_entries_a_page(emulator: BaseLinkerEmulator,
                                                         make_connector: MakeConnector, stored: InMemoryStore) -> None:
    for n in range(150):
        emulator.m_setOrderReturnStatus({"return_id": 40_000 + n % 30, "status_id": 1002 + n % 2})
    before = len(emulator.requests)
    stored.run(make_connector(emulator))
    journal = [params for method, params in calls(emulator, before) if method == "getOrderReturnJournalList"]
    assert len(journal) >= 2 and journal[1]["last_log_id"] > journal[0]["last_log_id"]
    assert stored.cursor["last_log_id"] == max(entry["id"] for entry in emulator.logs)
    assert all(stored.returns[str(i)].extra["status_id"] == str(emulator.returns[i]["status_id"])
               for i in emulator.returns)


def test_ids_no_account_holds_neither_fail_the_page_nor_move_the_journal(
        emulator: BaseLinkerEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    new = emulator.add_odd_return()
    emulator.returns[int(new)]["order_id"] = "9" * 5000
    last = stored.cursor["last_log_id"]
    emulator.logs.append({"id": 10**40, "return_id": "7" * 5000, "log_type": 1, "object_id": 0,
                          "date": int(emulator.wall())})
    assert new in stored.run(make_connector(emulator))
    assert last < stored.cursor["last_log_id"] < 10**18


def test_fetch_order_links_a_return_whose_order_was_not_pulled(emulator: BaseLinkerEmulator,
                                                               make_connector: MakeConnector) -> None:
    order = make_connector(emulator).fetch_order("7000003")
    assert order is not None and order.lines and order.currency == "PLN"
    assert make_connector(emulator).fetch_order("123") is None


# --- settings -------------------------------------------------------------------------------------

def test_only_accept_and_keep_refund() -> None:
    with pytest.raises(ValueError, match="only accept and keep"):
        BaseLinkerSettings(connector="baselinker", api_token="t" * 20, refund_on=["reject"])


def test_the_minute_budget_stays_below_basellinkers_limit() -> None:
    with pytest.raises(ValueError):
        BaseLinkerSettings(connector="baselinker", api_token="t" * 20, requests_per_minute=100)


def test_the_example_configs_baselinker_table_is_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    block = text[text.index("# [channels.baselinker]"):]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and not line.startswith("# # ")]
    table = tomllib.loads("\n".join(lines))["channels"]["baselinker"]
    settings = BaseLinkerSettings(**{**table, "api_token": "t" * 20})
    assert settings.skip_sources == ["allegro"] and settings.decision_statuses[DecisionKind.ACCEPT] == 1004
