"""Customer grouping over records written straight into the tables: who ends up with whom, under which rule, in
which group, however the pass is cut into chunks and however many passes it takes."""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import threading
import unicodedata
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, text

from retsync.reconcile import customers
from retsync.reconcile.customers import customer_keys, group_customers, name_postcode_key, phone_key
from retsync.store.models import CustomerGroup, Order
from tests.reconcile.records import NOW, channel, count, groups, order, partition, return_


def _reference_phone(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-9:] if len(digits) >= 7 else None


def _reference_name_postcode(name: str | None, postcode: str | None) -> str | None:
    if not name or not postcode:
        return None
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ł", "l")
    words = sorted(" ".join(re.sub(r"[^\w]+", " ", plain).split()).split())
    code = re.sub(r"[^0-9A-Za-z]", "", postcode).upper()
    return f"{' '.join(words)}|{code}" if words and code else None


_contact = st.one_of(st.none(), st.text(max_size=30), st.text(alphabet=" +-_.,'()/\t0123456789AaZzŁłÓóẞ", max_size=30))


@given(_contact)
def test_phone_keys_are_the_digits_of_any_text(phone: str | None) -> None:
    """The shortcut for plain ASCII gives the key the full rule gives."""
    assert phone_key(phone) == _reference_phone(phone)


@given(_contact, _contact)
def test_name_postcode_keys_ignore_case_accents_order_and_punctuation_of_any_text(name: str | None,
                                                                                  postcode: str | None) -> None:
    assert name_postcode_key(name, postcode) == _reference_name_postcode(name, postcode)


def test_one_customer_across_channels_by_email_phone_or_name_and_postcode(db: Engine) -> None:
    shop, market = channel(db, "shop"), channel(db, "market")
    order(db, shop, "O1", email="anna@example.pl", phone="+48 501 234 567")
    order(db, market, "O2", email="Anna+allegro@Example.PL")
    order(db, market, "O3", email="other@example.pl", phone="0048501234567")
    order(db, shop, "O4", name="Nowak, Anna", postcode="00-950")
    order(db, market, "O5", email="not.anna@example.pl", name="ANNA NOWAK", postcode="00950")
    order(db, shop, "O9", email="alone@example.pl", phone="600 000 000")
    found = group_customers(db, NOW)

    assert partition(db) == {frozenset({"o:O1", "o:O2", "o:O3"}), frozenset({"o:O4", "o:O5"}), frozenset({"o:O9"})}
    assert {record: match for record, (_, match) in groups(db).items()} == {
        "o:O1": "email", "o:O2": "email", "o:O3": "phone", "o:O4": "name_postcode", "o:O5": "name_postcode",
        "o:O9": "email"}, "the strongest rule shared with another purchase, else the record's strongest"
    assert (found.records_grouped, found.groups_created, found.groups_merged) == (6, 3, 0)


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_records_that_share_keys_only_through_others_are_one_customer(db: Engine, chunk: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A shares an e-mail with B, B a phone with C: A and C share nothing, yet they are one customer, whether the
    three are grouped in one chunk or each in its own transaction."""
    monkeypatch.setattr(customers, "PER_TRANSACTION", chunk)
    shop, market = channel(db, "shop"), channel(db, "market")
    order(db, shop, "A", email="chain@example.pl")
    order(db, market, "B", email="chain@example.pl", phone="501 000 001")
    order(db, shop, "C", phone="501000001", name="Jan Kowalski", postcode="11-111")
    order(db, market, "D", name="Kowalski Jan", postcode="11111")
    order(db, shop, "E", email="someone@example.pl")
    group_customers(db, NOW, chunk=chunk)
    assert partition(db) == {frozenset({"o:A", "o:B", "o:C", "o:D"}), frozenset({"o:E"})}


def test_a_return_is_its_orders_customer_and_shares_nothing_with_its_own_order(db: Engine) -> None:
    shop, market = channel(db, "shop"), channel(db, "market")
    first = order(db, shop, "O1", email="ola@example.pl", phone="502 000 002")
    second = order(db, shop, "O2", phone="502000002")
    return_(db, shop, "R1", "O1", order_id=first)  # names nobody: its order does
    return_(db, shop, "R2", "O2", order_id=second)
    return_(db, market, "R3", email="OLA@example.pl")  # another channel's return, no stored order
    group_customers(db, NOW)

    found = groups(db)
    assert partition(db) == {frozenset({"o:O1", "o:O2", "r:R1", "r:R2", "r:R3"})}
    assert found["r:R1"][1] == "email", "e-mail: O1's, shared with R3, a purchase of its own"
    assert found["r:R2"][1] == "phone", "O2's phone is O1's too"


def test_a_return_without_another_purchase_keeps_its_strongest_rule(db: Engine) -> None:
    shop = channel(db, "shop")
    only = order(db, shop, "O1", email="solo@example.pl", phone="503 000 003")
    return_(db, shop, "R1", "O1", order_id=only)
    group_customers(db, NOW)
    assert groups(db)["r:R1"][1] == "email", "a return shares its keys with its own order only: no match"
    assert groups(db)["r:R1"][0] == groups(db)["o:O1"][0]


def test_later_passes_keep_group_ids_and_merge_into_the_older_group(db: Engine) -> None:
    shop, market = channel(db, "shop"), channel(db, "market")
    order(db, shop, "O1", email="first@example.pl")
    order(db, market, "O2", email="second@example.pl", phone="504 000 004")
    group_customers(db, NOW)
    older, younger = groups(db)["o:O1"][0], groups(db)["o:O2"][0]
    assert older is not None and younger is not None and older < younger

    order(db, market, "O3", email="first@example.pl", name="Ewa Zielinska", postcode="22-222")
    later = NOW + timedelta(hours=1)
    assert group_customers(db, later).groups_created == 0
    assert groups(db)["o:O1"][0] == groups(db)["o:O3"][0] == older, "a new record joins the stored group"
    assert groups(db)["o:O2"][0] == younger

    order(db, shop, "O4", phone="+48504000004", name="ewa zielińska", postcode="22222")  # bridges the two
    merged = group_customers(db, later + timedelta(hours=1))
    assert merged.groups_merged == 1
    assert {group for group, _ in groups(db).values()} == {older}, "the older group keeps every record"
    assert count(db, "SELECT COUNT(*) FROM customer_groups WHERE id = :g", g=younger) == 0
    assert count(db, "SELECT COUNT(*) FROM customer_keys WHERE group_id <> :g", g=older) == 0
    with db.connect() as conn:
        created, updated = conn.execute(select(CustomerGroup.created_at, CustomerGroup.updated_at)).one()
    assert (created, updated) == (NOW, later + timedelta(hours=1)), "touched by the pass that merged into it"

    order(db, shop, "O5", email="second+again@example.pl")  # a key the younger group brought
    assert group_customers(db, later + timedelta(hours=2)).groups_created == 0
    assert groups(db)["o:O5"][0] == older


def test_a_pass_with_nothing_new_changes_nothing(db: Engine) -> None:
    shop = channel(db, "shop")
    order(db, shop, "O1", email="same@example.pl")
    order(db, shop, "O2", email="same@example.pl")
    order(db, shop, "O3")  # nothing to group it by: stays without a group, and is looked at again cheaply
    group_customers(db, NOW)

    def snapshot() -> tuple[object, ...]:
        with db.connect() as conn:
            return tuple(tuple(map(tuple, conn.execute(text(sql)).all())) for sql in (
                "SELECT id, customer_group_id, customer_match FROM orders ORDER BY id",
                "SELECT key, group_id, purchase, created_at FROM customer_keys ORDER BY key",
                "SELECT id, created_at, updated_at FROM customer_groups ORDER BY id"))

    before = snapshot()
    again = group_customers(db, NOW + timedelta(minutes=5))
    assert (again.records_grouped, again.groups_created, again.groups_merged) == (0, 0, 0)
    assert snapshot() == before
    assert groups(db)["o:O3"] == (None, None)


def test_a_long_history_is_grouped_as_the_rules_say_in_small_chunks(db: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough records that the keys outgrow the pass's first key table several times over, grouped a hundred at a
    time: the same customers as one union of every record sharing a key, and every key stored with its group."""
    monkeypatch.setattr(customers, "PER_TRANSACTION", 300)
    rng = random.Random(7)
    shop, market = channel(db, "shop"), channel(db, "market")
    contacts = {}
    for n in range(3000):
        person = rng.randrange(1500)
        contacts[f"o:O{n}"] = {
            "email": rng.choice([f"p{person}@example.pl", f"P{person}+{n}@Example.pl", f"o{n}@example.pl", None]),
            "phone": rng.choice([f"+48 6{person:08d}", None, None]), "name": f"Person {person}",
            "postcode": rng.choice([f"{person % 90:02d}-{person:03d}", None])}
    with db.begin() as conn:
        conn.execute(insert(Order), [
            {"channel_id": rng.choice([shop, market]), "external_id": record[2:], "placed_at": NOW,
             "content_hash": "x", "first_seen_at": NOW, "updated_at": NOW,
             **{f"customer_{field}": value for field, value in contact.items()}}
            for record, contact in contacts.items()])
    group_customers(db, NOW, chunk=100)

    owner: dict[str, str] = {}
    parent = {record: record for record in contacts}

    def root(record: str) -> str:
        while parent[record] != record:
            record = parent[record]
        return record

    for record, contact in contacts.items():
        for _, key in customer_keys(contact["email"], contact["phone"], contact["name"], contact["postcode"]):
            if key in owner:
                parent[root(record)] = root(owner[key])
            else:
                owner[key] = record
    expected: dict[str, set[str]] = {}
    for record in contacts:
        if customer_keys(**contacts[record]):
            expected.setdefault(root(record), set()).add(record)
    assert partition(db) == {frozenset(members) for members in expected.values()}

    found = groups(db)
    with db.connect() as conn:
        stored = dict(conn.execute(text("SELECT key, group_id FROM customer_keys")).all())
    assert stored.keys() == owner.keys()
    assert all(stored[key] == found[record][0] for key, record in owner.items())


def test_two_processes_grouping_at_once_store_each_key_once(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two groupings of two channels run at once, a record at a time, as two daemons of one database would (no
    lock of one process between them): the buyers they share end up in one group each, every key stored once."""
    monkeypatch.setattr(customers, "_GROUPING", contextlib.nullcontext())
    monkeypatch.setattr(customers, "PER_TRANSACTION", 1)
    shop, market = channel(db, "shop"), channel(db, "market")
    buyers = 150
    with db.begin() as conn:
        conn.execute(insert(Order), [
            {"channel_id": channel_id, "external_id": f"{prefix}{n}", "placed_at": NOW, "content_hash": "x",
             "first_seen_at": NOW, "updated_at": NOW, "customer_email": email}
            for n in range(buyers) for channel_id, prefix, email in (
                (shop, "S", f"buyer{n}@example.pl"), (market, "M", f"BUYER{n}+m@example.pl"))])
    errors: list[BaseException] = []

    def grouping(channel_id: int) -> None:
        try:
            group_customers(db, NOW, channel_id, chunk=1)
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            errors.append(exc)

    threads = [threading.Thread(target=grouping, args=(channel_id,)) for channel_id in (market, shop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert partition(db) == {frozenset({f"o:S{n}", f"o:M{n}"}) for n in range(buyers)}
    assert count(db, "SELECT COUNT(*) FROM customer_keys") == buyers
    assert count(db, "SELECT COUNT(*) FROM customer_groups") == buyers
    assert count(db, "SELECT COUNT(*) FROM orders o LEFT JOIN customer_groups g ON g.id = o.customer_group_id "
                     "WHERE g.id IS NULL") == 0, "no record in a group that is gone"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's database-wide write lock
def test_a_pass_with_nothing_to_group_waits_for_no_writer(db: Engine) -> None:
    """Most polls bring nobody new: their grouping pass must not queue behind another process's write on SQLite
    (one writer at a time), as a pass that groups something does."""
    shop = channel(db, "shop")
    order(db, shop, "O1", email="first@example.pl")
    group_customers(db, NOW)
    writer = sqlite3.connect(db.url.database, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        found = group_customers(db, NOW + timedelta(minutes=1))
    finally:
        writer.rollback()
        writer.close()
    assert found.records_grouped == 0
