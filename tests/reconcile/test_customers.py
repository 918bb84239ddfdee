"""One customer across channels: the shoes bought on Allegro on Monday and in the own shop on Tuesday."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from retsync.reconcile.customers import email_key, name_postcode_key, phone_key
from tests.reconcile.conftest import Fleet


@pytest.mark.parametrize(("raw", "key"), [
    ("  Anna.Nowak+zwrot@Example.COM ", "anna.nowak@example.com"),
    ("x7f3kq2+a91b2c@allegromail.pl", "x7f3kq2@allegromail.pl"),
    ("not an address", None), ("", None), (None, None),
])
def test_email_key(raw: str | None, key: str | None) -> None:
    assert email_key(raw) == key


@pytest.mark.parametrize(("raw", "key"), [
    ("+48 501 234 567", "501234567"), ("0048501234567", "501234567"), ("501-234-567", "501234567"),
    ("+31 6 12345678", "612345678"), ("12 34", None), (None, None),
])
def test_phone_key(raw: str | None, key: str | None) -> None:
    assert phone_key(raw) == key


def test_name_postcode_key_ignores_case_accents_order_and_punctuation() -> None:
    assert name_postcode_key("Łucja Żółć", "00-950") == name_postcode_key("ZOLC,  lucja", "00950") == "lucja zolc|00950"
    assert name_postcode_key("Anna Nowak", None) is None
    assert name_postcode_key(None, "1011 AB") is None


def _buyer_of_a_return(fleet: Fleet) -> tuple[str, dict[str, Any]]:
    """An Allegro return already synced, and its buyer as the checkout form names them."""
    fleet.sync()
    with fleet.db.connect() as conn:
        return_id, order_id = conn.execute(text(
            "SELECT external_id, order_external_id FROM v_returns WHERE channel = 'allegro' "
            "ORDER BY return_id LIMIT 1")).one()
    return return_id, fleet.emulators["allegro"].checkout_form(order_id)["buyer"]  # type: ignore[attr-defined]


def _shop_return(fleet: Fleet, **billing: str) -> int:
    shop = fleet.emulators["shop"]
    order_id = shop.request_return(reason="Too small")  # type: ignore[attr-defined]
    with shop.lock:
        order = shop.order(order_id)  # type: ignore[attr-defined]
        order["billing"].update(billing)
        shop._stamp(order)  # type: ignore[attr-defined]
    return int(order_id)


def _group(fleet: Fleet, channel: str, external_id: str) -> tuple[int | None, str | None]:
    with fleet.db.connect() as conn:
        row = conn.execute(text("SELECT customer_group_id, customer_match FROM returns WHERE id = :id"),
                           {"id": fleet.return_id(channel, external_id)}).one()
    return row.customer_group_id, row.customer_match


def test_the_same_buyer_on_allegro_and_in_the_own_shop_is_one_customer(fleet: Fleet) -> None:
    fleet.add("allegro", "allegro")
    fleet.add("shop", "woocommerce")
    allegro_return, buyer = _buyer_of_a_return(fleet)
    phone = buyer["phoneNumber"]
    shop_order = _shop_return(fleet, first_name=buyer["lastName"].upper(), last_name=buyer["firstName"],
                              email="shoes.lover@example.com", phone=f"+48 {phone[:3]} {phone[3:6]} {phone[6:]}",
                              postcode=buyer["address"]["postCode"].replace("-", ""))
    fleet.sync()

    allegro_group, _ = _group(fleet, "allegro", allegro_return)
    shop_group, shop_match = _group(fleet, "shop", str(shop_order))
    assert allegro_group is not None and allegro_group == shop_group
    assert shop_match == "phone", "the strongest rule the two records share is stored"
    with fleet.db.connect() as conn:
        customer = conn.execute(text("SELECT channels, returns, orders FROM v_customers WHERE customer_group_id = :g"),
                                {"g": shop_group}).one()
    assert customer.channels == 2 and customer.returns >= 2 and customer.orders >= 2


def test_name_and_postcode_match_when_nothing_else_does(fleet: Fleet) -> None:
    fleet.add("allegro", "allegro")
    fleet.add("shop", "woocommerce")
    allegro_return, buyer = _buyer_of_a_return(fleet)
    shop_order = _shop_return(fleet, first_name=buyer["firstName"], last_name=buyer["lastName"], phone="",
                              email="someone.else@example.com", postcode=buyer["address"]["postCode"])
    fleet.sync()
    assert _group(fleet, "shop", str(shop_order)) == (_group(fleet, "allegro", allegro_return)[0], "name_postcode")


def test_a_return_that_bridges_two_customers_merges_their_groups(fleet: Fleet) -> None:
    fleet.add("allegro", "allegro")
    fleet.add("shop", "woocommerce")
    allegro_return, buyer = _buyer_of_a_return(fleet)
    first = _shop_return(fleet, email="bridge@example.com", phone="", first_name="Jan", last_name="Bridge",
                         postcode="99-999")
    fleet.sync()
    shop_group = _group(fleet, "shop", str(first))[0]
    allegro_group = _group(fleet, "allegro", allegro_return)[0]
    assert shop_group != allegro_group

    second = _shop_return(fleet, email="Bridge+2@example.com", phone=buyer["phoneNumber"], first_name="Jan",
                          last_name="Bridge", postcode="99-999")
    fleet.sync()
    groups = {_group(fleet, "shop", str(first))[0], _group(fleet, "shop", str(second))[0],
              _group(fleet, "allegro", allegro_return)[0]}
    assert groups == {min(shop_group, allegro_group)}, "the older group keeps every record of both"  # type: ignore[type-var]
    with fleet.db.connect() as conn:
        dropped = max(shop_group, allegro_group)  # type: ignore[type-var]
        assert conn.execute(text("SELECT COUNT(*) FROM customer_groups WHERE id = :g"), {"g": dropped}).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM customer_keys WHERE group_id = :g"),
                            {"g": dropped}).scalar_one() == 0

    fleet.sync()
    with fleet.db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM returns WHERE customer_group_id IS NULL AND "
                                 "customer_email IS NOT NULL")).scalar_one() == 0


def _partition(fleet: Fleet) -> set[frozenset[str]]:
    """Who is grouped with whom, whatever the group ids."""
    groups: dict[int, set[str]] = {}
    with fleet.db.connect() as conn:
        for table in ("orders", "returns"):
            for record, group in conn.execute(text(f"SELECT id, customer_group_id FROM {table} "
                                                   "WHERE customer_group_id IS NOT NULL")):
                groups.setdefault(group, set()).add(f"{table}:{record}")
    return {frozenset(members) for members in groups.values()}


def test_grouping_a_few_records_at_a_time_finds_the_same_customers(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first backfill groups its history in chunks (memory stays flat); the customers found must not depend
    on where the chunks end, because a later chunk looks up the keys an earlier one stored."""
    from retsync.reconcile import customers

    fleet.add("allegro", "allegro")
    fleet.add("shop", "woocommerce")
    monkeypatch.setattr(customers, "CHUNK", 2)
    _, buyer = _buyer_of_a_return(fleet)
    for _ in range(3):
        _shop_return(fleet, email=buyer["email"], phone="", first_name="Ola", last_name="Zet", postcode="11-111")
    fleet.sync()
    in_chunks = _partition(fleet)
    assert any(len(members) >= 4 for members in in_chunks), "the buyer's purchases across channels are one group"

    with fleet.db.begin() as conn:
        for table in ("orders", "returns"):
            conn.execute(text(f"UPDATE {table} SET customer_group_id = NULL, customer_match = NULL"))
        conn.execute(text("DELETE FROM customer_keys"))
        conn.execute(text("DELETE FROM customer_groups"))
    monkeypatch.setattr(customers, "CHUNK", 1_000_000)
    customers.group_customers(fleet.db, fleet.clock())
    assert _partition(fleet) == in_chunks
