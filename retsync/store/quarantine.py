"""The quarantine: records a channel sent that retsync could not read or store, kept aside with why.

Written in the transaction of the page they came in, so a cursor moves past a record only once it is stored
or on record here. A record seen again unreadable updates its row; one stored normally later resolves it.
The payload is kept to show what the channel sent, never to replay secrets: keys that look like credentials
are dropped and the JSON text is capped at PAYLOAD_LIMIT characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from retsync.kit.records import Quarantined
from retsync.store.models import Channel, QuarantinedRecord

quarantine_t = QuarantinedRecord.__table__
channels_t = Channel.__table__

PAYLOAD_LIMIT = 16_000
"""Characters of a quarantined record's JSON kept: enough to see what is wrong, not a 100 MB body."""
DEPTH_LIMIT = 40
"""Levels of nesting kept of a quarantined payload; deeper is replaced by a marker."""
KEY_LIMIT = 200
SECRET_KEY = re.compile(r"token|secret|passw|api[_-]?key|authori[sz]ation|credential|signature", re.IGNORECASE)


def _scrub(value: Any, depth: int = 0) -> Any:
    """The payload without secret-looking keys, its nesting cut at DEPTH_LIMIT."""
    if depth >= DEPTH_LIMIT:
        return "…(nested deeper)"
    if isinstance(value, dict):
        return {str(key): ("…(secret dropped)" if SECRET_KEY.search(str(key)) else _scrub(item, depth + 1))
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item, depth + 1) for item in value]
    return value


def payload_text(payload: Any) -> tuple[str | None, int]:
    """The JSON text to keep (capped) and the full text's length."""
    if payload is None:
        return None, 0
    try:
        full = json.dumps(_scrub(payload), ensure_ascii=False, default=str, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        full = repr(type(payload))
    if len(full) <= PAYLOAD_LIMIT:
        return full, len(full)
    return full[:PAYLOAD_LIMIT] + "…(cut)", len(full)


def _key(record: Quarantined, text: str | None) -> str:
    if record.external_id:
        return record.external_id[:KEY_LIMIT]
    return "sha256:" + hashlib.sha256((text or record.reason).encode("utf-8", "replace")).hexdigest()


def set_aside(conn: Connection, channel_id: int, stream: str, records: Iterable[Quarantined],
              now: datetime) -> int:
    """Record these records as quarantined (new rows, or seen again); returns how many."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        text, size = payload_text(record.payload)
        key = _key(record, text)
        rows[(record.kind, key)] = {
            "kind": record.kind, "record_key": key,
            "external_id": record.external_id[:KEY_LIMIT] if record.external_id else None,
            "reason": record.reason, "payload": text, "payload_size": size}
    if not rows:
        return 0
    stored = {
        (row.kind, row.record_key): row.id
        for row in conn.execute(select(quarantine_t.c.id, quarantine_t.c.kind, quarantine_t.c.record_key).where(
            quarantine_t.c.channel_id == channel_id,
            quarantine_t.c.record_key.in_([key for _, key in rows])))
    }
    new = [{**values, "channel_id": channel_id, "stream": stream, "times_seen": 1, "first_seen_at": now,
            "last_seen_at": now, "resolved_at": None}
           for key, values in rows.items() if key not in stored]
    seen = [{"_id": stored[key], "_reason": values["reason"], "_payload": values["payload"],
             "_size": values["payload_size"], "_now": now}
            for key, values in rows.items() if key in stored]
    if new:
        conn.execute(insert(quarantine_t), new)
    if seen:
        conn.execute(
            update(quarantine_t).where(quarantine_t.c.id == bindparam("_id")).values(
                reason=bindparam("_reason"), payload=bindparam("_payload"), payload_size=bindparam("_size"),
                last_seen_at=bindparam("_now"), resolved_at=None, times_seen=quarantine_t.c.times_seen + 1),
            seen)
    return len(rows)


def resolve(conn: Connection, channel_id: int, kind: str, external_ids: Collection[str], now: datetime) -> None:
    """These records were stored normally: their quarantine (if any) is over."""
    if not external_ids:
        return
    conn.execute(update(quarantine_t).where(
        quarantine_t.c.channel_id == channel_id, quarantine_t.c.kind == kind, quarantine_t.c.resolved_at.is_(None),
        quarantine_t.c.record_key.in_([external_id[:KEY_LIMIT] for external_id in external_ids]),
    ).values(resolved_at=now))


def open_external_ids(conn: Connection, channel_id: int, kind: str) -> list[str]:
    """External ids of this channel's open quarantined records of `kind`: what a pull asks for again."""
    return list(conn.execute(select(quarantine_t.c.external_id).where(
        quarantine_t.c.channel_id == channel_id, quarantine_t.c.kind == kind,
        quarantine_t.c.resolved_at.is_(None), quarantine_t.c.external_id.is_not(None),
    ).order_by(quarantine_t.c.id)).scalars())


PERSONAL_KEY = re.compile(r"name|mail|phone|tel|address|street|city|post_?code|zip|login", re.IGNORECASE)
_JSON_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def personal_values(payload: str | None) -> list[str]:
    """The values under name-, e-mail-, phone- and address-like keys of a stored payload (`payload_text`), so a
    reason that quotes one (a mapping error naming the value it could not read) can be redacted before the team
    is told. The payload may be cut mid-JSON, so its key/value pairs are read as text, not parsed."""
    found = []
    for key, value in _JSON_PAIR.findall(payload or ""):
        if PERSONAL_KEY.search(key):
            try:
                found.append(json.loads(f'"{value}"'))
            except ValueError:
                found.append(value)
    return found


def open_by_channel(conn: Connection, shown: int = 5) -> dict[str, dict[str, Any]]:
    """Per channel name: how many records are in quarantine, and the newest `shown` of them (no payload:
    `v_quarantine` has it), for `retsync channels`."""
    counts = {name: int(n) for name, n in conn.execute(
        select(channels_t.c.name, func.count(quarantine_t.c.id))
        .join(channels_t, channels_t.c.id == quarantine_t.c.channel_id)
        .where(quarantine_t.c.resolved_at.is_(None)).group_by(channels_t.c.name))}
    found: dict[str, dict[str, Any]] = {name: {"open": n, "newest": []} for name, n in counts.items()}
    for name in counts:
        for row in conn.execute(
                select(quarantine_t.c.stream, quarantine_t.c.kind, quarantine_t.c.external_id, quarantine_t.c.reason,
                       quarantine_t.c.times_seen, quarantine_t.c.first_seen_at, quarantine_t.c.last_seen_at)
                .join(channels_t, channels_t.c.id == quarantine_t.c.channel_id)
                .where(channels_t.c.name == name, quarantine_t.c.resolved_at.is_(None))
                .order_by(quarantine_t.c.last_seen_at.desc(), quarantine_t.c.id.desc()).limit(shown)):
            found[name]["newest"].append(dict(row._mapping))
    return found
