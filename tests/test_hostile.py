"""Hostile input, generated: whatever a channel sends, one record never stops its channel.

Every connector's mapping is fed the records its own sandbox serves, each with one value swapped for something
hostile (overlong text, huge / negative / exponent numbers, NaN and Infinity, far dates, control characters,
deep nesting, a missing key, a value of the wrong type). Captured from a real pull, the calls are exactly the
ones each connector makes through `RecordSieve`, so the property covers the code the daemon runs: no exception
escapes the sieve; a record is either set aside with a reason, or mapped into one the store can judge
(`pages.refusal`) and hash.

End to end, a channel that pages by "changed since" is fed a record dated in year 9999 and a poison record
through the real engine on SQLite and PostgreSQL: no page fails, the poison is quarantined, and the next
return is stored (the per-connector sandboxes do the same in `test_quarantine.py`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from retsync.app.daemon import Runner
from retsync.kit.contract import Capabilities, Connector, Page, PullContext, Runtime, Stream
from retsync.kit.model import Order, Return, ReturnLine, ReturnStatus
from retsync.kit.paging import ChangedSinceWalk
from retsync.kit.payload import text as read_text
from retsync.kit.records import RecordSieve
from retsync.kit.settings import ChannelSettings
from retsync.store.channels import ensure_channel
from retsync.store.db import make_engine, upgrade
from retsync.store.models import SyncCursor
from retsync.store.pages import content_hash, refusal
from retsync.sync.engine import SyncEngine
from retsync.testing.config import config_for
from retsync.testing.contract import FAST, SANDBOX_URL
from retsync_connectors.allegro.connector import AllegroConnector
from retsync_connectors.amazon.connector import AmazonConnector
from retsync_connectors.baselinker.connector import BaseLinkerConnector
from retsync_connectors.bol.connector import BolConnector
from retsync_connectors.channable.connector import ChannableConnector
from retsync_connectors.magento.connector import MagentoConnector
from retsync_connectors.prestashop.connector import PrestaShopConnector
from retsync_connectors.shoper.connector import ShoperConnector
from retsync_connectors.shopify.connector import ShopifyConnector
from retsync_connectors.woocommerce.connector import WooCommerceConnector
from tests.fakes import BASE
from tests.prestashop.flavours import PrestaShop8, flavour

HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


HOSTILE_VALUES = st.one_of(
    st.text(min_size=201, max_size=600),                                      # longer than any varchar column
    st.sampled_from(["1e30", "1E+30", "1e300000", "-1e300000", "9" * 80, "-5", "0.000001", "1,5", "١٢٣"]),
    st.sampled_from([1e30, 1e300, -1, -10**40, 10**40, 2**63, float("nan"), float("inf"), float("-inf")]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "1e-400"]),
    st.sampled_from(["9999-12-31T23:59:59Z", "9999-12-31 23:59:59", "0001-01-01T00:00:00+14:00", "1900-01-01",
                     "1970-01-01T00:00:00Z", "2024-02-30T10:00:00Z", "0000-00-00 00:00:00", "+275760-09-13"]),
    st.sampled_from(["\x1b]0;owned\x07", "\x1b[2J", "\x00", "a\x00b", "\u202e", "\r\n=HYPERLINK(\"x\")"]),
    st.sampled_from([50, 3000]).map(_nested),                               # built fresh for each example
    st.sampled_from([list, dict]).map(lambda empty: empty()),
    st.sampled_from([None, True, "", " "]),
)


@dataclasses.dataclass(frozen=True)
class _Field:
    """A step into a field of the records a page brought along (PrestaShop's `Lookups`: the order details
    that hold a merchandise return's quantities)."""

    name: str


def _payload(arg: Any) -> bool:
    """An argument of a mapping call that holds what the channel sent."""
    return isinstance(arg, (dict, list)) or dataclasses.is_dataclass(arg) and not isinstance(arg, type)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value a hostile value can go: each leaf, each object member and list item (not
    inside a hostile value already placed: deep nesting is one of them), and the same inside the JSON fields of
    a dataclass of fetched records."""
    if len(prefix) > 12:
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for member in dataclasses.fields(value):
            item = getattr(value, member.name)
            if isinstance(item, (dict, list)):
                yield from _paths(item, (*prefix, _Field(member.name)))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


def _swap(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> None:
    for step in path[:-1]:
        value = getattr(value, step.name) if isinstance(step, _Field) else value[step]
    if delete and isinstance(value, dict):
        del value[path[-1]]
    else:
        value[path[-1]] = new


class Captured:
    """The mapping calls one real pull of a sandbox made through `RecordSieve.map`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, tuple[Any, ...], dict[str, Any]]] = []


def _capture(connector: type[Connector], tmp_path: Path) -> Captured:
    captured = Captured()
    real_map = RecordSieve.map

    def spy(self: RecordSieve, kind: str, raw: Any, mapper: Any, *args: Any, external_id: Any = None,
            **kwargs: Any) -> Any:
        captured.calls.append((kind, mapper, copy.deepcopy(args), dict(kwargs)))
        return real_map(self, kind, raw, mapper, *args, external_id=external_id, **kwargs)

    emulator = connector.sandbox(seed=5, returns=8)
    assert emulator is not None
    table = {**connector.sandbox_channel(SANDBOX_URL), **FAST}
    db_url = f"sqlite:///{tmp_path / 'capture.db'}"
    config = config_for(tmp_path, db_url, {"main": table})
    db = make_engine(db_url)
    upgrade(db)
    runner = Runner(config, transports={"main": emulator.transport()}, db=db)
    runner.open()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RecordSieve, "map", spy)
        assert runner.pull("main").ok
    runner.close()
    db.dispose()
    # the mappings proper (not the revision helpers): the calls whose answer is a record
    captured.calls = [call for call in captured.calls
                      if isinstance(_call(call), (Return, Order)) or _call(call) is None and call[0] == "return"]
    assert captured.calls, f"{connector.name}: the sandbox pull mapped nothing"
    return captured


def _call(call: tuple[str, Any, tuple[Any, ...], dict[str, Any]]) -> Any:
    _, mapper, args, kwargs = call
    try:
        return mapper(*copy.deepcopy(args), **kwargs)
    except Exception:
        return "raised"


@pytest.fixture(scope="module", params=[BolConnector, AllegroConnector, WooCommerceConnector, ShoperConnector,
                                        PrestaShopConnector, PrestaShop8, MagentoConnector, ChannableConnector,
                                        BaseLinkerConnector, ShopifyConnector, AmazonConnector], ids=flavour)
def captured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Captured:
    return _capture(request.param, tmp_path_factory.mktemp(flavour(request.param)))


@HOSTILE
@given(data=st.data())
def test_no_hostile_value_gets_past_the_sieve_as_an_exception_or_into_the_store_unjudged(
        captured: Captured, data: st.DataObject) -> None:
    kind, mapper, args, kwargs = data.draw(st.sampled_from(captured.calls), label="mapping call")
    args = copy.deepcopy(args)
    payloads = [index for index, arg in enumerate(args) if _payload(arg)]
    target = data.draw(st.sampled_from(payloads), label="argument")
    paths = list(_paths(args[target]))
    for _ in range(data.draw(st.integers(1, 3), label="how many values")):
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="where")
        _swap(args[target], path, data.draw(HOSTILE_VALUES, label="what"), data.draw(st.booleans(), label="drop"))
        paths = list(_paths(args[target]))

    sieve = RecordSieve()
    mapped = sieve.map(kind, args[target], mapper, *args, external_id="X", **kwargs)

    if mapped is None and sieve.quarantined:
        [aside] = sieve.quarantined
        assert aside.reason and aside.kind == kind and "Traceback" not in aside.reason
        return
    if mapped is not None:
        problem = refusal(mapped)  # what the engine quarantines instead of writing; it must judge, not raise
        assert problem is None or isinstance(problem, str)
        content_hash(mapped)


QUANTITY_KEYS = ("quantity", "qty", "expectedQuantity", "product_quantity", "product_quantity_return", "qty_requested",
                 "qty_authorized", "qty_returned", "qty_approved", "qty_ordered", "qty_refunded",
                 "product_quantity_refunded")


@pytest.mark.parametrize("poison", ["1e30", 1e30, "1e300000"])
def test_every_quantity_a_connector_reads_refuses_a_number_no_line_holds(captured: Captured, poison: Any) -> None:
    """Each quantity field of each sandbox record, poisoned alone: the record is set aside naming the quantity
    (or the field is one the mapping does not read as a quantity, and the record maps as before)."""
    refused = 0
    poisoned_fields: set[tuple[Any, ...]] = set()
    for kind, mapper, args, kwargs in captured.calls:
        for target, arg in enumerate(args):
            if not _payload(arg):
                continue
            for path in [path for path in _paths(arg) if path and path[-1] in QUANTITY_KEYS]:
                # each field once per mapping: the same field of the next line or record proves nothing more,
                # and a PrestaShop page's order details would make this quadratic
                field = (mapper, target, tuple(part if isinstance(part, str) else "#" for part in path))
                if field in poisoned_fields:
                    continue
                poisoned_fields.add(field)
                poisoned = copy.deepcopy(args)
                _swap(poisoned[target], path, poison, False)
                sieve = RecordSieve()
                mapped = sieve.map(kind, poisoned[target], mapper, *poisoned, **kwargs)
                if sieve.quarantined:
                    assert "quantity" in sieve.quarantined[0].reason, sieve.quarantined[0].reason
                    refused += 1
                elif isinstance(mapped, (Return, Order)):
                    assert refusal(mapped) is None and all(line.quantity <= 100_000 for line in mapped.lines)
    assert refused, "no quantity of the sandbox's records was poisoned"


# --- end to end: a "changed since" channel, a year-9999 record and a poison one, on both databases ----------


class WalkingChannel(Connector):
    """A shop listing records by modification date, walked with the shared `ChangedSinceWalk` and mapped
    through `RecordSieve`, as the WooCommerce, Shoper and PrestaShop connectors do."""

    name: ClassVar[str] = "walking"
    title: ClassVar[str] = "Walking test channel"
    capabilities: ClassVar[Capabilities] = Capabilities(streams=(Stream.RETURNS,), decisions={})
    records: ClassVar[list[dict[str, Any]]] = []

    def pull(self, stream: Stream, context: PullContext) -> Iterator[Page]:
        walk = ChangedSinceWalk.load(context.cursor, "", context.backfill_since, now=context.now)
        since = walk.since - context.overlap
        listed = [record for record in self.records if _modified(record) >= since]
        sieve = RecordSieve()
        returns = []
        for record in listed:
            walk.saw(_modified(record))
            mapped = sieve.map("return", record, _map, record, external_id=record.get("id"))
            if mapped is not None:
                returns.append(mapped)
        walk.finish()
        yield Page(returns=returns, cursor=walk.dump(""), quarantined=sieve.take())


def _modified(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["modified"])


def _map(record: dict[str, Any]) -> Return:
    from retsync.kit.payload import count

    return Return(external_id=str(record["id"]), status=ReturnStatus.REQUESTED, created_at=_modified(record),
                  lines=(ReturnLine(external_id="1", quantity=count(record["quantity"])),),
                  channel_reason=read_text(record.get("reason")))


def _walking_engine(db: Engine, tmp_path: Path, now: datetime) -> SyncEngine:
    channel_id = ensure_channel(db, "shop", "walking", BASE)
    connector = WalkingChannel("shop", ChannelSettings(connector="walking"), Runtime(state_dir=tmp_path))
    return SyncEngine(db, channel="shop", channel_id=channel_id, settings=connector.settings, connector=connector,
                      clock=lambda: now)


def _stored(db: Engine) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(text("SELECT external_id FROM returns")).scalars())


def test_a_return_dated_9999_and_a_poison_one_never_silence_a_changed_since_channel(
        db: Engine, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    WalkingChannel.records = [
        {"id": 1, "modified": (now - timedelta(days=1)).isoformat(), "quantity": 1},
        {"id": 2, "modified": "9999-12-31T23:59:59+00:00", "quantity": 1, "reason": "from the far future"},
        {"id": 3, "modified": (now - timedelta(hours=2)).isoformat(), "quantity": "1e30"},
    ]
    [first] = _walking_engine(db, tmp_path, now).sync()
    assert _stored(db) == {"1", "2"} and first.quarantined == 1
    with db.connect() as conn:
        cursor = conn.execute(select(SyncCursor.cursor)).scalar_one()
    assert datetime.fromisoformat(cursor["since"]) <= now, "the cursor stopped at the pull, not at year 9999"

    later = now + timedelta(minutes=10)
    WalkingChannel.records.append({"id": 4, "modified": (later - timedelta(minutes=1)).isoformat(), "quantity": 2})
    _walking_engine(db, tmp_path, later).sync()
    assert "4" in _stored(db), "a return after the year-9999 one is still stored"
    with db.connect() as conn:
        [(held, is_open)] = conn.execute(text("SELECT external_id, is_open FROM v_quarantine")).all()
    assert held == "3" and is_open


# --- a return of 100,000 lines: set aside before its lines are mapped, in bounded memory -------------------


def _bol_huge() -> tuple[Any, tuple[Any, ...]]:
    from retsync_connectors.bol.mapping import map_return

    item = {"rmaId": "1", "orderId": "2", "expectedQuantity": 1, "handled": False,
            "returnReason": {"mainReason": "Anders"}}
    entry = {"returnId": "1", "registrationDateTime": "2024-01-01T10:00:00+01:00", "fulfilmentMethod": "FBR",
             "returnItems": [item] * 100_000}
    return map_return, (entry,)


def _allegro_huge() -> tuple[Any, tuple[Any, ...]]:
    from retsync_connectors.allegro.mapping import map_return

    entry = {"id": "r1", "createdAt": "2024-01-01T10:00:00Z", "status": "CREATED",
             "items": [{"offerId": "7", "quantity": 1}] * 100_000}
    return map_return, (entry,)


def _woocommerce_huge() -> tuple[Any, tuple[Any, ...]]:
    from retsync_connectors.woocommerce.mapping import map_order

    order = {"id": 9, "currency": "EUR", "line_items": [{"id": 1, "quantity": 1, "total": "1.00"}] * 100_000}
    return map_order, (order,)


def _prestashop_huge() -> tuple[Any, tuple[Any, ...]]:
    from retsync_connectors.prestashop.mapping import Lookups, map_order

    order = {"id": 9, "id_currency": 1, "date_add": "2024-01-01 10:00:00",
             "associations": {"order_rows": [{"id": 1, "product_quantity": 1, "product_price": "1.000000"}] * 100_000}}
    return map_order, (order, Lookups())


def _prestashop_huge_details() -> tuple[Any, tuple[Any, ...]]:
    from retsync_connectors.prestashop.mapping import Lookups, StateTable, map_order_return

    record = {"id": 3, "id_order": 9, "state": 1, "date_add": "2024-01-01 10:00:00"}
    details = [{"id": 1, "id_order": 9, "product_quantity": 1, "product_quantity_return": 1}] * 100_000
    return map_order_return, (record, StateTable({}), Lookups(details={"9": details}))


@pytest.mark.parametrize("huge", [_bol_huge, _allegro_huge, _woocommerce_huge, _prestashop_huge,
                                  _prestashop_huge_details],
                         ids=["bol", "allegro", "woocommerce", "prestashop", "prestashop-details"])
def test_a_record_of_100000_lines_is_set_aside_before_its_lines_are_mapped(huge: Any) -> None:
    import tracemalloc

    mapper, args = huge()
    sieve = RecordSieve()
    tracemalloc.start()
    try:
        mapped = sieve.map("return", args[0], mapper, *args, external_id="big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert mapped is None
    [aside] = sieve.quarantined
    assert "100000 lines" in aside.reason and "at most 1000" in aside.reason
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB to refuse it: the lines were mapped first"
