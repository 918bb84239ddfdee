"""The connector against its sandbox, without a database: pulling and resuming, decision acts as the outbox runs
them (`carry_out`: what raising means is the outbox's table), and the back-office half."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from retsync.kit.contract import HoldRequest, PushStatus, Stream
from retsync.kit.model import DecisionKind, Return, ReturnStatus
from retsync.testing.memory import InMemoryStore, act_for, carry_out

from retsync_connector_template.connector import TemplateConnector
from retsync_connector_template.emulator import TemplateEmulator

MakeConnector = Callable[..., TemplateConnector]


def _writes(emulator: TemplateEmulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests if r.method != "GET"]


def open_return(store: InMemoryStore, lines: int = 2) -> Return:
    """A stored open return with at least `lines` lines."""
    return next(r for r in store.returns.values()
                if r.status in (ReturnStatus.REQUESTED, ReturnStatus.IN_TRANSIT, ReturnStatus.RECEIVED)
                and len(r.lines) >= lines)


@pytest.fixture
def stored(emulator: TemplateEmulator, make_connector: MakeConnector) -> InMemoryStore:
    store = InMemoryStore()
    store.run(make_connector(emulator))
    return store


# --- pull ---------------------------------------------------------------------------------------

def test_a_backfill_stores_every_return_with_its_order(emulator: TemplateEmulator, stored: InMemoryStore) -> None:
    assert set(stored.returns) == set(emulator.returns)
    assert {r.order_external_id for r in stored.returns.values()} <= set(stored.orders)
    assert stored.pages == 2, "60 returns are two pages of 50"


def test_a_pull_cut_short_resumes_at_the_page_after_the_last_one_stored(
        emulator: TemplateEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore()
    first = store.run(make_connector(emulator), max_pages=1)
    assert store.cursor is not None and store.cursor["page"] == 2 and store.cursor["seen"]
    rest = store.run(make_connector(emulator))
    assert set(first) | set(rest) == set(emulator.returns) and not set(first) & set(rest)
    assert store.cursor["page"] == 1 and store.cursor["seen"] is None


def test_the_next_walk_starts_at_the_newest_update_less_the_overlap(
        emulator: TemplateEmulator, stored: InMemoryStore) -> None:
    newest = max(datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) for r in emulator.returns.values())
    assert datetime.fromisoformat(stored.cursor["since"].replace("Z", "+00:00")) == newest - timedelta(hours=1)


def test_a_return_dated_in_year_9999_never_moves_the_cursor_past_the_pull(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    emulator.returns["R-20000"]["updated_at"] = "9999-12-31T23:59:59Z"
    stored.run(make_connector(emulator))
    assert datetime.fromisoformat(stored.cursor["since"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)
    new = emulator.add_odd_return()
    assert new in stored.run(make_connector(emulator)), "later returns are still read"


def test_an_unreadable_cursor_starts_a_fresh_pass_instead_of_skipping(
        emulator: TemplateEmulator, make_connector: MakeConnector) -> None:
    store = InMemoryStore(cursor={"since": "not a date", "page": "two"})
    assert set(store.run(make_connector(emulator))) == set(emulator.returns)


# --- decision acts --------------------------------------------------------------------------------

def test_a_whole_return_accept_is_one_refund_of_every_line(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(stored)
    before = len(_writes(emulator))
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.ACCEPT))
    assert result.status is PushStatus.PUSHED and result.reference, result
    assert _writes(emulator)[before:] == [("POST", f"/v1/returns/{record.external_id}/decisions")]
    assert emulator.acts_applied() == [("refund", record.external_id, line.external_id) for line in record.lines]
    assert emulator.returns[record.external_id]["status"] == "refunded"


def test_some_units_of_one_line_are_refunded_alone(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record = open_return(stored)
    result = carry_out(make_connector(emulator), act_for(record, DecisionKind.KEEP, lines=[1], quantities=[1]))
    assert result.status is PushStatus.PUSHED
    assert emulator.acts_applied() == [("refund_keep_item", record.external_id, record.lines[1].external_id)]
    assert emulator.returns[record.external_id]["status"] != "refunded", "the other lines are still open"


def test_an_act_whose_answer_was_lost_is_found_on_the_retry(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record, connector = open_return(stored), make_connector(emulator)
    first = act_for(record, DecisionKind.ACCEPT)
    emulator.lose_answer("POST", "/decisions")
    assert carry_out(connector, first).status is PushStatus.RETRY
    again = carry_out(connector, act_for(record, DecisionKind.ACCEPT, key=first.key, attempt=2))
    assert again.status is PushStatus.PUSHED and again.detail and again.detail.startswith("already applied")
    assert len(emulator.acts_applied()) == len(record.lines) == len(set(emulator.acts_applied()))


def test_a_line_decided_on_the_channel_under_another_key_fails_the_act(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record, connector = open_return(stored), make_connector(emulator)
    assert carry_out(connector, act_for(record, DecisionKind.ACCEPT, lines=[0])).status is PushStatus.PUSHED
    result = carry_out(connector, act_for(record, DecisionKind.REJECT, note="Worn", attempt=2))
    assert result.status is PushStatus.FAILED
    assert result.detail and "refused the reject decision" in result.detail and "line_decided" in result.detail


def test_a_rejection_without_a_note_is_refused_before_it_is_recorded() -> None:
    assert TemplateConnector.decision_problem(DecisionKind.REJECT, "  ")
    assert TemplateConnector.decision_problem(DecisionKind.REJECT, "Worn and washed") is None


@pytest.mark.parametrize("table, fault, status", [
    ({"api_key": "revoked"}, None, PushStatus.RETRY),
    ({}, {"kind": "status", "status": 503}, PushStatus.RETRY),
    ({}, {"kind": "status", "status": 422}, PushStatus.FAILED),
], ids=["bad-key-retried-until-fixed", "503-retried", "422-failed"])
def test_what_a_failure_means_is_the_outboxs_table(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore,
        table: dict[str, str], fault: dict[str, object] | None, status: PushStatus) -> None:
    if fault is not None:
        emulator.inject(str(fault["kind"]), path="/v1/returns/", method="POST",
                        **{key: value for key, value in fault.items() if key != "kind"})
    result = carry_out(make_connector(emulator, **table), act_for(open_return(stored), DecisionKind.ACCEPT))
    assert result.status is status, result
    assert emulator.acts_applied() == []


def test_a_decision_the_channel_cannot_take_sends_nothing(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    before = len(emulator.requests)
    result = carry_out(make_connector(emulator), act_for(open_return(stored), DecisionKind.EXCHANGE))
    assert result.status is PushStatus.UNSUPPORTED and result.detail and "exchanges" in result.detail
    assert len(emulator.requests) == before


# --- the back-office half -------------------------------------------------------------------------

def hold_request(record: Return, attempt: int = 1) -> HoldRequest:
    return HoldRequest(hold_id=1, key=f"bol/{record.external_id}", source_channel="bol", source_title="Bol.com",
                       ret=record, attempt=attempt, requested_at=datetime.now(timezone.utc))


def test_a_held_return_whose_answer_was_lost_is_not_held_twice(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    record, connector = open_return(stored), make_connector(emulator)
    emulator.lose_answer("POST", "/held-returns")
    with pytest.raises(Exception, match="may have been applied"):
        connector.hold_return(hold_request(record))
    again = connector.hold_return(hold_request(record, attempt=2))
    assert again.status is PushStatus.PUSHED and again.detail and again.detail.startswith("already")
    assert emulator.held_returns() == {f"bol/{record.external_id}": again.reference}


def test_the_merchants_panel_decision_is_read_back(
        emulator: TemplateEmulator, make_connector: MakeConnector, stored: InMemoryStore) -> None:
    connector = make_connector(emulator)
    first, second = (connector.hold_return(hold_request(r)).reference
                     for r in list(stored.returns.values())[:2])
    assert first and second
    emulator.panel_decide(first, "reject", note="Worn and washed")
    decided = connector.held_decisions([first, second])
    assert list(decided) == [first], "an undecided held return is left out"
    assert (decided[first].kind, decided[first].note) == (DecisionKind.REJECT, "Worn and washed")


def test_a_return_it_cannot_read_is_set_aside_and_its_page_stored(
        emulator: TemplateEmulator, make_connector: MakeConnector) -> None:
    poisoned = emulator.add_poison_return("quantity")
    pages = list(make_connector(emulator).pull(Stream.RETURNS, InMemoryStore().context()))
    aside = [item for page in pages for item in page.quarantined]
    assert [(item.kind, item.external_id) for item in aside] == [("return", poisoned)]
    assert "beyond" in aside[0].reason
    stored = {r.external_id for page in pages for r in page.returns}
    assert stored == set(emulator.returns) - {poisoned}
    assert pages[-1].cursor and pages[-1].cursor["page"] == 1, "the walk moved past it"
