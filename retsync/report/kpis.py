"""The figures of `retsync report`: every query and every KPI, computed once for all three renderers.

The report is one plain dict (the JSON format prints it as it is), so the text and HTML renderers can only
show what the JSON carries, and a figure means the same in all three. Rows are read with portable SQL and
summed in Python: percentiles, ISO weeks and per-currency sums then behave the same on SQLite and PostgreSQL.

Definitions (also in the README, "retsync report"):
- a return belongs to the period when it was *created* in it; an order when it was *placed* in it;
- return rate = units returned / units sold, over the orders retsync has stored (channels that only fetch the
  orders behind returns overstate it);
- time to refund = hours from a return's creation to its refund, where the channel reports both;
- a return costs its channel's `return_cost`, in the currency most of that channel's returns are in;
- a customer (customer group) bought again when an order of theirs was placed after their first return in
  the period, on any channel, before the period's end;
- open flags are today's, not the period's;
- test and demo returns a channel marks as such (`is_test`) are counted nowhere, only in `test_returns_left_out`;
- a channel that passes on several marketplaces' returns (a feed platform) shows each marketplace's part under
  `marketplaces`, so "Amazon via Channable" is told apart from the channel's other marketplaces;
- the weekly series covers plausible dates only: a return a channel dated before EARLIEST or more than
  FUTURE_MARGIN after the report is made (year 9999 happens) is counted everywhere else, named in
  `dates_out_of_range`, and drawn in no week — one such date would otherwise make 415,527 weekly rows.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, func, select

from retsync.config import Config
from retsync.kit.payload import EARLIEST
from retsync.report.money import Money, to_minor, totals
from retsync.store.models import Channel, Order, OrderLine, Return, ReturnFlag, ReturnLine

REPORT_VERSION = 1
TOP_SKUS = 10
FUTURE_MARGIN = timedelta(days=1)
"""A return created later than this after the report is made is dated wrong by its channel (or by a clock)."""

# Time-to-refund histogram: (label, from hours inclusive, to hours exclusive or None for open-ended).
REFUND_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("under 1 day", 0, 24), ("1-2 days", 24, 48), ("2-3 days", 48, 72), ("3-7 days", 72, 168),
    ("1-2 weeks", 168, 336), ("2-4 weeks", 336, 672), ("4 weeks or more", 672, None),
)


@dataclass(frozen=True)
class Period:
    """[since, until): either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def clause(self, column: Any) -> list[ColumnElement[bool]]:
        clauses = []
        if self.since is not None:
            clauses.append(column >= self.since)
        if self.until is not None:
            clauses.append(column < self.until)
        return clauses


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _hours_summary(hours: Sequence[float]) -> dict[str, Any]:
    median = statistics.median(hours) if hours else None
    p90 = percentile(hours, 0.9)
    return {"count": len(hours), "median": None if median is None else round(median, 2),
            "p90": None if p90 is None else round(p90, 2)}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _week_start(moment: datetime) -> date:
    day = moment.astimezone(timezone.utc).date()
    return day - timedelta(days=day.weekday())


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


class ReportData:
    """Reads the rows of one report: the period's returns, their lines, sales, customers and open flags."""

    def __init__(self, conn: Connection, period: Period, channels: Sequence[str] | None) -> None:
        self.conn, self.period, self.channels = conn, period, channels

    def _in_channels(self) -> list[ColumnElement[bool]]:
        return [Channel.name.in_(self.channels)] if self.channels else []

    def _counted(self) -> list[ColumnElement[bool]]:
        """The period's returns of the selected channels that are the business's, test and demo returns aside."""
        return [*self.period.clause(Return.created_at), *self._in_channels(), Return.is_test.is_(False)]

    def test_returns(self) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(Return).join(Channel, Channel.id == Return.channel_id)
            .where(*self.period.clause(Return.created_at), *self._in_channels(), Return.is_test.is_(True))
        ).scalar_one())

    def channel_names(self) -> dict[str, str]:
        rows = self.conn.execute(select(Channel.name, Channel.connector).where(*self._in_channels()))
        return {name: connector for name, connector in rows}

    def channel_currencies(self) -> dict[str, str]:
        """Each channel's currency: the one most of its returns (all time) are in, then alphabetical."""
        rows = self.conn.execute(
            select(Channel.name, Return.currency, func.count())
            .join(Return, Return.channel_id == Channel.id)
            .where(Return.currency.is_not(None), *self._in_channels())
            .group_by(Channel.name, Return.currency))
        best: dict[str, tuple[int, str]] = {}
        for name, currency, count in rows:
            currency = str(currency)
            if name not in best or (-count, currency) < (-best[name][0], best[name][1]):
                best[name] = (count, currency)
        return {name: currency for name, (_, currency) in best.items()}

    def returns(self) -> list[Any]:
        units = (select(ReturnLine.return_id, func.sum(ReturnLine.quantity).label("units"))
                 .group_by(ReturnLine.return_id).subquery())
        return list(self.conn.execute(
            select(Return.id, Channel.name.label("channel"), Return.marketplace, Return.created_at,
                   Return.refunded_at, Return.refund_amount, Return.currency, Return.customer_group_id,
                   func.coalesce(units.c.units, 0).label("units"))
            .join(Channel, Channel.id == Return.channel_id)
            .outerjoin(units, units.c.return_id == Return.id)
            .where(*self._counted())))

    def reason_lines(self) -> list[Any]:
        """One row per returned line (a line-less return gives one row): the line's reason, else the return's."""
        return list(self.conn.execute(
            select(Return.id.label("return_id"), Channel.name.label("channel"),
                   func.coalesce(ReturnLine.reason, Return.reason, "unknown").label("reason"),
                   func.coalesce(ReturnLine.quantity, 0).label("units"))
            .join(Channel, Channel.id == Return.channel_id)
            .outerjoin(ReturnLine, ReturnLine.return_id == Return.id)
            .where(*self._counted())))

    def returned_products(self) -> list[Any]:
        """Units returned per product, keyed like v_sku_returns: the SKU, else the EAN."""
        sku = func.coalesce(ReturnLine.sku, OrderLine.sku)
        ean = func.coalesce(ReturnLine.ean, OrderLine.ean)
        ean_key = case((sku.is_(None), ean))
        return list(self.conn.execute(
            select(sku.label("sku"), ean_key.label("ean_key"), func.max(ean).label("ean"),
                   func.max(func.coalesce(ReturnLine.title, OrderLine.title)).label("title"),
                   func.sum(ReturnLine.quantity).label("units"))
            .select_from(ReturnLine)
            .join(Return, Return.id == ReturnLine.return_id)
            .join(Channel, Channel.id == Return.channel_id)
            .outerjoin(OrderLine, OrderLine.id == ReturnLine.order_line_id)
            .where(*self._counted(), (sku.is_not(None)) | (ean.is_not(None)))
            .group_by(sku, ean_key)))

    def _placed(self) -> Any:
        return func.coalesce(Order.placed_at, Order.first_seen_at)

    def sales(self) -> list[Any]:
        """Orders and units sold per channel, by when the order was placed."""
        return list(self.conn.execute(
            select(Channel.name.label("channel"), func.count(func.distinct(Order.id)).label("orders"),
                   func.coalesce(func.sum(OrderLine.quantity), 0).label("units"))
            .select_from(Order)
            .join(Channel, Channel.id == Order.channel_id)
            .outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .where(*self.period.clause(self._placed()), *self._in_channels())
            .group_by(Channel.name)))

    def sold_products(self) -> list[Any]:
        ean_key = case((OrderLine.sku.is_(None), OrderLine.ean))
        return list(self.conn.execute(
            select(OrderLine.sku.label("sku"), ean_key.label("ean_key"), func.sum(OrderLine.quantity).label("units"))
            .join(Order, Order.id == OrderLine.order_id)
            .join(Channel, Channel.id == Order.channel_id)
            .where(*self.period.clause(self._placed()), *self._in_channels(),
                   (OrderLine.sku.is_not(None)) | (OrderLine.ean.is_not(None)))
            .group_by(OrderLine.sku, ean_key)))

    def group_orders(self) -> list[Any]:
        """When the customers who returned something in the period ordered, on any channel, up to its end."""
        groups = (select(Return.customer_group_id).join(Channel, Channel.id == Return.channel_id)
                  .where(Return.customer_group_id.is_not(None), *self._counted()))
        until = [self._placed() < self.period.until] if self.period.until is not None else []
        return list(self.conn.execute(
            select(Order.customer_group_id, self._placed().label("placed_at"))
            .where(Order.customer_group_id.in_(groups), *until)))

    def open_flags(self) -> list[Any]:
        return list(self.conn.execute(
            select(ReturnFlag.code, Channel.name.label("channel"), func.count().label("open"))
            .join(Return, Return.id == ReturnFlag.return_id)
            .join(Channel, Channel.id == Return.channel_id)
            .where(ReturnFlag.resolved_at.is_(None), Return.is_test.is_(False), *self._in_channels())
            .group_by(ReturnFlag.code, Channel.name)))


def _product_key(sku: str | None, ean_key: str | None) -> tuple[str, str]:
    return ("sku", sku) if sku is not None else ("ean", ean_key or "")


def build_report(db: Engine, config: Config, period: Period, channels: Sequence[str] | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """Everything `retsync report` shows, as the JSON document it prints with `--format json`."""
    now = now or datetime.now(timezone.utc)
    with db.connect() as conn:
        data = ReportData(conn, period, channels)
        known = data.channel_names()
        for name, configured in config.channels.items():
            if not channels or name in channels:
                known.setdefault(name, configured.connector)
        currencies = data.channel_currencies()
        returns = data.returns()
        reason_lines = data.reason_lines()
        returned_products = data.returned_products()
        sales = {row.channel: row for row in data.sales()}
        sold_products = {_product_key(r.sku, r.ean_key): int(r.units) for r in data.sold_products()}
        group_orders = data.group_orders()
        flags = data.open_flags()
        test_returns = data.test_returns()

    by_channel: dict[str, list[Any]] = defaultdict(list)
    for row in returns:
        by_channel[row.channel].append(row)

    channel_rows: list[dict[str, Any]] = []
    refund_hours: list[float] = []
    costs: list[tuple[str | None, int]] = []
    for name in sorted(known):
        rows = by_channel.get(name, [])
        hours = [(r.refunded_at - r.created_at).total_seconds() / 3600 for r in rows
                 if r.refunded_at is not None]
        refund_hours += hours
        units_returned = sum(int(r.units) for r in rows)
        sold = sales.get(name)
        units_sold = int(sold.units) if sold else 0
        settings = config.channels.get(name)
        currency = currencies.get(name)
        per_return: Money | None = None
        total_cost: Money | None = None
        if settings is not None and currency is not None:
            per_return = Money(currency=currency, amount=to_minor(settings.return_cost, currency))
            total_cost = Money(currency=currency, amount=per_return["amount"] * len(rows))
            costs.append((currency, total_cost["amount"]))
        channel_rows.append({
            "channel": name,
            "connector": known[name],
            "currency": currency,
            "returns": len(rows),
            "units_returned": units_returned,
            "orders": int(sold.orders) if sold else 0,
            "units_sold": units_sold,
            "return_rate": _rate(units_returned, units_sold),
            "refunded": totals((r.currency, int(r.refund_amount)) for r in rows if r.refund_amount is not None),
            "time_to_refund_hours": _hours_summary(hours),
            "return_cost": {"per_return": per_return, "total": total_cost},
            "marketplaces": _marketplaces(rows),
        })

    units_returned = sum(c["units_returned"] for c in channel_rows)
    units_sold = sum(c["units_sold"] for c in channel_rows)
    return {
        "report": "retsync returns report",
        "version": REPORT_VERSION,
        "generated_at": _iso(now),
        "period": {"since": _iso(period.since), "until": _iso(period.until)},
        "channels_selected": sorted(channels) if channels else None,
        "summary": {
            "returns": len(returns),
            "units_returned": units_returned,
            "orders": sum(c["orders"] for c in channel_rows),
            "units_sold": units_sold,
            "return_rate": _rate(units_returned, units_sold),
            "refunded": totals((r.currency, int(r.refund_amount)) for r in returns if r.refund_amount is not None),
            "return_cost": totals(costs),
            "time_to_refund_hours": _hours_summary(refund_hours),
            "test_returns_left_out": test_returns,
        },
        "channels": channel_rows,
        "time_to_refund": {"buckets": _refund_buckets(refund_hours)},
        "reasons": _reasons(reason_lines),
        "skus": _skus(returned_products, sold_products),
        "customers": _customers(returns, group_orders),
        "open_flags": _flags(flags),
        "weekly_returns": _weekly([r for r in returns if _plausible(r.created_at, now)], sorted(known)),
        "dates_out_of_range": _out_of_range(returns, now),
    }


def _marketplaces(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """A channel's returns per marketplace behind it, most returns first; empty where the channel is the
    marketplace (no return names another), so only feed platforms carry the breakdown."""
    per: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.marketplace is not None:
            per[row.marketplace].append(row)
    if not per:
        return []
    unnamed = [row for row in rows if row.marketplace is None]
    if unnamed:
        per["(not named)"] = unnamed
    ordered = sorted(per, key=lambda name: (-len(per[name]), name))
    return [{"marketplace": name, "returns": len(per[name]), "units_returned": sum(int(r.units) for r in per[name]),
             "refunded": totals((r.currency, int(r.refund_amount)) for r in per[name] if r.refund_amount is not None)}
            for name in ordered]


def _plausible(moment: datetime, now: datetime) -> bool:
    return EARLIEST <= moment <= now + FUTURE_MARGIN


def _out_of_range(returns: Sequence[Any], now: datetime) -> dict[str, Any]:
    """The returns left out of the weekly series: how many, their earliest and latest date, the window."""
    dates = sorted(r.created_at for r in returns if not _plausible(r.created_at, now))
    return {"returns": len(dates), "earliest": _iso(dates[0]) if dates else None,
            "latest": _iso(dates[-1]) if dates else None, "plausible_from": _iso(EARLIEST),
            "plausible_until": _iso(now + FUTURE_MARGIN)}


def _refund_buckets(hours: Iterable[float]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for value in hours:  # the buckets are contiguous from 0; a (misreported) negative time counts as the first
        label = next(label for label, _, high in REFUND_BUCKETS if high is None or value < high)
        counts[label] += 1
    return [{"label": label, "from_hours": low, "to_hours": high, "returns": counts[label]}
            for label, low, high in REFUND_BUCKETS]


def _reasons(lines: Iterable[Any]) -> list[dict[str, Any]]:
    returns: dict[str, set[int]] = defaultdict(set)
    units: Counter[str] = Counter()
    per_channel: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for line in lines:
        returns[line.reason].add(line.return_id)
        units[line.reason] += int(line.units)
        per_channel[line.reason][line.channel].add(line.return_id)
    ordered = sorted(returns, key=lambda reason: (-len(returns[reason]), -units[reason], reason))
    return [{"reason": reason, "returns": len(returns[reason]), "units": units[reason],
             "channels": {name: len(ids) for name, ids in sorted(per_channel[reason].items())}}
            for reason in ordered]


def _skus(returned: Iterable[Any], sold: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    rows = []
    for row in returned:
        units_sold = sold.get(_product_key(row.sku, row.ean_key), 0)
        rows.append({"sku": row.sku, "ean": row.ean_key if row.sku is None else row.ean, "title": row.title,
                     "units_returned": int(row.units), "units_sold": units_sold,
                     "return_rate": _rate(int(row.units), units_sold)})
    rows.sort(key=lambda r: (-r["units_returned"], r["sku"] is None, r["sku"] or "", r["ean"] or ""))
    return rows[:TOP_SKUS]


def _customers(returns: Iterable[Any], group_orders: Iterable[Any]) -> dict[str, Any]:
    first_return: dict[int, datetime] = {}
    without_group = 0
    for row in returns:
        if row.customer_group_id is None:
            without_group += 1
        elif row.customer_group_id not in first_return or row.created_at < first_return[row.customer_group_id]:
            first_return[row.customer_group_id] = row.created_at
    bought_again = {order.customer_group_id for order in group_orders
                    if order.customer_group_id in first_return and order.placed_at is not None
                    and order.placed_at > first_return[order.customer_group_id]}
    return {"with_return": len(first_return), "bought_again": len(bought_again),
            "share_bought_again": _rate(len(bought_again), len(first_return)),
            "returns_without_group": without_group}


def _flags(rows: Iterable[Any]) -> list[dict[str, Any]]:
    per_code: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        per_code[row.code][row.channel] = int(row.open)
    ordered = sorted(per_code, key=lambda code: (-sum(per_code[code].values()), code))
    return [{"code": code, "open": sum(per_code[code].values()), "channels": dict(sorted(per_code[code].items()))}
            for code in ordered]


def _weekly(returns: Iterable[Any], channels: list[str]) -> list[dict[str, Any]]:
    """Returns per ISO week (Monday, UTC) and channel, every week from the first to the last one listed."""
    counts: dict[date, Counter[str]] = defaultdict(Counter)
    for row in returns:
        counts[_week_start(row.created_at)][row.channel] += 1
    if not counts:
        return []
    weeks = []
    week, last = min(counts), max(counts)
    while week <= last:
        iso = week.isocalendar()
        weeks.append({"week": f"{iso.year}-W{iso.week:02d}", "week_start": week.isoformat(),
                      "returns": sum(counts[week].values()),
                      "channels": {name: counts[week][name] for name in channels}})
        week += timedelta(weeks=1)
    return weeks
