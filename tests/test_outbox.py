"""Decisions reach the channel exactly once: retries, crashes while sending, and refusals."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from retsync.kit.contract import AlreadyDone, Outcome, PushResult, PushStatus, Runtime, Stream
from retsync.kit.http import ApiError, AuthError, BadPayload, Stopped, TransientError
from retsync.kit.model import DecisionKind
from retsync.kit.settings import ChannelSettings
from retsync.outbox.decisions import DecisionRefused, record_decision
from retsync.outbox.push import Outbox
from retsync.store.channels import ensure_channel
from retsync.store.models import Decision
from retsync.sync.engine import SyncEngine
from retsync.testing.memory import act_for, carry_out
from tests.fakes import BASE, ScriptedConnector, make_return


class Clock:
    def __init__(self) -> None:
        self.now = BASE + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def shop(db: Engine, tmp_path: Path) -> ScriptedConnector:
    ScriptedConnector.reset(3)
    handled = make_return(2).model_copy(update={"handled_by_channel": True})
    ScriptedConnector.returns[2] = handled
    connector = ScriptedConnector("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=tmp_path))
    channel_id = ensure_channel(db, "shop", "scripted", BASE)
    SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings,
               connector=connector).sync_stream(Stream.RETURNS)
    return connector


def _decide(db: Engine, ref: str, kind: DecisionKind, clock: Clock, **kwargs: object):
    return record_decision(db, ref, kind, connector_for=lambda name: ScriptedConnector, now=clock(), **kwargs)  # type: ignore[arg-type]


def _states(db: Engine) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Decision.id, Decision.state, Decision.attempts, Decision.last_error).order_by(Decision.id))]


def test_a_whole_return_decision_covers_every_line_and_is_pushed_once(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    recorded = _decide(db, "shop/R0", DecisionKind.ACCEPT, clock)
    assert len(recorded.decision_ids) == 2
    outbox = Outbox(db, {"shop": shop}, clock=clock)
    summary = outbox.push_due()
    assert (summary.pushed, summary.acts) == (2, 1), "both lines, in one request to the channel"
    assert outbox.push_due().attempted == 0
    clock.now += timedelta(days=2)
    assert outbox.push_due().attempted == 0, "a pushed decision is never sent again"
    (act,) = ScriptedConnector.pushes
    assert [(line.line_external_id, line.quantity) for line in act.lines] == [("R0-L0", 1), ("R0-L1", 1)]
    assert act.attempt == 1 and act.decision_ids == tuple(recorded.decision_ids)
    assert [s[1] for s in _states(db)] == ["pushed", "pushed"]
    with db.connect() as conn:
        view = conn.execute(text("SELECT decision, decision_state FROM v_returns WHERE external_id = 'R0'")).one()
    assert tuple(view) == ("accept", "pushed")


def test_transient_failures_retry_with_the_same_key_then_give_up(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    _decide(db, "shop/R0", DecisionKind.REJECT, clock, line="R0-L1", note="damaged by customer")
    outbox = Outbox(db, {"shop": shop}, clock=clock, max_attempts=3, retry_base=timedelta(minutes=1))
    ScriptedConnector.push_script = [PushResult(PushStatus.RETRY, "HTTP 503")] * 3
    assert outbox.push_due().retrying == 1
    assert outbox.push_due().attempted == 0, "not due yet"
    for _ in range(2):
        clock.now += timedelta(hours=1)
        outbox.push_due()
    keys = {r.key for r in ScriptedConnector.pushes}
    assert [r.attempt for r in ScriptedConnector.pushes] == [1, 2, 3] and len(keys) == 1
    assert ScriptedConnector.pushes[0].note == "damaged by customer"
    (_, state, attempts, error), = _states(db)
    assert (state, attempts) == ("failed", 3) and error == "gave up after 3 attempts: HTTP 503"


def test_refused_by_the_channel_is_failed_at_once(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    _decide(db, "shop/R1", DecisionKind.ACCEPT, clock, line="R1-L0")
    ScriptedConnector.push_script = [PushResult(PushStatus.FAILED, "quantityReturned: too high")]
    outbox = Outbox(db, {"shop": shop}, clock=clock)
    assert outbox.push_due().failed == 1
    clock.now += timedelta(days=1)
    outbox.push_due()
    assert len(ScriptedConnector.pushes) == 1
    assert _states(db)[0][1:] == ("failed", 1, "quantityReturned: too high")


def test_crash_while_sending_is_checked_on_the_channel_not_blindly_resent(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    _decide(db, "shop/R1", DecisionKind.ACCEPT, clock, line="R1-L0")
    outbox = Outbox(db, {"shop": shop}, clock=clock, lease=timedelta(minutes=5))
    claimed, _ = outbox._claim(["shop"], 10)  # claimed and committed; then the process dies before the answer
    assert len(claimed) == 1 and _states(db)[0][1] == "sending"
    assert outbox.push_due().attempted == 0, "the lease keeps another run away"
    clock.now += timedelta(minutes=6)
    assert outbox.push_due().pushed == 1
    (request,) = ScriptedConnector.pushes
    assert request.attempt == 2, "the connector is told an earlier attempt may have reached the channel"
    assert request.key == claimed[0][1].key


def test_pending_on_the_channel_is_polled_with_its_reference(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    _decide(db, "shop/R1", DecisionKind.ACCEPT, clock, line="R1-L0")
    ScriptedConnector.push_script = [PushResult(PushStatus.PENDING, reference="proc-77"),
                                      PushResult(PushStatus.PUSHED, reference="proc-77")]
    outbox = Outbox(db, {"shop": shop}, clock=clock, poll_after=timedelta(seconds=15))
    assert outbox.push_due().pending == 1 and _states(db)[0][1] == "sending"
    clock.now += timedelta(seconds=20)
    assert outbox.push_due().pushed == 1
    assert [(r.reference, r.attempt) for r in ScriptedConnector.pushes] == [(None, 1), ("proc-77", 1)]


def test_connector_crash_is_retried_and_visible(db: Engine, shop: ScriptedConnector,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    _decide(db, "shop/R1", DecisionKind.ACCEPT, clock, line="R1-L0")
    monkeypatch.setattr(ScriptedConnector, "act", lambda self, act: 1 / 0)
    assert Outbox(db, {"shop": shop}, clock=clock).push_due().retrying == 1
    assert _states(db)[0][1:] == ("pending", 1, "the Scripted test channel connector failed: ZeroDivisionError: "
                                                "division by zero")


def test_unsupported_decision_is_recorded_as_such_and_never_sent(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    recorded = _decide(db, "shop/R0", DecisionKind.CANCEL, clock)
    assert recorded.state.value == "unsupported" and recorded.detail == "the scripted channel cannot cancel"
    assert Outbox(db, {"shop": shop}, clock=clock).push_due().attempted == 0
    assert ScriptedConnector.pushes == []


@pytest.mark.parametrize("ref, kwargs, message", [
    ("shop/R2", {}, "handled by the channel itself"),
    ("shop/R404", {}, "no return 'shop/R404'"),
    ("R0", {}, "give its id or channel/external_id"),
    ("shop/R0", {"line": "nope"}, "has no line 'nope'"),
    ("shop/R0", {"quantity": 1}, "--quantity needs --line"),
    ("shop/R0", {"line": "R0-L0", "quantity": 5}, "--quantity must be between 1 and 1"),
])
def test_refusals_say_why(db: Engine, shop: ScriptedConnector, ref: str, kwargs: dict, message: str) -> None:
    with pytest.raises(DecisionRefused, match=message):
        _decide(db, ref, DecisionKind.ACCEPT, Clock(), **kwargs)


def test_second_decision_waits_for_the_first(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    _decide(db, "shop/R0", DecisionKind.ACCEPT, clock, line="R0-L0")
    with pytest.raises(DecisionRefused, match="still waiting to be pushed"):
        _decide(db, "shop/R0", DecisionKind.REJECT, clock)
    with db.connect() as conn:
        view = conn.execute(text("SELECT decision, decision_state FROM v_returns WHERE external_id = 'R0'")).one()
    assert tuple(view) == ("mixed", "mixed"), "one line decided, one not"


def test_failures_while_following_a_reference_count_towards_giving_up(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    _decide(db, "shop/R1", DecisionKind.ACCEPT, clock, line="R1-L0")
    ScriptedConnector.push_script = [PushResult(PushStatus.PENDING, reference="proc-9")] + \
        [PushResult(PushStatus.RETRY, "HTTP 503 on the process status")] * 5
    outbox = Outbox(db, {"shop": shop}, clock=clock, max_attempts=3, retry_base=timedelta(minutes=1))
    for _ in range(6):
        outbox.push_due()
        clock.now += timedelta(hours=2)
    assert len(ScriptedConnector.pushes) == 3, "pending, then two failed checks: the third attempt gives up"
    assert _states(db)[0][1:3] == ("failed", 3)


def test_several_lines_named_in_one_command_are_one_act(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    ScriptedConnector.returns[0] = make_return(0, lines=3)
    recorded = _decide(db, "shop/R1", DecisionKind.ACCEPT, clock, lines={"R1-L0": None, "R1-L1": 1})
    outbox = Outbox(db, {"shop": shop}, clock=clock)
    assert outbox.push_due().acts == 1
    (act,) = ScriptedConnector.pushes
    assert act.decision_ids == tuple(recorded.decision_ids)
    assert [(line.line_external_id, line.quantity) for line in act.lines] == [("R1-L0", 1), ("R1-L1", 1)]


def test_each_act_keeps_its_own_key_and_state(db: Engine, shop: ScriptedConnector) -> None:
    clock = Clock()
    first = _decide(db, "shop/R0", DecisionKind.ACCEPT, clock)
    second = _decide(db, "shop/R1", DecisionKind.REJECT, clock, note="worn")
    ScriptedConnector.push_script = [PushResult(PushStatus.PUSHED, "ok"), PushResult(PushStatus.FAILED, "no")]
    summary = Outbox(db, {"shop": shop}, clock=clock).push_due()
    assert (summary.acts, summary.pushed, summary.failed) == (2, 2, 2)
    assert len({act.key for act in ScriptedConnector.pushes}) == 2
    states = {row[0]: row[1] for row in _states(db)}
    assert [states[i] for i in first.decision_ids] == ["pushed", "pushed"]
    assert [states[i] for i in second.decision_ids] == ["failed", "failed"]
    with db.connect() as conn:
        lines = dict(conn.execute(text(
            "SELECT external_line_id, decision_state FROM v_return_lines WHERE external_line_id LIKE 'R0-%' OR external_line_id LIKE 'R1-%'")
        ).all())
    assert lines == {"R0-L0": "pushed", "R0-L1": "pushed", "R1-L0": "failed", "R1-L1": "failed"}, \
        "each line's state stays visible"


@pytest.mark.parametrize("raised, state, detail", [
    (ApiError(422, "quantity too high"), "failed", "Scripted test channel refused the accept decision: HTTP 422: "
                                                   "quantity too high"),
    (AuthError("the API key was revoked"), "pending", "Scripted test channel did not accept the channel's "
                                                      "credentials (the API key was revoked); the accept decision is "
                                                      "retried, and goes out once they are fixed"),
    (TransientError("HTTP 503 after 5 retries"), "pending", "HTTP 503 after 5 retries"),
    (BadPayload("not JSON"), "pending", "Scripted test channel answered the accept decision with something "
                                        "unreadable: not JSON"),
    (Stopped(), "pending", "the daemon stopped before Scripted test channel answered; it is asked again"),
    (AlreadyDone("refund 7 exists", reference="7"), "pushed", None),
])
def test_one_table_turns_what_a_connector_raises_into_the_decisions_state(
        db: Engine, shop: ScriptedConnector, monkeypatch: pytest.MonkeyPatch, raised: Exception, state: str,
        detail: str | None) -> None:
    def act(self: ScriptedConnector, act: object) -> PushResult:
        raise raised

    monkeypatch.setattr(ScriptedConnector, "act", act)
    _decide(db, "shop/R1", DecisionKind.ACCEPT, Clock(), line="R1-L0")
    Outbox(db, {"shop": shop}, clock=Clock()).push_due()
    assert _states(db)[0][1] == state
    assert _states(db)[0][3] == detail
    if state == "pushed":
        with db.connect() as conn:
            assert conn.execute(select(Decision.reference)).scalar_one() == "7"


def test_a_connector_overrides_one_entry_of_the_table(db: Engine, shop: ScriptedConnector,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel whose 409 means "already done" says so for itself; the rest of the table stays."""
    class Conflicting(ScriptedConnector):
        outcomes = {ApiError: Outcome(PushStatus.PUSHED, "{title} had it already ({error})")}

        def act(self, act: object) -> PushResult:
            raise ApiError(409, "conflict")

    connector = Conflicting("shop", shop.settings, shop.runtime)
    _decide(db, "shop/R1", DecisionKind.ACCEPT, Clock(), line="R1-L0")
    Outbox(db, {"shop": connector}, clock=Clock()).push_due()
    assert _states(db)[0][1] == "pushed"
    assert carry_out(connector, act_for(make_return(1), DecisionKind.ACCEPT)).detail == \
        "Scripted test channel had it already (HTTP 409: conflict)"
    assert carry_out(shop, act_for(make_return(1), DecisionKind.CANCEL)).status is PushStatus.UNSUPPORTED
