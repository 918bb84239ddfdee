"""Linking over records written straight into the tables: each returned line to the order line it came from."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, insert, select, text

from retsync.reconcile.linking import link_returns
from retsync.store.models import Order, OrderLine, Return, ReturnLine
from tests.reconcile.records import NOW, channel, count, order, return_


def _links(db: Engine) -> dict[str, tuple[str | None, str | None]]:
    """Return line external id → (the order line's external id, link_method)."""
    with db.connect() as conn:
        return {line: (order_line, method) for line, order_line, method in conn.execute(
            select(ReturnLine.external_id, OrderLine.external_id, ReturnLine.link_method)
            .outerjoin(OrderLine, OrderLine.id == ReturnLine.order_line_id))}


def _orders(db: Engine) -> dict[str, int | None]:
    with db.connect() as conn:
        return dict(conn.execute(select(Return.external_id, Return.order_id)).all())


def test_lines_link_by_the_channels_key_then_ean_then_sku_within_their_order(db: Engine) -> None:
    shop = channel(db, "shop")
    order_id = order(db, shop, "O1", lines=(
        {"external_id": "L1", "sku": "SHOE-41", "ean": "5901234123457"},
        {"external_id": "L2", "sku": "SHOE-42", "ean": "5901234123464"},
        {"external_id": "L3", "sku": "SHOE-42"},  # the same product twice: the first line by id is taken
        {"external_id": "L4", "sku": "SOCK"}))
    other = order(db, shop, "O2", lines=({"external_id": "L1", "sku": "SHOE-41"},))
    return_(db, shop, "R1", "O1", lines=(
        {"external_id": "R1-1", "order_external_id": "O1", "order_line_external_id": "L4", "sku": "SHOE-41"},
        {"external_id": "R1-2", "order_external_id": "O1", "ean": "5901234123457"},
        {"external_id": "R1-3", "order_external_id": "O1", "sku": "SHOE-42"},
        {"external_id": "R1-4", "order_external_id": "O1", "sku": "HAT"},
        {"external_id": "R1-5", "order_external_id": "O1", "order_line_external_id": "L9", "ean": "5901234123464"}))

    linked = link_returns(db)
    assert (linked.orders_linked, linked.lines_linked) == (1, 4)
    assert _links(db) == {"R1-1": ("L4", "channel_key"), "R1-2": ("L1", "ean"), "R1-3": ("L2", "sku"),
                          "R1-4": (None, None), "R1-5": ("L2", "ean")}
    assert _orders(db) == {"R1": order_id} and other != order_id


def test_an_order_of_the_same_number_in_another_channel_is_not_the_returns(db: Engine) -> None:
    shop, market = channel(db, "shop"), channel(db, "market")
    order(db, market, "1001", lines=({"external_id": "A", "sku": "X"},))
    return_(db, shop, "R1", "1001", lines=({"external_id": "R1-1", "order_external_id": "1001",
                                            "order_line_external_id": "A", "sku": "X"},))
    assert link_returns(db).lines_linked == 0
    assert _orders(db) == {"R1": None} and _links(db) == {"R1-1": (None, None)}


def test_an_order_stored_later_links_its_returns_on_the_next_pass_of_its_channel(db: Engine) -> None:
    shop, market = channel(db, "shop"), channel(db, "market")
    return_(db, shop, "R1", "O7", lines=({"external_id": "R1-1", "order_external_id": "O7", "sku": "X"},))
    return_(db, market, "R2", "O8", lines=({"external_id": "R2-1", "order_external_id": "O8", "sku": "Y"},))
    assert link_returns(db, shop).lines_linked == 0

    order_id = order(db, shop, "O7", lines=({"external_id": "O7-1", "sku": "X"},))
    order(db, market, "O8", lines=({"external_id": "O8-1", "sku": "Y"},))
    linked = link_returns(db, shop)
    assert (linked.orders_linked, linked.lines_linked) == (1, 1), "the other channel waits for its own pass"
    assert _orders(db) == {"R1": order_id, "R2": None}
    assert _links(db) == {"R1-1": ("O7-1", "sku"), "R2-1": (None, None)}
    again = link_returns(db, shop)
    assert (again.orders_linked, again.lines_linked) == (0, 0), "what is linked stays as it is"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # PostgreSQL's planner statistics
def test_tables_filled_faster_than_autovacuum_looks_are_analysed_before_linking(db: Engine) -> None:
    """A first backfill fills the tables from empty within seconds; linking planned with the statistics of empty
    tables ran for minutes, so it has them analysed first (where they changed a lot, not on every poll)."""
    shop = channel(db, "shop")
    with db.begin() as conn:
        conn.execute(insert(Order), [{"channel_id": shop, "external_id": f"O{n}", "currency": "EUR", "placed_at": NOW,
                                      "content_hash": "x", "first_seen_at": NOW, "updated_at": NOW}
                                     for n in range(1500)])
    return_(db, shop, "R1", "O7", lines=({"external_id": "R1-1", "order_external_id": "O7", "sku": "HAT"},))
    deadline = time.monotonic() + 10  # a backend reports what it wrote to the statistics within a second or so
    while time.monotonic() < deadline and not count(
            db, "SELECT COUNT(*) FROM pg_stat_user_tables WHERE relname = 'orders' AND n_mod_since_analyze >= 1500"):
        time.sleep(0.1)

    link_returns(db)

    with db.connect() as conn:
        analysed = dict(conn.execute(text("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                                          "WHERE relname IN ('orders', 'returns')")).all())
    assert analysed == {"orders": True, "returns": False}, "1,500 new orders analysed; one new return is not"
    assert _orders(db)["R1"] is not None
