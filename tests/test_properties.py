"""Properties that must hold for every input, not only for the examples someone thought of.

Mappers: any payload that fits the channel's contract (the bol and Allegro OpenAPI schemas, WooCommerce's
documented order fields) maps to a valid unified Return or Order without an exception. The payloads are drawn
from the spec itself by `from_schema`, a small JSON-schema-to-strategy function: required fields always there,
optional ones sometimes, enums from their lists, free strings anything (including the spec's example).

Outbox: no sequence of recording, claiming, push answers, crashes while sending, lease expiry and re-pulls
makes a pushed decision pending again or hands it to the channel a second time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Engine, select

from retsync.kit.contract import DecisionAct, PushResult, PushStatus, Runtime, Stream
from retsync.kit.http import BadPayload
from retsync.kit.model import DecisionKind, DecisionState, Order, ReturnStatus
from retsync.kit.payload import OutOfRange
from retsync.kit.settings import ChannelSettings
from retsync.outbox.decisions import DecisionRefused, record_decision
from retsync.outbox.push import Outbox
from retsync.store.channels import ensure_channel
from retsync.store.db import make_engine, upgrade
from retsync.store.models import Decision
from retsync.sync.engine import SyncEngine
from retsync.testing.specs import (
    FREE_TEXT,
    IDENTIFIER,
    MOMENTS,
    PROPERTY_SETTINGS,
    check_mapped_order,
    check_mapped_return,
    from_schema,
    load_spec,
)
from retsync_connectors.allegro import mapping as allegro
from retsync_connectors.bol import mapping as bol
from retsync_connectors.woocommerce import mapping as woocommerce
from tests.fakes import BASE, ScriptedConnector, make_return

# --- bol: ReducedReturn + Return + Order from retailer.json ----------------------------------

BOL = load_spec("bol-retailer", "retailer.json")


def _bol(name: str) -> st.SearchStrategy[Any]:
    return from_schema({"$ref": f"#/components/schemas/{name}"}, BOL)


@st.composite
def bol_return(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Order]]:
    """A list entry, its detail (same return, same rmaIds) and the orders its items name."""
    entry = draw(_bol("ReducedReturn"))
    detail = draw(_bol("Return"))
    detail["returnId"] = entry["returnId"]
    items = detail["returnItems"][: len(entry["returnItems"])]
    for listed, full in zip(entry["returnItems"], items):
        full["rmaId"], full["orderId"] = listed["rmaId"], listed["orderId"]
    detail["returnItems"] = items
    orders = {}
    for listed in entry["returnItems"]:
        if draw(st.booleans()):
            order = draw(_bol("Order"))
            order["orderId"] = listed["orderId"]
            orders[listed["orderId"]] = bol.map_order(order)
    return entry, detail, orders


@PROPERTY_SETTINGS
@given(bol_return(), st.booleans())
def test_any_bol_return_that_fits_the_spec_maps(payload: tuple[dict[str, Any], dict[str, Any], dict[str, Order]],
                                                with_detail: bool) -> None:
    entry, detail, orders = payload
    mapped = bol.map_return(entry, detail if with_detail else None, orders)
    check_mapped_return(mapped, entry["returnId"], len(entry["returnItems"]))
    assert mapped.handled_by_channel is (entry["fulfilmentMethod"].strip().upper() == "FBB")


@PROPERTY_SETTINGS
@given(_bol("Order"))
def test_any_bol_order_that_fits_the_spec_maps(order: dict[str, Any]) -> None:
    check_mapped_order(bol.map_order(order), order["orderId"])


@PROPERTY_SETTINGS
@given(_bol("ReducedReturn"))
def test_a_bol_return_with_a_broken_date_is_refused_clearly(entry: dict[str, Any]) -> None:
    entry["registrationDateTime"] = "yesterday"
    with pytest.raises(BadPayload, match="registrationDateTime"):
        bol.map_return(entry)


# --- Allegro: CustomerReturn + CheckoutForm from spec.yaml -----------------------------------

ALLEGRO = load_spec("allegro", "spec.yaml")


def _allegro(name: str) -> st.SearchStrategy[Any]:
    return from_schema({"$ref": f"#/components/schemas/{name}"}, ALLEGRO)


@st.composite
def allegro_return(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A customer return and, often, its checkout form, sharing offers with it so items can be linked to order
    lines. The spec marks nothing required; a return always has an id and a date, and each item its offer (the
    mapper keys lines by offer and refuses an item without one, see the test below)."""
    entry = draw(_allegro("CustomerReturn"))
    entry["id"] = draw(IDENTIFIER)
    entry["createdAt"] = draw(MOMENTS).isoformat()
    for item in entry.get("items", []):
        item.setdefault("offerId", draw(IDENTIFIER))
    if not draw(st.booleans()):
        return entry, None
    form = draw(_allegro("CheckoutForm"))
    for item, line in zip(entry.get("items", []), form["lineItems"]):
        if isinstance(line.get("offer"), dict) and draw(st.booleans()):
            item["offerId"] = line["offer"].get("id")
    return entry, form


@PROPERTY_SETTINGS
@given(allegro_return())
def test_any_allegro_return_that_fits_the_spec_maps(payload: tuple[dict[str, Any], dict[str, Any] | None]) -> None:
    entry, form = payload
    mapped = allegro.map_return(entry, form)
    check_mapped_return(mapped, entry["id"], len(entry.get("items", [])))
    assert mapped.handled_by_channel is (entry.get("isFulfillment") is True)


@PROPERTY_SETTINGS
@given(allegro_return())
def test_an_allegro_item_without_an_offer_is_refused_clearly(payload: tuple[dict[str, Any], dict[str, Any] | None]
                                                              ) -> None:
    entry, form = payload
    entry["items"] = [*entry.get("items", []), {"quantity": 1}]
    with pytest.raises(BadPayload, match=f"customer return {entry['id']}: item #{len(entry['items'])} has no offerId"):
        allegro.map_return(entry, form)


@PROPERTY_SETTINGS
@given(_allegro("CheckoutForm"))
def test_any_allegro_checkout_form_that_fits_the_spec_maps(form: dict[str, Any]) -> None:
    check_mapped_order(allegro.map_order(form), form["id"])


# --- WooCommerce: the order fields documented in woocommerce/NOTES.md ---------------------------

STOCK_STATUSES = ["pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
                  "checkout-draft", "return-requested", "return-approved", "return-cancelled"]
MONEY = st.one_of(st.decimals(0, 10**5, places=2).map(str), st.just(""), st.just("0"), FREE_TEXT)
GMT = MOMENTS.map(lambda moment: moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"))


@st.composite
def woocommerce_order(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An order (wc/v3 `Order`), maybe carrying a WP Swings return request in meta_data, and its refunds."""
    order_id = draw(st.integers(1, 10**7))
    items = []
    for n in range(draw(st.integers(0, 3))):
        quantity = draw(st.integers(0, 5))
        items.append({"id": order_id * 10 + n, "name": draw(FREE_TEXT), "product_id": draw(st.integers(0, 999)),
                      "variation_id": draw(st.sampled_from([0, draw(st.integers(1, 999))])), "quantity": quantity,
                      "tax_class": "", "subtotal": draw(MONEY), "subtotal_tax": draw(MONEY), "total": draw(MONEY),
                      "total_tax": draw(MONEY), "taxes": [], "meta_data": [], "sku": draw(FREE_TEXT),
                      "price": draw(st.one_of(st.floats(0, 1e5, allow_nan=False), st.integers(0, 10**5), MONEY))})
    meta: list[dict[str, Any]] = []
    if draw(st.booleans()):
        products = [{"item_id": draw(st.sampled_from([i["id"] for i in items] + [999])),
                     "product_id": draw(st.integers(0, 999)), "variation_id": 0,
                     "qty": draw(st.one_of(st.integers(0, 5), FREE_TEXT)), "price": draw(MONEY)}
                    for _ in range(draw(st.integers(0, 2)))]
        request = {"products": products, "amount": draw(MONEY), "subject": draw(FREE_TEXT),
                   "reason": draw(FREE_TEXT), "status": draw(st.sampled_from(["pending", "complete", "cancel"]) | FREE_TEXT),
                   "auto_amount": "no"}
        stamp = draw(st.one_of(st.integers(10**9, 4 * 10**9).map(str), FREE_TEXT))
        meta.append({"id": 1, "key": "wps_rma_return_product",
                     "value": draw(st.sampled_from([{stamp: request}, json.dumps({stamp: request}), [request], ""]))})
        meta.append({"id": 2, "key": "wps_rma_request_made",
                     "value": {str(p["item_id"]): draw(FREE_TEXT) for p in products}})
    refunds = []
    for n in range(draw(st.integers(0, 2))):
        lines = [{"id": 9000 + n * 10 + k, "product_id": item["product_id"], "variation_id": item["variation_id"],
                  "quantity": -draw(st.integers(0, 3)), "total": "-" + draw(MONEY), "refund_total": draw(MONEY)}
                 for k, item in enumerate(items) if draw(st.booleans())]
        refunds.append({"id": 5000 + n, "parent_id": order_id, "date_created": draw(GMT),
                        "date_created_gmt": draw(st.one_of(GMT, st.just(""), st.none())),
                        "amount": draw(MONEY), "reason": draw(FREE_TEXT), "refunded_by": 1,
                        "refunded_payment": draw(st.booleans()), "meta_data": [], "line_items": lines})
    created = draw(GMT)
    order = {
        "id": order_id, "parent_id": 0, "number": str(order_id), "status": draw(st.sampled_from(STOCK_STATUSES) | FREE_TEXT),
        "currency": draw(st.sampled_from(["EUR", "PLN", "USD", ""])), "date_created": created,
        "date_created_gmt": created, "date_modified": created, "date_modified_gmt": draw(GMT),
        "date_completed_gmt": draw(st.one_of(st.none(), GMT)), "total": draw(MONEY), "total_tax": draw(MONEY),
        "customer_id": draw(st.integers(0, 500)),
        "billing": {"first_name": draw(FREE_TEXT), "last_name": draw(FREE_TEXT), "email": draw(FREE_TEXT),
                    "phone": draw(FREE_TEXT), "postcode": draw(FREE_TEXT), "country": draw(FREE_TEXT)},
        "shipping": {"first_name": draw(FREE_TEXT), "last_name": draw(FREE_TEXT), "postcode": draw(FREE_TEXT)},
        "meta_data": meta, "line_items": items,
        "refunds": [{"id": r["id"], "reason": r["reason"], "total": "-" + str(r["amount"])} for r in refunds],
    }
    return order, refunds


@PROPERTY_SETTINGS
@given(woocommerce_order(), st.booleans())
def test_any_documented_woocommerce_order_maps(payload: tuple[dict[str, Any], list[dict[str, Any]]],
                                               was_return: bool) -> None:
    order, refunds = payload
    check_mapped_order(woocommerce.map_order(order), str(order["id"]))
    try:
        mapped = woocommerce.map_return(order, refunds, woocommerce.ReturnRules(), was_return=was_return)
    except OutOfRange as refused:  # a free-text qty such as "9e9": quarantined with this reason (test_hostile)
        assert "quantity" in str(refused)
        return
    if mapped is not None:
        assert mapped.external_id == str(order["id"])
        assert isinstance(mapped.status, ReturnStatus) and mapped.lines
        assert mapped.refund_amount is None or isinstance(mapped.refund_amount, int)


# --- the outbox as a state machine ------------------------------------------------------------

_TEMPLATE: dict[str, Path] = {}


def _fresh_database(folder: Path) -> Engine:
    """A migrated SQLite file, copied from one migrated once per session (migrating each example is slow)."""
    if "db" not in _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="retsync-props-")) / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        _TEMPLATE["db"] = template
    target = folder / "retsync.db"
    shutil.copy(_TEMPLATE["db"], target)
    return make_engine(f"sqlite:///{target}")


class Channel(ScriptedConnector):
    """The scripted channel, answering each push with whatever the machine chose last."""

    answer: ClassVar[PushStatus] = PushStatus.PUSHED

    def act(self, act: DecisionAct) -> PushResult:
        type(self).pushes.append(act)
        if self.answer is PushStatus.PENDING:
            return PushResult(PushStatus.PENDING, "processing", reference=f"process-{act.decision_ids[0]}")
        return PushResult(self.answer, f"answer {self.answer.value}")


RETURNS = 4
KINDS = [DecisionKind.ACCEPT, DecisionKind.REJECT, DecisionKind.CANCEL]  # cancel: unsupported by the channel
TERMINAL = {DecisionState.PUSHED.value, DecisionState.FAILED.value, DecisionState.UNSUPPORTED.value}


class OutboxMachine(RuleBasedStateMachine):
    decisions = Bundle("decisions")

    @initialize()
    def open_the_shop(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="retsync-outbox-"))
        self.db = _fresh_database(self.folder)
        self.now = BASE + timedelta(days=1)
        Channel.reset(RETURNS)
        Channel.answer = PushStatus.PUSHED
        self.connector = Channel("shop", ChannelSettings(connector="scripted"), Runtime(state_dir=self.folder))
        self.channel_id = ensure_channel(self.db, "shop", "scripted", self.now)
        self.pull()
        self.outbox = Outbox(self.db, {"shop": self.connector}, clock=lambda: self.now, max_attempts=4,
                             retry_base=timedelta(minutes=1), poll_after=timedelta(seconds=15),
                             lease=timedelta(minutes=5))
        self.reached: dict[int, str] = {}  # decision id -> the terminal state it reached
        self.pushed_at_push: dict[int, int] = {}  # decision id -> len(pushes) when it became pushed
        self.keys: dict[int, str] = {}

    def teardown(self) -> None:
        if hasattr(self, "db"):
            self.db.dispose()
            shutil.rmtree(self.folder, ignore_errors=True)

    def states(self) -> dict[int, str]:
        with self.db.connect() as conn:
            return dict(conn.execute(select(Decision.id, Decision.state).where(Decision.origin == "merchant")).all())

    def pull(self) -> None:
        SyncEngine(self.db, channel="shop", channel_id=self.channel_id, settings=self.connector.settings,
                   connector=self.connector, clock=lambda: self.now).sync_stream(Stream.RETURNS)

    @rule(target=decisions, n=st.integers(0, RETURNS - 1), kind=st.sampled_from(KINDS), whole=st.booleans())
    def merchant_decides(self, n: int, kind: DecisionKind, whole: bool) -> list[int]:
        try:
            recorded = record_decision(self.db, f"shop/R{n}", kind, line=None if whole else f"R{n}-L0",
                                       connector_for=lambda name: Channel, now=self.now)
        except DecisionRefused as refused:
            assert "still waiting to be pushed" in str(refused)
            return []
        return recorded.decision_ids

    @rule(answer=st.sampled_from(list(PushStatus)))
    def the_channel_answers(self, answer: PushStatus) -> None:
        Channel.answer = answer
        before = len(Channel.pushes)
        self.outbox.push_due()
        for act in Channel.pushes[before:]:
            for decision_id in act.decision_ids:
                assert decision_id not in self.pushed_at_push, f"decision {decision_id} pushed twice"
                assert self.keys.setdefault(decision_id, act.key) == act.key
        for decision_id, state in self.states().items():
            if state == DecisionState.PUSHED.value:
                self.pushed_at_push.setdefault(decision_id, len(Channel.pushes))

    @rule()
    def the_daemon_dies_after_claiming(self) -> None:
        """The claim is committed, the process is killed before the channel's answer is recorded."""
        claimed, _ = self.outbox._claim(["shop"], limit=2)
        for _, act in claimed:
            assert not set(act.decision_ids) & set(self.pushed_at_push), "a pushed decision was claimed again"

    @rule(minutes=st.sampled_from([0.5, 6, 90, 60 * 24]))
    def time_passes(self, minutes: float) -> None:
        """Covers poll delays, retry backoff and leases of dead claims running out."""
        self.now += timedelta(minutes=minutes)

    @rule(n=st.integers(0, RETURNS - 1), status=st.sampled_from(list(ReturnStatus)))
    def the_channel_changes_a_return_and_we_pull(self, n: int, status: ReturnStatus) -> None:
        Channel.returns[n] = make_return(n, status=status).model_copy(update={"revision": f"{n}:{self.now}"})
        self.pull()

    @precondition(lambda self: hasattr(self, "db"))
    @invariant()
    def nothing_pushed_comes_back_and_outcomes_stay(self) -> None:
        states = self.states()
        for decision_id, state in self.reached.items():
            assert states[decision_id] == state, f"decision {decision_id} went from {state} to {states[decision_id]}"
        for decision_id, state in states.items():
            if state in TERMINAL:
                self.reached.setdefault(decision_id, state)

    @precondition(lambda self: hasattr(self, "db"))
    @invariant()
    def at_most_one_open_decision_per_line(self) -> None:
        with self.db.connect() as conn:
            rows = conn.execute(select(Decision.return_line_id).where(
                Decision.origin == "merchant",
                Decision.state.in_([DecisionState.PENDING.value, DecisionState.SENDING.value]))).scalars().all()
        assert len(rows) == len(set(rows))


OutboxMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_no_event_sequence_repeats_or_reopens_a_pushed_decision = OutboxMachine.TestCase
