"""One customer across channels: the orders and returns that share an e-mail, a phone, or a name and postcode.

A buyer who returns shoes bought on a marketplace on Monday and in the own shop
on Tuesday is one customer to the merchant, though no channel knows of the
other. Each order and return is put in a customer group by its normalised
contact keys; the keys are stored (`customer_keys`), so a record arriving
later joins the right group with one indexed look-up instead of a pass over
the whole history, and a record that carries keys of two groups merges them.
Only records without a group are looked at, so a pull costs what it brought.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, delete, insert, select, text, update

from retsync.store.lease import serialized
from retsync.store.models import CustomerGroup, CustomerKey, Order, Return

MATCH_RULES = ("email", "phone", "name_postcode")
"""Strongest first: the rule stored with a record is the strongest it shares with its group."""

_BATCH = 5000
CHUNK = 5000
"""Records grouped at a time; the rest of the pass waits in the database, not in memory."""
_PHONE_DIGITS = 9
"""A phone is compared on its last nine digits: national numbers in PL and NL are nine digits long, and the
country code or trunk zero in front of them is written in too many ways to compare."""


def email_key(email: str | None) -> str | None:
    """Lower case, without a `+tag`: marketplaces relay mail through per-order aliases of one buyer address."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}@{domain}" if local and domain else None


def phone_key(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-_PHONE_DIGITS:] if len(digits) >= 7 else None


def _folded(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ł", "l")
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def name_postcode_key(name: str | None, postcode: str | None) -> str | None:
    """Name without case, accents or punctuation, word order ignored; postcode letters and digits only."""
    if not name or not postcode:
        return None
    words = sorted(_folded(name).split())
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


@dataclass
class _Record:
    table: str
    id: int
    purchase: str
    """`o:<order id>` for an order and for a return of a stored order, `r:<return id>` for a return without one:
    a return shares its order's keys by nature, so only a key shared with another purchase says how a customer
    was recognised."""
    keys: list[tuple[str, str]]


@dataclass
class _Component:
    records: list[_Record] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self.parent.setdefault(node, node)
        while parent != self.parent[parent]:
            self.parent[parent] = self.parent[self.parent[parent]]
            parent = self.parent[parent]
        self.parent[node] = parent
        return parent

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a


_UNGROUPED_ORDERS = """
SELECT id, id, customer_email, customer_phone, customer_name, customer_postcode FROM orders
WHERE customer_group_id IS NULL AND {scope}
  AND (customer_email IS NOT NULL OR customer_phone IS NOT NULL
       OR (customer_name IS NOT NULL AND customer_postcode IS NOT NULL))
  AND id > :after
ORDER BY id
LIMIT :chunk
"""

# A return is its order's customer too: its keys are its own and its order's (a marketplace may name the buyer
# by login on the return and by name and address on the order).
_UNGROUPED_RETURNS = """
SELECT r.id, r.order_id, r.customer_email, r.customer_phone, r.customer_name, r.customer_postcode,
       o.customer_email, o.customer_phone, o.customer_name, o.customer_postcode
FROM returns r LEFT JOIN orders o ON o.id = r.order_id
WHERE r.customer_group_id IS NULL AND {scope}
  AND (r.customer_email IS NOT NULL OR r.customer_phone IS NOT NULL OR r.customer_postcode IS NOT NULL
       OR o.customer_email IS NOT NULL OR o.customer_phone IS NOT NULL OR o.customer_postcode IS NOT NULL)
  AND r.id > :after
ORDER BY r.id
LIMIT :chunk
"""


_GROUPING = threading.Lock()
"""Channels of one daemon pull in parallel threads; two groupings at once would insert the same new key."""


def group_customers(db: Engine, now: datetime, channel_id: int | None = None,
                    chunk: int | None = None) -> GroupingResult:
    """Put every ungrouped order and return (of one channel, or all) into its customer group.

    `chunk` records at a time, each chunk in its own transaction: its keys are stored before the next chunk
    is read, so a later record still finds the group an earlier one made, memory stays flat however long the
    history a first backfill brings, and a pull cut short leaves the rest ungrouped for the next one.
    """
    result = GroupingResult()
    with _GROUPING:
        for table, sql, column in (("orders", _UNGROUPED_ORDERS, "channel_id"),
                                   ("returns", _UNGROUPED_RETURNS, "r.channel_id")):
            query = text(sql.format(scope=f"{column} = :channel_id" if channel_id is not None else "1 = 1"))
            after: int | None = 0
            while after is not None:
                with db.begin() as conn:
                    serialized(conn, "customer_groups")  # instances grouping other channels wait their turn
                    after = _group_chunk(conn, table, query, {"channel_id": channel_id, "after": after,
                                                              "chunk": chunk or CHUNK}, now, result)
    return result


def _group_chunk(conn: Connection, table: str, query: TextClause, params: dict[str, Any], now: datetime,
                 result: GroupingResult) -> int | None:
    """Group one chunk; answer the last id read, or None when there was nothing left."""
    rows = conn.execute(query, params).all()
    if not rows:
        return None
    records = [record for record in (_record_of(table, row) for row in rows) if record.keys]
    if records:
        _assign(conn, records, now, result)
    return int(rows[-1][0])


def _record_of(table: str, row: Sequence[Any]) -> _Record:
    keys = customer_keys(row[2], row[3], row[4], row[5])
    if len(row) > 6:
        keys += [key for key in customer_keys(row[6], row[7], row[8], row[9]) if key not in keys]
        keys.sort(key=lambda rule_key: MATCH_RULES.index(rule_key[0]))
    purchase = f"o:{row[1]}" if row[1] is not None else f"r:{row[0]}"
    return _Record(table, int(row[0]), purchase, keys)


def _known_keys(conn: Connection, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Key → (group, the purchase that brought it) for the keys already stored."""
    wanted = sorted(set(keys))
    known: dict[str, tuple[int, str]] = {}
    query = select(CustomerKey.key, CustomerKey.group_id, CustomerKey.purchase).where(
        CustomerKey.key.in_(bindparam("keys", expanding=True)))
    for start in range(0, len(wanted), _BATCH):
        known.update({k: (int(g), p) for k, g, p in conn.execute(query, {"keys": wanted[start:start + _BATCH]})})
    return known


def _assign(conn: Connection, records: Sequence[_Record], now: datetime, result: GroupingResult) -> None:
    known = _known_keys(conn, (key for record in records for _, key in record.keys))
    uf = _UnionFind()
    for index, record in enumerate(records):
        for _, key in record.keys:
            uf.union(f"r{index}", f"k{key}")
    for key, (group, _) in known.items():
        uf.union(f"k{key}", f"g{group}")
    components: dict[str, _Component] = {}
    for index, record in enumerate(records):
        component = components.setdefault(uf.find(f"r{index}"), _Component())
        component.records.append(record)
        component.keys.update(key for _, key in record.keys)
    for component in components.values():
        component.groups = {known[key][0] for key in component.keys if key in known}

    key_use: dict[str, set[str]] = {}
    for record in records:
        for _, key in record.keys:
            key_use.setdefault(key, set()).add(record.purchase)

    merges: dict[int, int] = {}
    new_keys: list[dict[str, object]] = []
    assignments: dict[str, list[dict[str, Any]]] = {"orders": [], "returns": []}
    fresh = [component for component in components.values() if not component.groups]
    created = iter(_new_groups(conn, len(fresh), now))
    result.groups_created += len(fresh)
    for component in components.values():
        if component.groups:
            target = min(component.groups)
            for other in component.groups - {target}:
                merges[other] = target
        else:
            target = next(created)
        new_keys += [{"key": key, "group_id": target, "purchase": min(key_use[key]), "created_at": now}
                     for key in sorted(component.keys - known.keys())]
        for record in component.records:
            shared = [rule for rule, key in record.keys
                      if (key in known and known[key][1] != record.purchase) or key_use[key] - {record.purchase}]
            rule = shared[0] if shared else record.keys[0][0]
            assignments[record.table].append({"_id": record.id, "_group": target, "_match": rule})
        result.records_grouped += len(component.records)

    # Components never share a group, so a merge target is never merged away itself.
    for source, target in sorted(merges.items()):
        _merge(conn, source, target)
        result.groups_merged += 1
    for start in range(0, len(new_keys), _BATCH):
        conn.execute(insert(CustomerKey), new_keys[start:start + _BATCH])
    for name, table in (("orders", Order.__table__), ("returns", Return.__table__)):
        rows = assignments[name]
        for start in range(0, len(rows), _BATCH):
            conn.execute(update(table).where(table.c.id == bindparam("_id"))
                         .values(customer_group_id=bindparam("_group"), customer_match=bindparam("_match")),
                         rows[start:start + _BATCH])
    touched = sorted({int(row["_group"]) for rows in assignments.values() for row in rows})
    for start in range(0, len(touched), _BATCH):
        conn.execute(update(CustomerGroup).where(CustomerGroup.id.in_(touched[start:start + _BATCH]))
                     .values(updated_at=now))


def _new_groups(conn: Connection, count: int, now: datetime) -> list[int]:
    """Ids of `count` new customer groups, created in batches rather than one statement each."""
    ids: list[int] = []
    for start in range(0, count, _BATCH):
        rows = [{"created_at": now, "updated_at": now} for _ in range(min(_BATCH, count - start))]
        ids += [int(i) for i in conn.execute(
            insert(CustomerGroup).returning(CustomerGroup.id, sort_by_parameter_order=True), rows).scalars()]
    return ids


def _merge(conn: Connection, source: int, target: int) -> None:
    """A record that carries keys of two groups proves they are one customer: the older group keeps all."""
    conn.execute(update(Order).where(Order.customer_group_id == source).values(customer_group_id=target))
    conn.execute(update(Return).where(Return.customer_group_id == source).values(customer_group_id=target))
    conn.execute(update(CustomerKey).where(CustomerKey.group_id == source).values(group_id=target))
    conn.execute(delete(CustomerGroup).where(CustomerGroup.id == source))
