"""A small two-channel history for the reporting tests, pulled through the bol and Allegro sandboxes.

The sandboxes give the real shape (returns linked to their orders and order lines, bol's synced decisions,
Allegro's refunds); then every number the views and the report read — times, amounts, quantities, products,
customer groups, flags — is set to the plan below, so each expected figure in the tests can be worked out by
hand from this file alone. Customer groups and flags are written directly: the logic that writes them is
another module's job, and whatever it wrote is cleared first.

The plan (all times UTC; hours are created→received→decided→refunded):

    bol (EUR, return_cost 4.50)
      B0 refunded  defective  "Artikel werkt niet"  created 10-05 10:00  +24h  +12h  +6h  (42h)  2000  P1 x1 of 2
      B1 refunded  defective  "Artikel werkt niet"  created 10-05 15:00  +72h  +24h  +6h  (102h) 1500  P2 x2 of 3
      B2 requested wrong_size "Verkeerde maat"      created 10-12 09:00  -                         -    P1 x1 of 1
                                                                             (+ P2 x1 sold, not returned)
    allegro (PLN, return_cost 12)
      A0 refunded  damaged    "DAMAGED"             created 10-05 08:00  +48h  +12h  +12h (72h)  38990 P3 x1 of 1
      A1 received  wrong_item "INCOMPLETE"          created 10-13 12:00  -                         -    P1 x1 of 2
      A2 refunded  wrong_item "INCOMPLETE"          created 10-14 23:30  refunded +48h            12900 P3 x1 of 1

    orders placed: B0 10-01, B1 10-02, B2 10-08, A0 09-30, A1 10-10, A2 10-06 (each 12:00)
    customer groups: G1 = B0, A1 and both their orders (A1's order comes after B0's return: bought again)
                     G2 = B1 and its order;  G3 = A0, A2 and their orders (A2's order after A0's return)
                     G4 = B2's order only;   B2's return has no group
    flags: B1 refund_overdue (open); A1's line not_shipped_by_customer (resolved 10-22)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from retsync import registry
from retsync.app.daemon import Runner
from retsync.config import Config, load_config
from retsync.store.models import Channel, CustomerGroup, Order, OrderLine, Return, ReturnFlag, ReturnLine

SANDBOX_URL = "http://sandbox.invalid"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


PRODUCTS = {"P1": ("SKU-P1", "1111111111111", "Desk lamp"), "P2": ("SKU-P2", "2222222222222", "Coffee mug"),
            "P3": ("SKU-P3", None, "Winter jacket")}


@dataclass(frozen=True)
class Plan:
    status: str
    reason: str
    channel_reason: str
    created: str
    received: str | None
    decided: str | None
    refunded: str | None
    refund_amount: int | None
    product: str
    returned: int
    sold: int
    placed: str
    extra_sold: tuple[tuple[str, int], ...] = ()


PLANS: dict[str, list[Plan]] = {
    "bol": [
        Plan("refunded", "defective", "Artikel werkt niet", "2026-10-05 10:00", "2026-10-06 10:00",
             "2026-10-06 22:00", "2026-10-07 04:00", 2000, "P1", 1, 2, "2026-10-01 12:00"),
        Plan("refunded", "defective", "Artikel werkt niet", "2026-10-05 15:00", "2026-10-08 15:00",
             "2026-10-09 15:00", "2026-10-09 21:00", 1500, "P2", 2, 3, "2026-10-02 12:00"),
        Plan("requested", "wrong_size", "Verkeerde maat", "2026-10-12 09:00", None, None, None, None,
             "P1", 1, 1, "2026-10-08 12:00", extra_sold=(("P2", 1),)),
    ],
    "allegro": [
        Plan("refunded", "damaged", "DAMAGED", "2026-10-05 08:00", "2026-10-07 08:00", "2026-10-07 20:00",
             "2026-10-08 08:00", 38990, "P3", 1, 1, "2026-09-30 12:00"),
        Plan("received", "wrong_item", "INCOMPLETE", "2026-10-13 12:00", None, None, None, None,
             "P1", 1, 2, "2026-10-10 12:00"),
        Plan("refunded", "wrong_item", "INCOMPLETE", "2026-10-14 23:30", None, None, "2026-10-16 23:30", 12900,
             "P3", 1, 1, "2026-10-06 12:00"),
    ],
}
CURRENCY = {"bol": "EUR", "allegro": "PLN"}
RETURN_COST = {"bol": "4.50", "allegro": "12"}


@dataclass
class History:
    """What the tests need to find the planned rows again: return ids by plan name (B0…A2), group ids."""

    db: Engine
    config_path: Path
    returns: dict[str, int]
    orders: dict[str, int]
    groups: dict[str, int]
    flags: dict[str, int]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, (int, float)) else json.dumps(str(value))


def write_config(path: Path, state_dir: Path, db_url: str) -> Path:
    lines = [f'[database]\nurl = "{db_url}"\n', f'[daemon]\nstate_dir = "{state_dir}"\nlog_level = "WARNING"\n']
    for name in PLANS:
        cls = registry.get(name)
        assert cls is not None
        table = {**cls.sandbox_channel(SANDBOX_URL), "backfill_days": 3650, "max_retries": 2}
        lines.append(f"[channels.{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
        lines.append(f'return_cost = "{RETURN_COST[name]}"\n')
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def pull(config: Config, db: Engine) -> None:
    transports = {}
    for name in PLANS:
        cls = registry.get(name)
        assert cls is not None
        emulator = cls.sandbox(seed=3, returns=len(PLANS[name]))
        assert emulator is not None
        transports[name] = emulator.transport()
    runner = Runner(config, transports=transports, db=db)
    runner.open()
    try:
        outcomes, _ = runner.sync_once()
    finally:
        runner.close()
    assert all(o.ok for o in outcomes), outcomes


def _apply(conn: Connection, channel: str, ret: Row[Any], plan: Plan) -> int:
    """Set one pulled return, its one kept line and its order to the plan; answer the order's id."""
    sku, ean, title = PRODUCTS[plan.product]
    ean = ean if channel == "bol" else None  # Allegro lines carry no EAN: P1 is matched on its SKU alone
    conn.execute(update(Return).where(Return.id == ret.id).values(
        status=plan.status, reason=plan.reason, channel_reason=plan.channel_reason, created_at=utc(plan.created),
        received_at=plan.received and utc(plan.received), decided_at=plan.decided and utc(plan.decided),
        refunded_at=plan.refunded and utc(plan.refunded), refund_amount=plan.refund_amount,
        currency=CURRENCY[channel]))
    lines = conn.execute(select(ReturnLine.id, ReturnLine.order_line_id).where(ReturnLine.return_id == ret.id).order_by(ReturnLine.id)).all()
    kept = lines[0]
    assert kept.order_line_id is not None and ret.order_id is not None, "the pull links returns to their orders"
    conn.execute(delete(ReturnLine).where(ReturnLine.return_id == ret.id, ReturnLine.id != kept.id))
    conn.execute(update(ReturnLine).where(ReturnLine.id == kept.id).values(
        sku=sku, ean=ean, title=title, quantity=plan.returned, reason=plan.reason,
        channel_reason=plan.channel_reason, currency=CURRENCY[channel]))
    conn.execute(delete(OrderLine).where(OrderLine.order_id == ret.order_id, OrderLine.id != kept.order_line_id))
    conn.execute(update(OrderLine).where(OrderLine.id == kept.order_line_id).values(
        sku=sku, ean=ean, title=title, quantity=plan.sold, currency=CURRENCY[channel]))
    for n, (product, quantity) in enumerate(plan.extra_sold):
        extra_sku, extra_ean, extra_title = PRODUCTS[product]
        conn.execute(insert(OrderLine).values(
            order_id=ret.order_id, external_id=f"extra-{n}", sku=extra_sku,
            ean=extra_ean if channel == "bol" else None, title=extra_title, quantity=quantity, unit_price=1000,
            currency=CURRENCY[channel]))
    conn.execute(update(Order).where(Order.id == ret.order_id).values(placed_at=utc(plan.placed),
                                                                       currency=CURRENCY[channel]))
    return int(ret.order_id)


def shape(db: Engine) -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
    returns: dict[str, int] = {}
    orders: dict[str, int] = {}
    with db.begin() as conn:
        # whatever reconciliation wrote is replaced by the plan's groups and flags
        conn.execute(delete(ReturnFlag))
        conn.execute(update(Return).values(customer_group_id=None, customer_match=None))
        conn.execute(update(Order).values(customer_group_id=None, customer_match=None))
        conn.execute(delete(CustomerGroup))
        for channel, plans in PLANS.items():
            pulled = conn.execute(select(Return.id, Return.order_id).join(Channel, Channel.id == Return.channel_id)
                                  .where(Channel.name == channel).order_by(Return.external_id)).all()
            assert len(pulled) == len(plans), f"{channel}: the sandbox gave {len(pulled)} returns"
            for n, (ret, plan) in enumerate(zip(pulled, plans)):
                name = f"{channel[0].upper()}{n}"
                returns[name] = ret.id
                orders[name] = _apply(conn, channel, ret, plan)
        assert len(set(orders.values())) == len(orders), "each planned return has its own order"
        now = utc("2026-10-20 00:00")
        groups = {name: conn.execute(insert(CustomerGroup).values(created_at=now, updated_at=now)
                                     .returning(CustomerGroup.id)).scalar_one() for name in ("G1", "G2", "G3", "G4")}
        members = {"G1": (["B0", "A1"], ["B0", "A1"]), "G2": (["B1"], ["B1"]), "G3": (["A0", "A2"], ["A0", "A2"]),
                   "G4": ([], ["B2"])}
        for group, (in_returns, in_orders) in members.items():
            conn.execute(update(Return).where(Return.id.in_([returns[n] for n in in_returns]))
                         .values(customer_group_id=groups[group], customer_match="email"))
            conn.execute(update(Order).where(Order.id.in_([orders[n] for n in in_orders]))
                         .values(customer_group_id=groups[group], customer_match="email"))
        a1_line = conn.execute(select(ReturnLine.id).where(ReturnLine.return_id == returns["A1"])).scalar_one()
        flags = {
            "overdue": conn.execute(insert(ReturnFlag).values(
                return_id=returns["B1"], code="refund_overdue", detail="received 2026-10-08, no refund after 14 days",
                flagged_at=utc("2026-10-22 06:00"), updated_at=utc("2026-10-22 06:00"))
                .returning(ReturnFlag.id)).scalar_one(),
            "not_shipped": conn.execute(insert(ReturnFlag).values(
                return_id=returns["A1"], return_line_id=a1_line, code="not_shipped_by_customer",
                detail="no parcel movement for 7 days", flagged_at=utc("2026-10-20 12:00"),
                updated_at=utc("2026-10-22 08:00"), resolved_at=utc("2026-10-22 08:00"))
                .returning(ReturnFlag.id)).scalar_one(),
        }
    return returns, orders, groups, flags


@pytest.fixture
def history(db: Engine, db_url: str, tmp_path: Path) -> Iterator[History]:
    path = write_config(tmp_path / "config.toml", tmp_path, db_url)
    config = load_config(path, registry.settings_model_for, registry.names, registry.holds_returns)
    pull(config, db)
    returns, orders, groups, flags = shape(db)
    yield History(db=db, config_path=path, returns=returns, orders=orders, groups=groups, flags=flags)
