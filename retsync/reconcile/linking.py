"""Reconciliation after every pull: link returns to their orders, group customers, raise and resolve flags.

Linking uses channel keys first (the order line id the channel names); where a
channel only names the order and the product, the line is found by EAN, then
SKU, and marked so (`link_method`), because a product-based link is a guess a
person may want to check. It runs over lines still unlinked, so an order that
arrives later links its returns then; an order still missing is asked of the
channel once a day (where the connector can fetch one order) before the
return is left flagged `order_not_found`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import BindParameter, Connection, Engine, bindparam, text

from retsync.kit.contract import Connector
from retsync.kit.http import ChannelError
from retsync.kit.model import Order
from retsync.kit.payload import moment
from retsync.kit.settings import ChannelSettings
from retsync.reconcile import bulk
from retsync.reconcile.customers import GroupingResult, group_customers
from retsync.reconcile.flags import FlagChanges, FlagCode, recompute
from retsync.store.channels import load_cursor, save_cursor
from retsync.store.models import UTCDateTime
from retsync.store.pages import PageWriter

log = structlog.get_logger(__name__)

FETCH_RETRY_AFTER = timedelta(days=1)
"""An order the channel did not return is asked for again after this long, not on every pull."""

FLAGS_RECHECK = timedelta(hours=1)
"""With nothing changed in a channel, its flag rules run again after this long: only the ones that count days
(refund overdue, not shipped) can change by time alone, and they count whole days."""

# Each step links what the previous could not; the returns' channel scopes every match. One joined statement a
# step, not a sub-query a line: a first pass links 100,000 lines at once.
_ORDERS = """
UPDATE returns SET order_id = o.id
FROM orders o
WHERE o.channel_id = returns.channel_id AND o.external_id = returns.order_external_id
  AND returns.order_id IS NULL AND returns.order_external_id IS NOT NULL {scope}
"""

_LINES = """
UPDATE return_lines SET order_line_id = m.order_line_id, link_method = '{method}'
FROM (SELECT rl.id AS id, MIN(ol.id) AS order_line_id
      FROM return_lines rl
      JOIN returns r ON r.id = rl.return_id
      JOIN orders o ON o.channel_id = r.channel_id AND o.external_id = rl.order_external_id
      JOIN order_lines ol ON ol.order_id = o.id AND {condition}
      WHERE rl.order_line_id IS NULL AND rl.order_external_id IS NOT NULL AND {precondition} {scope}
      GROUP BY rl.id) m
WHERE return_lines.id = m.id
"""

# PostgreSQL plans the joined statement on the statistics it has, and after a first backfill into empty tables
# those say "no rows": nested loops over thousands of rows, minutes for a 1,000-return pull. There each line's
# order line is looked up by index instead, a plan no statistics can spoil (slower at a million lines: 17 s
# instead of 10 s for a first pass, measured).
_LINE_LOOKUP = """
SELECT ol.id FROM order_lines ol JOIN orders o ON o.id = ol.order_id
WHERE o.channel_id = (SELECT r.channel_id FROM returns r WHERE r.id = return_lines.return_id)
  AND o.external_id = return_lines.order_external_id AND {condition}
ORDER BY ol.id LIMIT 1
"""

_LINES_BY_LOOKUP = """
UPDATE return_lines SET order_line_id = ({lookup}), link_method = '{method}'
WHERE order_line_id IS NULL AND order_external_id IS NOT NULL AND {precondition} {scope}
  AND EXISTS ({lookup})
"""

_ORDERS_BY_LOOKUP = """
UPDATE returns SET order_id = (
    SELECT o.id FROM orders o WHERE o.channel_id = returns.channel_id AND o.external_id = returns.order_external_id)
WHERE order_id IS NULL AND order_external_id IS NOT NULL {scope}
  AND EXISTS (SELECT 1 FROM orders o WHERE o.channel_id = returns.channel_id
              AND o.external_id = returns.order_external_id)
"""

_STEPS = (
    ("channel_key", "{line}.order_line_external_id IS NOT NULL", "ol.external_id = {line}.order_line_external_id"),
    ("ean", "{line}.ean IS NOT NULL", "ol.ean = {line}.ean"),
    ("sku", "{line}.sku IS NOT NULL", "ol.sku = {line}.sku"),
)
"""(link_method, which lines the step looks at, which order line it takes: the first by id where several fit);
`{line}` is the return line as the statement names it (`rl` in the join, `return_lines` in the lookup)."""


@dataclass
class LinkResult:
    orders_linked: int = 0
    lines_linked: int = 0


def link_returns(db: Engine, channel_id: int | None = None) -> LinkResult:
    """Link unlinked returns and return lines of one channel (or all) to stored orders."""
    params = {"channel_id": channel_id} if channel_id is not None else {}
    orders_scope = "AND returns.channel_id = :channel_id" if channel_id is not None else ""
    result = LinkResult()
    with db.begin() as conn:
        bulk.no_jit(conn)
        bulk.fresh_statistics(conn)
        if conn.dialect.name == "postgresql":
            _link_by_lookup(conn, params, orders_scope, result)
            return result
        result.orders_linked = conn.execute(text(_ORDERS.format(scope=orders_scope)), params).rowcount
        for method, precondition, condition in _STEPS:
            result.lines_linked += conn.execute(text(_LINES.format(
                method=method, precondition=precondition.format(line="rl"), condition=condition.format(line="rl"),
                scope="AND r.channel_id = :channel_id" if channel_id is not None else "")), params).rowcount
    return result


def _link_by_lookup(conn: Connection, params: dict[str, int], orders_scope: str, result: LinkResult) -> None:
    """The same steps, each line's order line looked up by index (PostgreSQL: see `_LINE_LOOKUP`)."""
    result.orders_linked = conn.execute(text(_ORDERS_BY_LOOKUP.format(scope=orders_scope)), params).rowcount
    lines_scope = ("AND return_lines.return_id IN (SELECT id FROM returns WHERE channel_id = :channel_id)"
                   if params else "")
    for method, precondition, condition in _STEPS:
        lookup = _LINE_LOOKUP.format(condition=condition.format(line="return_lines"))
        result.lines_linked += conn.execute(text(_LINES_BY_LOOKUP.format(
            lookup=lookup, method=method, precondition=precondition.format(line="return_lines"), scope=lines_scope)),
            params).rowcount


_MISSING_ORDERS = """
SELECT DISTINCT r.order_external_id FROM returns r
WHERE r.channel_id = :channel_id AND r.order_id IS NULL AND r.order_external_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM return_flags f WHERE f.return_id = r.id AND f.code = 'order_not_found'
                  AND f.resolved_at IS NULL AND f.updated_at > :retry_before)
ORDER BY r.order_external_id
"""


def fetch_missing_orders(db: Engine, channel_id: int, connector: Connector, now: datetime, limit: int = 100) -> int:
    """Ask the channel for orders that returns name but the store lacks; answer how many were stored.

    Where the channel answers "no such order", the return's `order_not_found` flag is touched, so that order
    is asked for again only after FETCH_RETRY_AFTER. A network failure is not the order's fault: it is logged
    and tried on the next pull.
    """
    with db.connect() as conn:
        missing = [row[0] for row in conn.execute(
            text(_MISSING_ORDERS).bindparams(_typed("retry_before")),
            {"channel_id": channel_id, "retry_before": now - FETCH_RETRY_AFTER}).fetchmany(limit)]
    found: list[Order] = []
    not_found: list[str] = []
    for external_id in missing:
        try:
            order = connector.fetch_order(external_id)
        except ChannelError as exc:
            log.warning("order_fetch_failed", order=external_id, error=str(exc))
            break
        if order is None:
            not_found.append(external_id)
        else:
            found.append(order)
    with db.begin() as conn:
        if found:
            PageWriter(channel_id, source="reconcile").store(conn, found, (), now)
        if not_found:
            conn.execute(text("""
                UPDATE return_flags SET updated_at = :now
                WHERE code = 'order_not_found' AND resolved_at IS NULL AND return_id IN (
                    SELECT id FROM returns WHERE channel_id = :channel_id AND order_external_id IN :ids)
            """).bindparams(_typed("now"), bindparam("ids", expanding=True)),
                {"now": now, "channel_id": channel_id, "ids": not_found})
    return len(found)


def _typed(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=UTCDateTime())


FLAGS_CHECKED = "flags_checked"
"""The cursor row that keeps what a channel's flag rules last ran on, so a `retsync sync` from cron skips them
as a daemon's next poll does."""

_FLAG_INPUTS = """
SELECT 'returns', COUNT(*), MAX(updated_at) FROM returns WHERE channel_id = :channel_id
UNION ALL SELECT 'orders', COUNT(*), MAX(updated_at) FROM orders WHERE channel_id = :channel_id
UNION ALL SELECT d.state, COUNT(*), MAX(d.updated_at) FROM decisions d JOIN returns r ON r.id = d.return_id
WHERE r.channel_id = :channel_id GROUP BY d.state
"""


def flag_inputs(db: Engine, channel_id: int, settings: ChannelSettings) -> list[list[object]]:
    """What the rules read besides the pull's own records: a decision recorded (`retsync decide`, the back
    office) or moved on by a push pass changes its state's count or latest change; so does a changed deadline
    in the config."""
    deadlines = [settings.return_window_days, settings.refund_due_days, settings.ship_reminder_days,
                 str(settings.return_shipping_deduction)]
    with db.connect() as conn:
        rows = sorted([str(row[0]), int(row[1]), str(row[2])] for row in
                      conn.execute(text(_FLAG_INPUTS), {"channel_id": channel_id}))
    return [*rows, ["settings", *deadlines]]


@dataclass
class Reconciled:
    links: LinkResult = field(default_factory=LinkResult)
    orders_fetched: int = 0
    customers: GroupingResult = field(default_factory=GroupingResult)
    flags: FlagChanges = field(default_factory=FlagChanges)
    flags_ran: bool = False
    """False: nothing changed since the rules last ran, so their flags stand as they are."""


def reconcile_channel(db: Engine, channel_id: int, connector: Connector, settings: ChannelSettings,
                      now: datetime, pulled_changes: bool = True) -> Reconciled:
    """Everything reconciliation does after one channel's pull, in the order each step needs the last.

    A pull that brought nothing new (most polls) costs no run of the flag rules over the channel's whole
    history: they run only if the pull stored a change (`pulled_changes`), something was linked or fetched,
    a decision was recorded or moved on, the deadlines were changed, or FLAGS_RECHECK has passed since they
    last ran (kept in the FLAGS_CHECKED cursor row).
    """
    result = Reconciled(links=link_returns(db, channel_id))
    result.orders_fetched = fetch_missing_orders(db, channel_id, connector, now)
    if result.orders_fetched:
        again = link_returns(db, channel_id)
        result.links.orders_linked += again.orders_linked
        result.links.lines_linked += again.lines_linked
    result.customers = group_customers(db, now, channel_id)
    quiet = not (pulled_changes or result.links.orders_linked or result.links.lines_linked or result.orders_fetched)
    flags = refresh_flags(db, channel_id, settings, now, changed=not quiet)
    if flags is None:
        return result
    result.flags, result.flags_ran = flags, True
    if flags.raised or flags.resolved:
        log.info("flags_changed", raised=flags.raised, resolved=flags.resolved, open=flags.open)
    return result


def refresh_flags(db: Engine, channel_id: int, settings: ChannelSettings, now: datetime,
                  changed: bool) -> FlagChanges | None:
    """Run the channel's flag rules, unless nothing they read has `changed`, their inputs (`flag_inputs`) are
    as when they last ran, and that was less than FLAGS_RECHECK ago; None when they did not run."""
    inputs = flag_inputs(db, channel_id, settings)
    with db.connect() as conn:
        last = load_cursor(conn, channel_id, FLAGS_CHECKED) or {}
    ran_at = moment(last.get("at"))
    if not changed and last.get("inputs") == inputs and ran_at is not None and timedelta(0) <= now - ran_at < FLAGS_RECHECK:
        return None
    flags = recompute(db, channel_id, settings, now)
    with db.begin() as conn:
        # the rules only write flags: what they read is as `inputs` found it
        save_cursor(conn, channel_id, FLAGS_CHECKED, {"inputs": inputs, "at": now.isoformat()}, now)
    return flags


def recheck_push_failures(db: Engine, channels: dict[str, tuple[int, ChannelSettings]], now: datetime) -> None:
    """After a push pass only `decision_push_failed` can have changed; the rest waits for the next pull."""
    for _name, (channel_id, settings) in channels.items():
        recompute(db, channel_id, settings, now, codes=(FlagCode.DECISION_PUSH_FAILED,))
