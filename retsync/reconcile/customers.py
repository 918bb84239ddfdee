"""One customer across channels: the orders and returns that share an e-mail, a phone, or a name and postcode.

A buyer who returns shoes bought on a marketplace on Monday and in the own shop
on Tuesday is one customer to the merchant, though no channel knows of the
other. Each order and return is put in a customer group by its normalised
contact keys; the keys are stored (`customer_keys`), so a record arriving
later joins the right group with one indexed look-up instead of a pass over
the whole history, and a record that carries keys of two groups merges them.
Only records without a group are looked at, so a pull costs what it brought.

A first pass after a long backfill meets hundreds of thousands of records whose
keys are not stored yet. Asking the database for each key would cost more than
the rest of the pass, so a pass keeps every key it has stored or looked up in
memory (`_KeyTable`: a 64-bit hash of the key, its group and the purchase that
brought it, in three flat arrays, 16 bytes a slot), and asks the database only
for keys it has not met, and only where keys were stored before the pass.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from retsync.reconcile import bulk

MATCH_RULES = ("email", "phone", "name_postcode")
"""Strongest first: the rule stored with a record is the strongest it shares with its group."""

_BATCH = 5_000
CHUNK = 5_000
"""Records read and grouped at a time: the rest of the pass waits in the database (a chunk holds about 2 kB a
record while it is grouped)."""
PER_TRANSACTION = 100_000
"""Records grouped in one transaction. A pass cut short leaves the rest ungrouped for the next one, and other
writers wait for one transaction at most; fewer, larger commits write a page of the key index once per
transaction instead of once per chunk (about 4 s of a 600,000-record first pass on SQLite, measured)."""
_PHONE_DIGITS = 9
"""A phone is compared on its last nine digits: national numbers in PL and NL are nine digits long, and the
country code or trunk zero in front of them is written in too many ways to compare."""

_NOT_DIGITS = bytes(b for b in range(128) if not 48 <= b <= 57)
_NOT_ALNUM = bytes(b for b in range(128) if not chr(b).isalnum())
_NOT_WORD_TO_SPACE = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_")})


def email_key(email: str | None) -> str | None:
    """Lower case, without a `+tag`: marketplaces relay mail through per-order aliases of one buyer address."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}@{domain}" if local and domain else None


def phone_key(phone: str | None) -> str | None:
    if not phone:
        return None
    if phone.isascii():  # the usual case, without the regular expression: the same digits
        digits = phone.encode().translate(None, _NOT_DIGITS).decode()
    else:
        digits = re.sub(r"\D", "", phone)
    return digits[-_PHONE_DIGITS:] if len(digits) >= 7 else None


def _folded(value: str) -> str:
    if value.isascii():  # plain ASCII is its own NFKD form and has no marks to drop: the same words, faster
        return " ".join(value.lower().translate(_NOT_WORD_TO_SPACE).split())
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ł", "l")
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def name_postcode_key(name: str | None, postcode: str | None) -> str | None:
    """Name without case, accents or punctuation, word order ignored; postcode letters and digits only."""
    if not name or not postcode:
        return None
    if name.isascii():  # `_folded`'s shortcut, without joining the words only to split them again
        words = sorted(name.lower().translate(_NOT_WORD_TO_SPACE).split())
    else:
        words = sorted(_folded(name).split())
    if postcode.isascii():
        code = postcode.encode().translate(None, _NOT_ALNUM).decode().upper()
    else:
        code = re.sub(r"[^0-9A-Za-z]", "", postcode).upper()
    return f"{' '.join(words)}|{code}" if words and code else None


def customer_keys(email: str | None, phone: str | None, name: str | None, postcode: str | None) -> list[tuple[str, str]]:
    """(rule, `rule:value`) for each rule this contact satisfies, strongest first."""
    found = []
    for rule, value in (("email", email_key(email)), ("phone", phone_key(phone)),
                        ("name_postcode", name_postcode_key(name, postcode))):
        if value:
            found.append((rule, f"{rule}:{value}"))
    return found


@dataclass
class GroupingResult:
    records_grouped: int = 0
    groups_created: int = 0
    groups_merged: int = 0


def _buyer(purchase: str) -> int:
    """A purchase as one integer: order n is 2n, a return without a stored order 2n + 1 (-2: none of these)."""
    kind, _, number = purchase.partition(":")
    if kind in ("o", "r") and number.isdigit():
        return 2 * int(number) + (kind == "r")
    return -2


def _purchase(buyer: int) -> str:
    return f"{'r' if buyer & 1 else 'o'}:{buyer >> 1}"


class _KeyTable:
    """Key hash → (group, buyer) for the keys a pass has met: open addressing over three flat arrays.

    A dict of strings would hold the same for a first pass's 600,000 keys in about 80 MB; this holds it in
    16 bytes a slot. The hash is Python's own 64-bit hash of the key: two different keys with the same hash
    would be taken for one (about one chance in 10^8 for a million keys), and only for this pass, since the
    database keeps the keys themselves. A buyer is kept as its low 31 bits (`_tag`), which tell purchases apart
    until ids pass a billion; a group as 32 bits until one needs 64.
    """

    def __init__(self, bits: int = 12, wide_groups: bool = False) -> None:
        self.mask = (1 << bits) - 1
        self.hashes = array("q", bytes(8 << bits))
        self.groups = array("q" if wide_groups else "i", bytes((8 if wide_groups else 4) << bits))
        self.buyers = array("i", bytes(4 << bits))
        self.size = 0

    def find(self, h: int) -> int:
        """The slot holding `h`, or -1."""
        hashes, mask = self.hashes, self.mask
        slot = h & mask
        while True:
            found = hashes[slot]
            if found == h:
                return slot
            if found == 0:
                return -1
            slot = (slot + 1) & mask

    def add(self, h: int, group: int, buyer: int) -> None:
        hashes, mask = self.hashes, self.mask
        slot = h & mask
        while (found := hashes[slot]) != h and found:
            slot = (slot + 1) & mask
        if not found:
            self.size += 1
        if group > 0x7FFFFFFF and self.groups.typecode == "i":
            self.groups = array("q", self.groups)
        hashes[slot], self.groups[slot], self.buyers[slot] = h, group, buyer & 0x7FFFFFFF  # _tag(buyer)
        if self.size * 3 > mask * 2:
            self._grow()

    def _grow(self) -> None:
        old = (self.hashes, self.groups, self.buyers)
        self.__init__((self.mask + 1).bit_length(), self.groups.typecode == "q")  # type: ignore[misc]
        hashes, groups, buyers, mask = self.hashes, self.groups, self.buyers, self.mask
        for h, group, buyer in zip(*old):
            if h:
                slot = h & mask
                while hashes[slot]:
                    slot = (slot + 1) & mask
                hashes[slot], groups[slot], buyers[slot] = h, group, buyer
                self.size += 1


def _tag(buyer: int) -> int:
    """What the key table keeps of a buyer (`_KeyTable`)."""
    return buyer & 0x7FFFFFFF


def _hash(key: str) -> int:
    return hash(key) or 1  # 0 marks an empty slot


# Orders, then returns, in id order; a return is its order's customer too: its keys are its own and its order's
# (a marketplace may name the buyer by login on the return and by name and address on the order).
_UNGROUPED_ORDERS = """
SELECT id, id, customer_email, customer_phone, customer_name, customer_postcode FROM orders
WHERE customer_group_id IS NULL AND {scope}
  AND (customer_email IS NOT NULL OR customer_phone IS NOT NULL
       OR (customer_name IS NOT NULL AND customer_postcode IS NOT NULL))
  AND id > ?
ORDER BY id
LIMIT ?
"""

_UNGROUPED_RETURNS = """
SELECT r.id, r.order_id, r.customer_email, r.customer_phone, r.customer_name, r.customer_postcode,
       o.customer_email, o.customer_phone, o.customer_name, o.customer_postcode
FROM returns r LEFT JOIN orders o ON o.id = r.order_id
WHERE r.customer_group_id IS NULL AND {scope}
  AND (r.customer_email IS NOT NULL OR r.customer_phone IS NOT NULL OR r.customer_postcode IS NOT NULL
       OR o.customer_email IS NOT NULL OR o.customer_phone IS NOT NULL OR o.customer_postcode IS NOT NULL)
  AND r.id > ?
ORDER BY r.id
LIMIT ?
"""

_GROUPING = threading.Lock()
"""Channels of one daemon pull in parallel threads; two groupings at once would insert the same new key."""

_LOCK_NAME = "retsync:customer_groups"


def group_customers(db: Engine, now: datetime, channel_id: int | None = None,
                    chunk: int | None = None) -> GroupingResult:
    """Put every ungrouped order and return (of one channel, or all) into its customer group.

    `chunk` records at a time, PER_TRANSACTION of them to a transaction: a chunk's keys are stored before the
    next chunk is read, and kept in memory for the rest of the pass, so a later record finds the group an earlier
    one made; a pull cut short leaves the rest ungrouped for the next one.
    """
    result = GroupingResult()
    with _GROUPING, db.connect() as conn, _exclusive(conn):
        grouping = _Pass(conn, now, result)
        for table, sql, column in (("orders", _UNGROUPED_ORDERS, "channel_id"),
                                   ("returns", _UNGROUPED_RETURNS, "r.channel_id")):
            query = sql.format(scope=f"{column} = ?" if channel_id is not None else "1 = 1")
            scope = [channel_id] if channel_id is not None else []
            after = 0
            while True:
                with conn.begin():  # most passes find nothing, and take no lock to find it
                    if not list(bulk.rows(conn, query, [*scope, after, 1])):
                        break
                with conn.begin():
                    grouping.check(conn)  # on SQLite, takes the write lock first
                    for _ in range(max(1, PER_TRANSACTION // (chunk or CHUNK))):
                        last = grouping.group(conn, table, bulk.rows(conn, query, [*scope, after, chunk or CHUNK]))
                        if last is None:
                            break
                        after = last
                    grouping.remember(conn)
    return result


@contextmanager
def _exclusive(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, no other instance groups while this pass runs (it keeps keys in memory across its chunks).

    A session-level advisory lock, taken outside the chunks' transactions and given back at the end; the
    transaction-level one other code takes by the same name (`store.lease.serialized`) waits for it. On SQLite
    `_Pass.check` notices another process's grouping instead.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": _LOCK_NAME})
    conn.commit()
    try:
        yield
    finally:
        try:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": _LOCK_NAME})
            conn.commit()
        except Exception:
            conn.invalidate()  # a connection still holding the lock never goes back to the pool
            raise


class _Pass:
    """One grouping pass: the keys it has met, the groups it merged, and how it writes a chunk."""

    def __init__(self, conn: Connection, now: datetime, result: GroupingResult) -> None:
        self.now = now
        self.result = result
        self.keys = _KeyTable()
        self.merged: dict[int, int] = {}
        """Groups this pass merged away, and the group that took them."""
        self.stamped: set[int] = set()
        """Groups older than the pass whose updated_at this pass has set."""
        with conn.begin():
            self.first_new = int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM customer_groups")).scalar_one()) + 1
            self.ask_database = conn.execute(text("SELECT 1 FROM customer_keys LIMIT 1")).first() is not None
            """Keys stored before the pass are looked up when memory does not hold them; none on a first pass."""
            self.state = self._state(conn)
        self.next_id = self.first_new
        """The next id a new group may take on SQLite: above every group older than the pass (`first_new`) and
        every group this pass made, so an id this pass merged away is never given again."""

    def _state(self, conn: Connection) -> tuple[Any, ...] | None:
        """What another SQLite process's grouping would change (PostgreSQL: `_exclusive` keeps it out)."""
        if conn.dialect.name != "sqlite":
            return None
        return tuple(conn.execute(text(
            "SELECT (SELECT MAX(id) FROM customer_groups), (SELECT COUNT(*) FROM customer_groups), "
            "(SELECT MAX(rowid) FROM customer_keys)")).one())

    def check(self, conn: Connection) -> None:
        """At the start of a transaction: if another process grouped since the last one, forget what memory
        holds (the keys are looked up in the database again).

        On SQLite the transaction takes the database's write lock before it looks, with a write that changes
        nothing: no other process can then store a key between this look and this transaction's own writes.
        """
        # first: the state read below and this transaction's writes then see the same database
        conn.execute(text("UPDATE customer_groups SET id = id WHERE 1 = 0"))
        if self.state is None:
            return
        if self._state(conn) != self.state:
            self.keys = _KeyTable()
            self.ask_database = True

    def remember(self, conn: Connection) -> None:
        """At the end of a transaction: the state `check` compares with at the start of the next."""
        self.state = self._state(conn)

    def group(self, conn: Connection, table: str, rows: Iterable[Sequence[Any]]) -> int | None:
        """Group one chunk of rows of `_UNGROUPED_ORDERS` or `_UNGROUPED_RETURNS`; answer the last id read, or
        None when there were no rows."""
        records, last = _records(rows)
        if not records:
            return last
        if self.ask_database:
            self._look_up(conn, {key for _, _, keys in records for _, key, h in keys if self.keys.find(h) < 0})
        hashes, mask = self.keys.hashes, self.keys.mask
        table_groups, table_buyers, merged = self.keys.groups, self.keys.buyers, self.merged
        parent = list(range(len(records)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        # 1. Records joined by the keys they share, with each other and with the groups those keys are in.
        used_by: dict[int, int] = {}  # key hash → the one purchase using it in this chunk, -1 for several
        first_with: dict[int, int] = {}  # key hash → first record of this chunk with it, for keys not met before
        group_first: dict[int, int] = {}  # group → first record of this chunk in it
        shared_before: list[int] = []  # per record: its strongest rule whose key another purchase brought, or 3
        new_keys: list[tuple[int, str]] = []
        for i, (_, buyer, keys) in enumerate(records):
            best, buyer_tag, top = 3, buyer & 0x7FFFFFFF, i  # _tag(buyer); `top`: the root of i's records so far
            for rule, key, h in keys:
                user = used_by.get(h)
                if user is None:
                    used_by[h] = buyer
                elif user != buyer:
                    used_by[h] = -1
                slot = h & mask  # the key table's find(), inline: this loop runs for every key of the pass
                while (found := hashes[slot]) != h and found:
                    slot = (slot + 1) & mask
                if found:
                    if best == 3 and table_buyers[slot] != buyer_tag:
                        best = rule
                    group = table_groups[slot]
                    while merged and group in merged:
                        group = merged[group]
                    j = group_first.setdefault(group, i)
                else:
                    j = first_with.setdefault(h, i)
                    if j == i:
                        new_keys.append((h, key))
                if j != i:  # an earlier record: join the two sets under the lower root
                    r = root(j)
                    if r < top:
                        parent[top] = top = r
                    elif r > top:
                        parent[r] = top
            shared_before.append(best)
        for i in range(len(records)):  # every pointer leads to a lower index: one pass leaves each on its root
            parent[i] = parent[parent[i]]

        # 2. Each set of joined records goes into the oldest group it touches (the others merge into it), or a new one.
        groups_of: dict[int, list[int]] = {}
        for group, i in group_first.items():
            groups_of.setdefault(parent[i], []).append(group)
        target: dict[int, int] = {}
        fresh: list[int] = []
        for i in range(len(records)):
            if parent[i] == i:
                touched = groups_of.get(i)
                if touched:
                    target[i] = min(touched)
                    for other in touched:
                        if other != target[i]:
                            self._merge(conn, other, target[i])
                else:
                    fresh.append(i)
        target.update(zip(fresh, self._new_groups(conn, len(fresh))))

        # 3. Each record's group and the strongest rule it shares with another purchase; the chunk's new keys.
        assigned: list[tuple[int, int, str]] = []
        for i, (record_id, _, keys) in enumerate(records):
            match = shared_before[i]
            for rule, _, h in keys:
                if rule >= match:
                    break
                if used_by[h] == -1:
                    match = rule
                    break
            assigned.append((record_id, target[parent[i]], MATCH_RULES[keys[0][0] if match == 3 else match]))
        stamp = bulk.stamp(conn, self.now)
        key_rows = []
        add = self.keys.add
        for h, key in new_keys:
            i = first_with[h]
            group, buyer = target[parent[i]], records[i][1]
            add(h, group, buyer)
            key_rows.append((key, group, _purchase(buyer), stamp))
        bulk.insert(conn, "customer_keys", ("key", "group_id", "purchase", "created_at"), key_rows)
        bulk.update(conn, table, ("customer_group_id", "customer_match"), assigned, ("bigint", "text"))
        older = sorted({group for group in target.values() if group < self.first_new} - self.stamped)
        for start in range(0, len(older), _BATCH):
            batch = older[start:start + _BATCH]
            bulk.execute(conn, f"UPDATE customer_groups SET updated_at = ? WHERE id IN ({', '.join('?' * len(batch))})",
                         [stamp, *batch])
        self.stamped.update(older)
        self.result.records_grouped += len(records)
        return last

    def _look_up(self, conn: Connection, keys: set[str]) -> None:
        """Keys stored before this pass (or by another process), into memory with their group."""
        wanted = sorted(keys)
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start:start + _BATCH]
            for key, group, purchase in bulk.rows(
                    conn, f"SELECT key, group_id, purchase FROM customer_keys WHERE key IN ({', '.join('?' * len(batch))})",
                    batch):
                self.keys.add(_hash(key), int(group), _buyer(purchase))

    def _new_groups(self, conn: Connection, count: int) -> list[int]:
        """Ids of `count` new customer groups, in ascending order."""
        if not count:
            return []
        stamp = bulk.stamp(conn, self.now)
        if conn.dialect.name == "postgresql":
            ids = [int(row[0]) for row in bulk.rows(
                conn, "INSERT INTO customer_groups (created_at, updated_at) SELECT ?, ? FROM generate_series(1, ?) "
                "RETURNING id", [stamp, stamp, count])]
        else:  # one writer at a time: the next ids are free (`next_id`: never one this pass merged away)
            first = max(self.next_id, int(conn.execute(text(
                "SELECT COALESCE(MAX(id), 0) FROM customer_groups")).scalar_one()) + 1)
            ids = list(range(first, first + count))
            self.next_id = first + count
            bulk.insert(conn, "customer_groups", ("id", "created_at", "updated_at"), [(i, stamp, stamp) for i in ids])
        self.result.groups_created += count
        return sorted(ids)

    def _merge(self, conn: Connection, source: int, target: int) -> None:
        """A record that carries keys of two groups proves they are one customer: the older group keeps all."""
        for statement in ("UPDATE orders SET customer_group_id = ? WHERE customer_group_id = ?",
                          "UPDATE returns SET customer_group_id = ? WHERE customer_group_id = ?",
                          "UPDATE customer_keys SET group_id = ? WHERE group_id = ?"):
            bulk.execute(conn, statement, [target, source])
        bulk.execute(conn, "DELETE FROM customer_groups WHERE id = ?", [source])
        self.merged[source] = target
        self.result.groups_merged += 1


def _records(rows: Iterable[Sequence[Any]]) -> tuple[list[tuple[int, int, list[tuple[int, str, int]]]], int | None]:
    """(id, buyer, [(rule, key, key hash), …] strongest rule first) of each row that has a key; the last id."""
    records = []
    last = None
    for row in rows:
        last = row[0]
        keys = _keys(row[2], row[3], row[4], row[5])
        if len(row) > 6:
            keys += [key for key in _keys(row[6], row[7], row[8], row[9]) if key not in keys]
            keys.sort()
        if keys:
            buyer = 2 * row[1] if row[1] is not None else 2 * row[0] + 1
            records.append((row[0], buyer, keys))
    return records, last


def _keys(email: str | None, phone: str | None, name: str | None, postcode: str | None) -> list[tuple[int, str, int]]:
    """`customer_keys` as (rule, key, key hash), the rule as its place in MATCH_RULES."""
    found = []
    if email and (value := email_key(email)):
        key = "email:" + value
        found.append((0, key, hash(key) or 1))
    if phone and (value := phone_key(phone)):
        key = "phone:" + value
        found.append((1, key, hash(key) or 1))
    if name and postcode and (value := name_postcode_key(name, postcode)):
        key = "name_postcode:" + value
        found.append((2, key, hash(key) or 1))
    return found
