"""A WooCommerce shop (REST wc/v3) with the WP Swings returns plugin, seeded, stateful, fast at 20k+ orders.

Field names, status strings, paging headers (`X-WP-Total`, `X-WP-TotalPages`,
`Link` keeping the request's query) and error bodies (`{code, message, data.status}`) follow the notes in
`shared/specs/woocommerce/NOTES.md`; `date_paid` is null on unpaid orders and `date_completed` set once an
order is completed, as WooCommerce records them. Refunds behave as in core: negative
item quantities and totals, the order's `date_modified` bumped, the order
set to `refunded` once fully refunded, and a refund larger than what is left
refused. Every refund, status change and note applied is logged in `applied`
(and named in `acts_applied`) so tests can prove nothing was applied twice. The seeded shop itself (customers,
orders, return requests, the shop's own refunds) is drawn in sandbox_data.py; this module holds the routes.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from retsync.kit.emulator import Emulator, TruncateBody, route
from retsync_connectors.woocommerce.sandbox_data import ITEM_BASE, TAX_RATE_ID, new_order, seeded_orders
from retsync_connectors.woocommerce.sandbox_data import cents as _cents
from retsync_connectors.woocommerce.sandbox_data import from_cents as _from_cents
from retsync_connectors.woocommerce.sandbox_data import gmt as _gmt
from retsync_connectors.woocommerce.sandbox_data import local as _local
from retsync_connectors.woocommerce.sandbox_data import money as _money
from retsync_connectors.woocommerce.sandbox_data import set_meta as _set_meta

SANDBOX_KEY = "ck_sandbox_5f2d8c0b1e7a4d9c"
SANDBOX_SECRET = "cs_sandbox_9a41e6b27d3c0f58"
PREFIX = "/wp-json/wc/v3"
REFUND_BASE = 900_000
NOTE_BASE = 70_000
MAX_PER_PAGE = 100

STOCK_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
                  "checkout-draft")
RETURN_STATUSES = ("return-requested", "return-approved", "return-cancelled")
PLUGIN_STATUSES = ("exchange-request", "partially-shipped")
"""Statuses other plugins register; retsync has no word for them and must store them verbatim."""

PANEL_DECISION_STATUSES = {"accept": "return-approved", "reject": "return-cancelled"}
"""What the held_decision_statuses default maps back: the statuses a merchant picks in WP Swings' panel."""


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _parse_date(value: str, gmt: bool) -> str | None:
    """A filter date as a `*_gmt` string, for comparing with the stored ones."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None and not gmt:
        parsed = parsed - timedelta(hours=1)
    return _gmt(parsed.replace(tzinfo=parsed.tzinfo or timezone.utc))


class _WpError(Exception):
    def __init__(self, status: int, code: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data


@dataclass
class WooCommerceEmulator(Emulator):
    """A shop of `n_orders` orders; about a quarter of them are returns of some kind."""

    n_orders: int = 240
    days: int = 150
    refunds_route: bool = True
    """False: a shop before WooCommerce 9.0, without `GET /refunds`."""
    refund_touches_order: bool = True
    """False: a shop where a refund leaves the order's `date_modified` as it was."""
    orderby_modified: bool = True
    """False: an older core whose orders list cannot be sorted by `modified`."""
    gateway_error: str | None = None
    """Set: the payment gateway refuses refunds with this message (only `api_refund: true` refunds reach it)."""
    applied: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int) -> WooCommerceEmulator:
        """A shop holding about `returns` returns (the sandbox's size knob)."""
        return cls(seed=seed, n_orders=max(40, returns * 4))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.orders: dict[int, dict[str, Any]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.hidden_refund_items: dict[int, int] = {}
        self.statuses = set(STOCK_STATUSES) | set(RETURN_STATUSES) | set(PLUGIN_STATUSES)
        self._index: list[tuple[str, int]] = []
        self._refund_index: list[tuple[str, int, int]] = []
        """(date_created_gmt, refund id, order id) of every refund, in date order: `GET /refunds?after=` reads
        only the refunds after the date, as the shop's database does with its index, not every refund ever made."""
        self._next_item = ITEM_BASE
        self._next_refund = REFUND_BASE
        self._next_note = NOTE_BASE
        self._lose: list[tuple[str, str]] = []
        self._version = 0
        self._selected: tuple[Any, list[int]] | None = None
        for seeded in seeded_orders(random.Random(self.seed), self.now, self.n_orders, self.days, self._take_item_id):
            self.orders[seeded.order["id"]] = seeded.order
            if seeded.refund is not None:
                self._refund(seeded.order, seeded.refund, seeded.refunded_at, by_retsync=False)
            self._stamp(seeded.order, seeded.modified)
        self._index = sorted((order["date_modified_gmt"], order_id) for order_id, order in self.orders.items())
        self._refund_index = sorted((refund["date_created_gmt"], refund["id"], order_id)
                                    for order_id, refunds in self.refunds.items() for refund in refunds)

    # --- state changes ---------------------------------------------------------------------

    def _take_item_id(self) -> int:
        """Order items and refund items share one counter, as WooCommerce's order item table does."""
        self._next_item += 1
        return self._next_item

    def _stamp(self, order: dict[str, Any], moment: datetime | None = None) -> None:
        """Bump `date_modified`, keeping the modified index sorted.

        A live change (no `moment`) is stamped strictly after every change before it, as a real shop's clock
        would, so "changed since" listings always see it, however fast a test acts.
        """
        old = order["date_modified_gmt"]
        if moment is None:
            latest = self._index[-1][0] if self._index else old
            floor = datetime.fromisoformat(latest).replace(tzinfo=timezone.utc) + timedelta(seconds=1)
            moment = max(datetime.now(timezone.utc), floor)
        new = _gmt(moment)
        if self._index:
            at = bisect.bisect_left(self._index, (old, order["id"]))
            if at < len(self._index) and self._index[at] == (old, order["id"]):
                self._index.pop(at)
            bisect.insort(self._index, (new, order["id"]))
        order["date_modified_gmt"] = new
        order["date_modified"] = _local(moment)
        self._version += 1

    def _refunded_so_far(self, order_id: int) -> tuple[Decimal, dict[int, int]]:
        amount, quantities = Decimal(0), {}
        for refund in self.refunds.get(order_id, []):
            amount += Decimal(refund["amount"])
            for item in refund["line_items"]:
                source = self.hidden_refund_items[item["id"]]
                quantities[source] = quantities.get(source, 0) - int(item["quantity"])
        return amount, quantities

    def _refund(self, order: dict[str, Any], body: dict[str, Any], when: datetime | None = None,
                *, by_retsync: bool = True) -> dict[str, Any]:
        """`wc_create_refund` as the REST controller calls it, with core's checks and side effects."""
        lines = body.get("line_items") or []
        if not isinstance(lines, list):
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): line_items",
                           params={"line_items": "line_items is not of type array."})
        items = {item["id"]: item for item in order["line_items"]}
        amount = _dec(body.get("amount")) if body.get("amount") not in (None, "") else None
        if amount is None:
            amount = sum((_dec(line.get("refund_total")) or Decimal(0)) + sum(
                (_dec(t.get("refund_total")) or Decimal(0) for t in line.get("refund_tax") or []), Decimal(0))
                for line in lines if isinstance(line, dict))
        if amount <= 0:
            raise _WpError(400, "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.")
        refunded, quantities = self._refunded_so_far(order["id"])
        if amount > Decimal(order["total"]) - refunded:
            raise _WpError(500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.")
        refund_items = []
        for line in lines:
            item = items.get(int(line.get("id", 0))) if isinstance(line, dict) and str(line.get("id", "")).isdigit() \
                else None
            if item is None:
                raise _WpError(500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund line item.")
            quantity = int(_dec(line.get("quantity", line.get("qty"))) or 0)
            if quantity > item["quantity"] - quantities.get(item["id"], 0):
                raise _WpError(500, "woocommerce_rest_cannot_create_order_refund",
                               f"Refund quantity for {item['name']} exceeds what is left to refund.")
            refund_items.append(self._refund_item(item, line, quantity))
        api_refund = body.get("api_refund", True)
        api_refund = api_refund if isinstance(api_refund, bool) else True
        api_restock = body.get("api_restock", True)
        api_restock = api_restock if isinstance(api_restock, bool) else True
        if api_refund and by_retsync and self.gateway_error:
            raise _WpError(500, "woocommerce_rest_cannot_create_order_refund", self.gateway_error)
        moment = when or datetime.now(timezone.utc)
        self._next_refund += 1
        refund = {
            "id": self._next_refund, "date_created": _local(moment), "date_created_gmt": _gmt(moment),
            "amount": _money(amount), "reason": str(body.get("reason") or ""), "refunded_by": 1,
            "refunded_payment": api_refund, "meta_data": [
                {"id": self._next_refund * 10 + n, "key": str(m.get("key")), "value": m.get("value")}
                for n, m in enumerate(body.get("meta_data") or []) if isinstance(m, dict)],
            "line_items": refund_items, "tax_lines": [], "shipping_lines": [], "fee_lines": [],
        }
        self.refunds.setdefault(order["id"], []).insert(0, refund)
        if self._index:  # once seeded; the seeding sorts the index once at its end
            bisect.insort(self._refund_index, (refund["date_created_gmt"], refund["id"], order["id"]))
        order["refunds"].insert(0, {"id": refund["id"], "reason": refund["reason"], "total": "-" + refund["amount"]})
        if refunded + amount >= Decimal(order["total"]):
            order["status"] = "refunded"
        if by_retsync:
            self._stamp(order)
            self.applied.append({"kind": "refund", "order": order["id"], "refund": refund["id"],
                                 "amount": refund["amount"], "api_refund": api_refund, "api_restock": api_restock,
                                 "items": {self.hidden_refund_items[i["id"]]: -i["quantity"] for i in refund_items},
                                 "meta": {m["key"]: m["value"] for m in refund["meta_data"]}})
        return refund

    def _refund_item(self, item: dict[str, Any], line: dict[str, Any], quantity: int) -> dict[str, Any]:
        total = _dec(line.get("refund_total")) or Decimal(0)
        taxes = [t for t in line.get("refund_tax") or [] if isinstance(t, dict)]
        tax = sum((_dec(t.get("refund_total")) or Decimal(0) for t in taxes), Decimal(0))
        item_id = self._take_item_id()
        self.hidden_refund_items[item_id] = item["id"]
        return {
            "id": item_id, "name": item["name"], "product_id": item["product_id"],
            "variation_id": item["variation_id"], "quantity": -quantity, "tax_class": "",
            "subtotal": _money(-total), "subtotal_tax": _money(-tax), "total": _money(-total),
            "total_tax": _money(-tax), "taxes": [{"id": t.get("id"), "total": _money(-(_dec(t.get("refund_total"))
                                                                                     or Decimal(0))),
                                                  "subtotal": ""} for t in taxes],
            "meta_data": [], "sku": item["sku"], "price": -float(item["price"]),
        }

    def _add_note(self, order: dict[str, Any], text: str, to_customer: bool, by_retsync: bool = True) -> dict[str, Any]:
        self._next_note += 1
        moment = datetime.now(timezone.utc)
        note = {"id": self._next_note, "author": "retsync" if by_retsync else "shop manager",
                "date_created": _local(moment), "date_created_gmt": _gmt(moment), "note": text,
                "customer_note": to_customer}
        self.notes.setdefault(order["id"], []).insert(0, note)
        if by_retsync:
            self.applied.append({"kind": "note", "order": order["id"], "note": text, "customer_note": to_customer})
        return note

    def _update(self, order: dict[str, Any], body: dict[str, Any], *, by_retsync: bool = True) -> None:
        status = body.get("status")
        if status is not None and status not in self.statuses - {"trash"}:
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): status",
                           params={"status": f"status is not one of {', '.join(sorted(self.statuses))}."})
        for entry in body.get("meta_data") or []:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                _set_meta(order, entry["key"], entry.get("value"))
        if status is not None and status != order["status"]:
            if by_retsync:
                self.applied.append({"kind": "status", "order": order["id"], "from": order["status"], "to": status})
            order["status"] = status
            if status == "completed":
                now = datetime.now(timezone.utc)
                order["date_completed"], order["date_completed_gmt"] = _local(now), _gmt(now)
        self._stamp(order)

    # --- what tests and the demo use to act as the shop's staff and customers ----------------

    def request_return(self, order_id: int | None = None, quantity: int = 1, reason: str = "Wrong size") -> int:
        """A customer asks to return the first item of an order (default: a fresh completed one)."""
        with self.lock:
            if order_id is None:
                order_id = max(self.orders) + 1
                self.orders[order_id] = new_order(random.Random(order_id), order_id,
                                                  datetime.now(timezone.utc) - timedelta(days=3), "completed",
                                                  self._take_item_id)
                bisect.insort(self._index, (self.orders[order_id]["date_modified_gmt"], order_id))
            order = self.orders[order_id]
            item = order["line_items"][0]
            request = {"products": [{"item_id": item["id"], "product_id": item["product_id"], "variation_id": 0,
                                     "qty": quantity, "price": item["price"]}], "amount": _money(
                Decimal(str(item["price"])) * quantity), "subject": reason, "reason": "", "status": "pending"}
            _set_meta(order, "wps_rma_return_product", {str(int(datetime.now(timezone.utc).timestamp())): request})
            _set_meta(order, "wps_rma_request_made", {str(item["id"]): "pending"})
            order["status"] = "return-requested"
            self._stamp(order)
            return order_id

    def add_odd_return(self) -> str:
        """A return request in states nobody mapped (a plugin's own order status and request state), on an order
        whose optional fields are empty: no e-mail, phone, address, SKU, subject or reason."""
        with self.lock:
            order_id = self.request_return(reason="")
            order = self.orders[order_id]
            for entry in order["meta_data"]:
                if entry["key"] == "wps_rma_return_product":
                    for request in entry["value"].values():
                        request.update(status="awaiting-inspection", subject="", reason="")
                elif entry["key"] == "wps_rma_request_made":
                    entry["value"] = {key: "awaiting-inspection" for key in entry["value"]}
            for part in ("billing", "shipping"):
                order[part] = {key: "" for key in order[part]}
            for item in order["line_items"]:
                item["sku"] = ""
            self.statuses.add("awaiting-inspection")
            order["status"] = "awaiting-inspection"
            order["customer_id"] = 0
            self._stamp(order)
            return str(order_id)

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A return request for 1e30 items (`quantity`), or on an order whose buyer typed a 36-character
        postcode and a 64-character phone (`postcode`)."""
        from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY

        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}: one of {self.POISONS}")
        with self.lock:
            order_id = self.request_return()
            order = self.orders[order_id]
            if poison == "quantity":
                for entry in order["meta_data"]:
                    if entry["key"] == "wps_rma_return_product":
                        for request in entry["value"].values():
                            request["products"][0]["qty"] = POISON_QUANTITY
            else:
                order["billing"].update(postcode=POISON_POSTCODE, phone=POISON_PHONE)
            return str(order_id)

    def refund_in_admin(self, order_id: int, amount: str | None = None, item_quantity: int = 0) -> int:
        """The shop manager refunds in wp-admin: an amount, or `item_quantity` of the first item."""
        with self.lock:
            order = self.orders[order_id]
            item = order["line_items"][0]
            lines = []
            if item_quantity:
                unit = Decimal(item["total"]) / item["quantity"]
                tax = Decimal(item["total_tax"]) / item["quantity"]
                lines = [{"id": item["id"], "quantity": item_quantity,
                          "refund_total": float(_money(unit * item_quantity)),
                          "refund_tax": [{"id": TAX_RATE_ID, "refund_total": float(_money(tax * item_quantity))}]}]
            refund = self._refund(order, {"amount": amount, "reason": "Refunded in wp-admin", "line_items": lines},
                                  by_retsync=False)
            if self.refund_touches_order:
                self._stamp(order)
            else:
                self._version += 1
            return int(refund["id"])

    def set_status(self, order_id: int, status: str) -> None:
        """The shop manager changes the order's status in wp-admin (e.g. approves a return request)."""
        with self.lock:
            self._update(self.orders[order_id], {"status": status}, by_retsync=False)

    def lose_answer(self, method: str, path_suffix: str) -> None:
        """The next matching request is applied but its answer never arrives (a proxy timeout after the write)."""
        with self.lock:
            self._lose.append((method.upper(), path_suffix))

    def acts_applied(self) -> list[tuple[str, ...]]:
        """One entry per refunded order item, status change and note retsync made, naming the order and the item
        (or the status, or the note's text), never the refund's id: a refund made twice shows twice."""
        with self.lock:
            return [entry for applied in self.applied for entry in _effects(applied)]

    def held_returns(self) -> dict[str, str]:
        with self.lock:
            return {str(value): str(order["id"]) for order in self.orders.values()
                    for entry in order.get("meta_data", []) if entry.get("key") == "retsync_source_return"
                    for value in [entry.get("value")]}

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """The merchant moves the held order to the status that means `kind` and (optionally) writes a note."""
        status = PANEL_DECISION_STATUSES.get(kind)
        if status is None:
            raise ValueError(f"the stock setup has no status for {kind!r}; one of {sorted(PANEL_DECISION_STATUSES)}")
        with self.lock:
            order = self.orders[int(reference)]
            if note:
                self._add_note(order, note, to_customer=False, by_retsync=False)
            self._update(order, {"status": status}, by_retsync=False)

    def order(self, order_id: int | str) -> dict[str, Any]:
        return self.orders[int(order_id)]

    def truth(self) -> dict[str, set[str]]:
        """What a full sync with the default settings must store: every order, and the orders that are returns."""
        returns = set()
        for order_id, order in self.orders.items():
            if order["status"] == "trash":
                continue
            keys = {m["key"] for m in order["meta_data"]}
            if order["status"] in RETURN_STATUSES or order["refunds"] or "wps_rma_return_product" in keys \
                    or any(k.startswith("retsync_decision_") for k in keys):
                returns.add(str(order_id))
        return {"orders": {str(i) for i, o in self.orders.items() if o["status"] != "trash"}, "returns": returns}

    # --- HTTP ------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        lost = None
        with self.lock:
            for entry in self._lose:
                if request.method == entry[0] and request.url.path.endswith(entry[1]):
                    lost = entry
                    self._lose.remove(entry)
                    break
            response = super().handle(request)
        if lost is not None and response.status_code < 400:
            raise TruncateBody(response)
        return response

    @staticmethod
    def wp_error(status: int, code: str, message: str, **data: Any) -> httpx.Response:
        return Emulator.json_response(status, {"code": code, "message": message, "data": {"status": status, **data}})

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        key = secret = None
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except ValueError:
                key = None
        else:
            key, secret = request.url.params.get("consumer_key"), request.url.params.get("consumer_secret")
        if key is None and secret is None:
            return self.wp_error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if key != SANDBOX_KEY:
            return self.wp_error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != SANDBOX_SECRET:
            # WC_REST_Authentication::perform_basic_authentication (key + secret over HTTPS, basic or query);
            # "Invalid signature" is OAuth 1.0a's answer over plain HTTP, which this sandbox does not speak
            return self.wp_error(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
        return None

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.wp_error(404, "rest_no_route", "No route was found matching the URL and request method.")

    def malformed_body(self) -> bytes:
        return (b'<br />\n<b>Notice</b>:  Undefined index: wps_rma in <b>/var/www/html/wp-content/plugins</b>'
                b'<br />\n[{"id":')

    def _order_or_error(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(int(order_id)) if order_id.isdigit() else None
        if order is None or order["status"] == "trash":
            raise _WpError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def _guarded(self, action: Any) -> httpx.Response:
        try:
            with self.lock:
                return action()
        except _WpError as error:
            return self.wp_error(error.status, error.code, error.message, **error.data)

    @staticmethod
    def _body(request: httpx.Request) -> dict[str, Any]:
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            raise _WpError(400, "rest_invalid_json", "Invalid JSON body passed.") from None
        if not isinstance(body, dict):
            raise _WpError(400, "rest_invalid_json", "Invalid JSON body passed.")
        return body

    def _paged(self, request: httpx.Request, entries: list[Any], path: str) -> httpx.Response:
        params = request.url.params
        try:
            page = int(params.get("page", "1"))
            per_page = int(params.get("per_page", "10"))
        except ValueError:
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): page, per_page") from None
        if page < 1:
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): page",
                           params={"page": "page must be greater than or equal to 1"})
        if not 1 <= per_page <= MAX_PER_PAGE:  # rest_validate_value_from_schema's words for minimum/maximum
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): per_page",
                           params={"per_page": f"per_page must be between 1 (inclusive) and {MAX_PER_PAGE} "
                                               "(inclusive)"})
        total = len(entries)
        pages = (total + per_page - 1) // per_page
        if page > pages and total > 0:
            raise _WpError(400, "rest_post_invalid_page_number",
                           "The page number requested is larger than the number of pages available.")
        chunk = entries[(page - 1) * per_page: page * per_page]
        links = []
        # WC_REST_Orders_V2_Controller::get_items: the links keep every query argument of the request (filters,
        # order, per_page) and set only `page`
        if page > 1:
            links.append(f'<{request.url.copy_set_param("page", str(page - 1))}>; rel="prev"')
        if page < pages:
            links.append(f'<{request.url.copy_set_param("page", str(page + 1))}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        materialized = [self.orders[e] if isinstance(e, int) and path == "orders" else e for e in chunk]
        return self.json_response(200, materialized, **headers)

    # --- routes ----------------------------------------------------------------------------

    @route("GET", PREFIX + "/orders")
    def list_orders(self, request: httpx.Request) -> httpx.Response:
        return self._guarded(lambda: self._paged(request, self._select(request.url.params), "orders"))

    def _select(self, params: httpx.QueryParams) -> list[int]:
        """The matching ids in list order, computed once per query and shop state, so paging 20k orders is cheap."""
        key = (self._version, tuple(sorted((k, v) for k, v in params.multi_items() if k not in ("page", "per_page"))))
        if self._selected is None or self._selected[0] != key:
            self._selected = (key, self._compute_selection(params))
        return self._selected[1]

    def _compute_selection(self, params: httpx.QueryParams) -> list[int]:
        gmt = params.get("dates_are_gmt", "false").lower() in ("true", "1")
        orderby, order = params.get("orderby", "date"), params.get("order", "desc")
        allowed = ("date", "id", "include", "title", "slug") + (("modified",) if self.orderby_modified else ())
        if orderby not in allowed:
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): orderby",
                           params={"orderby": f"orderby is not one of {', '.join(allowed)}."})
        if order not in ("asc", "desc"):
            raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): order")
        after = None
        if params.get("modified_after"):
            after = _parse_date(params["modified_after"], gmt)
            if after is None:
                raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): modified_after",
                               params={"modified_after": "Invalid date."})
        if params.get("include"):  # a lookup by primary key, as in the shop's database: never a scan of every order
            include = {int(i) for i in params["include"].split(",") if i.strip().isdigit()}
            ids = sorted((i for i in include if i in self.orders),
                         key=lambda i: (self.orders[i]["date_modified_gmt"], i))
            ids = [i for i in ids if after is None or self.orders[i]["date_modified_gmt"] > after]
        else:
            start = bisect.bisect_right(self._index, (after, 1 << 62)) if after is not None else 0
            ids = [order_id for _, order_id in self._index[start:]]
        wanted = [s for s in params.get("status", "any").split(",") if s]
        checks = []
        if "any" not in wanted:
            checks.append(lambda o: o["status"] in wanted)
        else:
            checks.append(lambda o: o["status"] != "trash")
        for name, column, newer in (("after", "date_created_gmt", True), ("before", "date_created_gmt", False),
                                    ("modified_before", "date_modified_gmt", False)):
            if params.get(name):
                bound = _parse_date(params[name], gmt)
                if bound is not None:
                    checks.append(lambda o, c=column, b=bound, n=newer: o[c] > b if n else o[c] < b)
        ids = [i for i in ids if all(check(self.orders[i]) for check in checks)]
        if orderby in ("date", "title", "slug"):
            ids.sort(key=lambda i: (self.orders[i]["date_created_gmt"], i))
        elif orderby == "modified":
            pass  # the index is in modified order already
        elif orderby in ("id", "include"):
            ids.sort()
        return ids[::-1] if order == "desc" else ids

    @route("POST", PREFIX + "/orders")
    def create_order(self, request: httpx.Request) -> httpx.Response:
        def act() -> httpx.Response:
            body = self._body(request)
            status = body.get("status", "pending")
            if status not in self.statuses - {"trash"}:
                raise _WpError(400, "rest_invalid_param", "Invalid parameter(s): status")
            order_id = max(self.orders) + 1
            order = new_order(random.Random(order_id), order_id, datetime.now(timezone.utc), status,
                              self._take_item_id)
            order["created_via"] = "rest-api"
            order["line_items"] = [self._posted_item(line) for line in body.get("line_items") or []
                                   if isinstance(line, dict)]
            cents = sum(_cents(i["total"]) + _cents(i["total_tax"]) for i in order["line_items"])
            order["total"], order["shipping_total"], order["shipping_tax"] = _from_cents(cents), "0.00", "0.00"
            if isinstance(body.get("customer_note"), str):
                order["customer_note"] = body["customer_note"]
            for part in ("billing", "shipping"):
                if isinstance(body.get(part), dict):
                    order[part] = {**order[part], **body[part]}
            self.orders[order_id] = order
            bisect.insort(self._index, (order["date_modified_gmt"], order_id))
            self._update(order, {"meta_data": body.get("meta_data") or []}, by_retsync=False)
            self.applied.append({"kind": "order", "order": order_id, "status": status})
            return self.json_response(201, order)

        return self._guarded(act)

    def _posted_item(self, line: dict[str, Any]) -> dict[str, Any]:
        quantity = int(_dec(line.get("quantity")) or 1)
        total = _dec(line.get("total")) or Decimal(0)
        return {"id": self._take_item_id(), "name": str(line.get("name") or "Item"),
                "product_id": int(_dec(line.get("product_id")) or 0), "variation_id": 0, "quantity": quantity,
                "tax_class": "", "subtotal": _money(total), "subtotal_tax": "0.00", "total": _money(total),
                "total_tax": "0.00", "taxes": [],
                "meta_data": [{"id": index + 1, "key": str(m["key"]), "value": m.get("value")}
                              for index, m in enumerate(line.get("meta_data") or [])
                              if isinstance(m, dict) and m.get("key")],
                "sku": str(line.get("sku") or ""),
                "price": float(total / quantity) if quantity else 0.0}

    @route("GET", PREFIX + "/orders/{order_id}")
    def get_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        return self._guarded(lambda: self.json_response(200, self._order_or_error(order_id)))

    @route("PUT", PREFIX + "/orders/{order_id}")
    @route("POST", PREFIX + "/orders/{order_id}")
    @route("PATCH", PREFIX + "/orders/{order_id}")
    def update_order(self, request: httpx.Request, order_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            order = self._order_or_error(order_id)
            self._update(order, self._body(request))
            return self.json_response(200, order)

        return self._guarded(act)

    @route("GET", PREFIX + "/orders/{order_id}/refunds")
    def list_order_refunds(self, request: httpx.Request, order_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            order = self._order_or_error(order_id)
            return self._paged(request, list(self.refunds.get(order["id"], [])), "refunds")

        return self._guarded(act)

    @route("POST", PREFIX + "/orders/{order_id}/refunds")
    def create_refund(self, request: httpx.Request, order_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            if not order_id.isdigit() or int(order_id) not in self.orders:
                raise _WpError(404, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
            return self.json_response(201, self._refund(self.orders[int(order_id)], self._body(request)))

        return self._guarded(act)

    @route("GET", PREFIX + "/refunds")
    def list_refunds(self, request: httpx.Request) -> httpx.Response:
        if not self.refunds_route:
            return self.not_found(request)

        def act() -> httpx.Response:
            gmt = request.url.params.get("dates_are_gmt", "false").lower() in ("true", "1")
            after = _parse_date(request.url.params["after"], gmt) if request.url.params.get("after") else None
            start = bisect.bisect_right(self._refund_index, (after, 1 << 62, 0)) if after is not None else 0
            matching = []
            for _, refund_id, order_id in self._refund_index[start:]:
                # a refund deleted since (a test can drop one from `refunds`) is no longer listed
                refund = next((r for r in self.refunds.get(order_id, []) if r["id"] == refund_id), None)
                if refund is not None:
                    matching.append({**refund, "parent_id": order_id})
            if request.url.params.get("order", "desc") == "desc":
                matching.reverse()
            return self._paged(request, matching, "refunds")

        return self._guarded(act)

    @route("GET", PREFIX + "/orders/{order_id}/notes")
    def list_notes(self, request: httpx.Request, order_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            order = self._order_or_error(order_id)
            kind = request.url.params.get("type", "any")
            notes = [n for n in self.notes.get(order["id"], [])
                     if kind == "any" or n["customer_note"] == (kind == "customer")]
            return self.json_response(200, notes)

        return self._guarded(act)

    @route("POST", PREFIX + "/orders/{order_id}/notes")
    def create_note(self, request: httpx.Request, order_id: str) -> httpx.Response:
        def act() -> httpx.Response:
            order = self._order_or_error(order_id)
            body = self._body(request)
            if not isinstance(body.get("note"), str) or not body["note"].strip():
                raise _WpError(400, "rest_missing_callback_param", "Missing parameter(s): note",
                               params=["note"])
            to_customer = body.get("customer_note", False)
            return self.json_response(201, self._add_note(order, body["note"], to_customer is True))

        return self._guarded(act)


def _effects(applied: dict[str, Any]) -> list[tuple[str, ...]]:
    """What one logged change did to the shop, as `acts_applied` names it (an order created to hold another
    channel's return is no decision act and is left out)."""
    order = str(applied["order"])
    if applied["kind"] == "refund":
        return [("refund", order, str(item)) for item in applied["items"]]
    if applied["kind"] == "status":
        return [("status", order, str(applied["to"]))]
    if applied["kind"] == "note":
        return [("note", order, str(applied["note"]))]
    return []
