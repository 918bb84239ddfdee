"""The Magento sandbox: the Admin REST API 2.4.9 (`admin-schema-2.4.9.yaml`, NOTES.md) on the kit's Emulator.

Written from the contract, not from the connector: searchCriteria filters (eq, neq, gt, gteq, lt, lteq, in, nin,
like), sort orders and paging, where a page past the end repeats the last page (total_count is what tells the
end); admin tokens from `POST /V1/integration/admin/token`, living `token_ttl` seconds; the RMA's status derived
from its items' statuses on every save; closed RMAs refused; credit memos that update the order's refunded
quantities and totals; error bodies as `error-response` (`message` with `%1` parameters). `edition =
"open_source"` answers the RMA routes as Magento Open Source does: no such route.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from retsync.kit.emulator import Emulator, route
from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY
from retsync_connectors.magento.sandbox_data import (
    CONDITIONS,
    HOLD_ORDER_ID,
    REASONS,
    RESOLUTIONS,
    MagentoData,
    bought,
    rma_status,
    stamp,
)

SANDBOX_USERNAME = "retsync-sandbox"
SANDBOX_PASSWORD = "sandbox-pass-7f3a9c21"
ITEM_STATUSES = ("pending", "authorized", "received", "approved", "rejected", "denied")
CLOSED = ("closed", "processed_closed")
MAX_PAGE_SIZE = 300
PREFIX = "/rest/{store}/V1"


class MagentoError(Exception):
    """An `error-response`. The schema's `parameters` is a list of objects (`fieldName`, `fieldValue`,
    `resources`) that the `%fieldName`-style placeholders of `message` name; `%1` placeholders are filled in here
    (the schema has no shape for positional parameters)."""

    def __init__(self, status: int, message: str, *positional: Any, **named: str) -> None:
        for index, value in enumerate(positional, start=1):
            message = message.replace(f"%{index}", str(value))
        super().__init__(message)
        self.status, self.message = status, message
        self.parameters = [{key: str(value)} for key, value in named.items()]


def answers(handler: Callable[..., httpx.Response]) -> Callable[..., httpx.Response]:
    @functools.wraps(handler)
    def answer(self: MagentoEmulator, request: httpx.Request, **params: str) -> httpx.Response:
        if self.edition == "open_source" and ("/returns" in request.url.path):
            return self.not_found(request)
        try:
            return handler(self, request, **params)
        except MagentoError as error:
            body: dict[str, Any] = {"message": error.message}
            if error.parameters:
                body["parameters"] = error.parameters
            return self.json_response(error.status, body)

    return answer


def _now() -> str:
    return stamp(datetime.now(UTC))


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"null")
    except ValueError:
        raise MagentoError(400, "Decoding error: %1", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise MagentoError(400, "Decoding error: %1", "the body is not an object")
    return body


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,10}", str(value)):
        raise MagentoError(400, 'The "%1" value\'s type is invalid. The "int" type was expected. Verify and try '
                                "again.", name)
    return int(value)


def _matches(record: dict[str, Any], field_name: str, value: str, condition: str) -> bool:
    have = record.get(field_name)
    text = "" if have is None else str(have)
    if condition == "eq":
        return text == value
    if condition == "neq":
        return text != value
    if condition in ("in", "nin"):
        inside = text in value.split(",")
        return inside if condition == "in" else not inside
    if condition == "like":
        return re.fullmatch(re.escape(value).replace("%", ".*"), text) is not None
    if condition == "null":
        return have is None
    if condition == "notnull":
        return have is not None
    if have is None:
        return False
    left: Any = have if isinstance(have, (int, float)) and not isinstance(have, bool) else text
    right: Any = value
    if isinstance(left, (int, float)):
        try:
            right = float(value)
        except ValueError:
            return False
    comparisons = {"gt": left > right, "gteq": left >= right, "from": left >= right, "lt": left < right,
                   "lteq": left <= right, "to": left <= right}
    if condition not in comparisons:
        raise MagentoError(400, 'Invalid condition type "%1"', condition)
    return comparisons[condition]


def search(request: httpx.Request, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchCriteria query over `records`: filter groups ANDed, filters in a group ORed, sorted, paged; a page
    past the last repeats the last page."""
    params = request.url.params
    groups: dict[str, dict[str, dict[str, str]]] = {}
    sorts: dict[str, dict[str, str]] = {}
    for key, value in params.multi_items():
        found = re.fullmatch(r"searchCriteria\[filter_?[gG]roups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]", key)
        if found:
            groups.setdefault(found[1], {}).setdefault(found[2], {})[found[3]] = value
            continue
        found = re.fullmatch(r"searchCriteria\[sort_?[oO]rders\]\[(\d+)\]\[(\w+)\]", key)
        if found:
            sorts.setdefault(found[1], {})[found[2]] = value
    size = _int(params.get("searchCriteria[pageSize]", "20"), "pageSize")
    current = _int(params.get("searchCriteria[currentPage]", "1"), "currentPage")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise MagentoError(400, "Maximum value for pageSize is %1", MAX_PAGE_SIZE)
    chosen = [r for r in records if all(
        any(_matches(r, f.get("field", ""), f.get("value", ""), f.get("conditionType", "eq")) for f in group.values())
        for group in groups.values())]
    for order in reversed([sorts[k] for k in sorted(sorts, key=int)]):
        name = order.get("field", "")
        chosen.sort(key=lambda r: (r.get(name) is None, str(r.get(name)) if not isinstance(r.get(name), (int, float))
                                   else f"{r.get(name):020.4f}"), reverse=order.get("direction", "ASC") == "DESC")
    last = max(1, -(-len(chosen) // size))
    page = min(current, last)  # Magento's quirk: a page past the end answers the last page again
    criteria: dict[str, Any] = {"filter_groups": [{"filters": [
        {"field": f.get("field", ""), "value": f.get("value", ""), "condition_type": f.get("conditionType", "eq")}
        for f in group.values()]} for group in groups.values()], "page_size": size, "current_page": current}
    if sorts:
        criteria["sort_orders"] = [{"field": s.get("field", ""), "direction": s.get("direction", "ASC")}
                                   for s in sorts.values()]
    return {"items": chosen[(page - 1) * size:page * size], "search_criteria": criteria, "total_count": len(chosen)}


@dataclass
class MagentoEmulator(Emulator):
    n_returns: int = 60
    edition: str = "commerce"
    token_ttl: float = 4 * 3600.0
    applied: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int | None) -> MagentoEmulator:
        return cls(seed=seed) if returns is None else cls(seed=seed, n_returns=max(10, returns))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = MagentoData(seed=self.seed, size=self.n_returns)
        self.orders, self.rmas, self.creditmemos = self.data.orders, self.data.rmas, self.data.creditmemos
        self._extra = 90_000

    # --- every request ------------------------------------------------------------------------

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/integration/admin/token") or self.bearer_ok(request):
            return None
        return self.json_response(401, {"message": "The consumer isn't authorized to access %resources.",
                                        "parameters": [{"resources": "Magento_Sales::actions_view"}]})

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.json_response(404, {"message": "Request does not match any route."})

    def malformed_body(self) -> bytes:
        return b'{"items": [{"increment_id": "000000100", "entity_id": 100, "date_requested": '

    @route("POST", PREFIX + "/integration/admin/token")
    @answers
    def admin_token(self, request: httpx.Request, store: str) -> httpx.Response:
        body = _body(request)
        if body.get("username") != SANDBOX_USERNAME or body.get("password") != SANDBOX_PASSWORD:
            raise MagentoError(401, "The account sign-in was incorrect or your account is disabled temporarily. "
                                    "Please wait and try again later.")
        return self.json_response(200, self.issue_token(self.token_ttl))

    # --- RMAs (Adobe Commerce) ----------------------------------------------------------------

    @route("GET", PREFIX + "/returns")
    @answers
    def list_rmas(self, request: httpx.Request, store: str) -> httpx.Response:
        with self.lock:
            return self.json_response(200, search(request, list(self.rmas.values())))

    @route("POST", PREFIX + "/returns")
    @answers
    def create_rma(self, request: httpx.Request, store: str) -> httpx.Response:
        """A new RMA on an order: its items name the order's items (at most what was ordered), status pending."""
        sent = _body(request).get("rmaDataObject")
        if not isinstance(sent, dict):
            raise MagentoError(400, '"%1" is required. Enter and try again.', "rmaDataObject")
        with self.lock:
            order = self.orders.get(_int(sent.get("order_id"), "order_id"))
            if order is None:
                raise MagentoError(404, "No such entity with %1 = %2", "orderId", sent.get("order_id"))
            by_id = {item["item_id"]: item for item in order["items"]}
            items = [i for i in sent.get("items") or [] if isinstance(i, dict)]
            if not items:
                raise MagentoError(400, "Please select items to return.")
            self._extra += 1
            number = self._extra
            made = []
            for item in items:
                ordered = by_id.get(item.get("order_item_id"))
                qty = item.get("qty_requested")
                if ordered is None:
                    raise MagentoError(400, "No such entity with %1 = %2", "orderItemId", item.get("order_item_id"))
                if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= ordered["qty_ordered"]:
                    raise MagentoError(400, "A quantity of %1 is greater than you can return.", ordered["sku"])
                made.append({"entity_id": self.data.next_id("rma_item"), "rma_entity_id": number,
                             "order_item_id": ordered["item_id"], "qty_requested": qty, "qty_authorized": 0,
                             "qty_approved": 0, "qty_returned": 0, "reason": str(item.get("reason") or ""),
                             "condition": str(item.get("condition") or ""),
                             "resolution": str(item.get("resolution") or ""), "status": "pending"})
            now = _now()
            comments = [{"comment": str(c.get("comment")), "rma_entity_id": number, "created_at": now,
                         "entity_id": self.data.next_id("comment"), "customer_notified": False,
                         "visible_on_front": bool(c.get("visible_on_front")), "status": "pending", "admin": True}
                        for c in sent.get("comments") or [] if isinstance(c, dict) and c.get("comment")]
            rma = {"increment_id": f"{number:09d}", "entity_id": number, "order_id": order["entity_id"],
                   "order_increment_id": order["increment_id"], "store_id": order["store_id"], "customer_id": 0,
                   "date_requested": now, "customer_custom_email": str(sent.get("customer_custom_email") or ""),
                   "items": made, "status": "pending", "comments": comments, "tracks": []}
            self.rmas[number] = rma
            return self.json_response(200, rma)

    @route("GET", PREFIX + "/returns/{rma_id}")
    @answers
    def get_rma(self, request: httpx.Request, store: str, rma_id: str) -> httpx.Response:
        with self.lock:
            return self.json_response(200, self._rma(rma_id))

    @route("PUT", PREFIX + "/returns/{rma_id}")
    @answers
    def save_rma(self, request: httpx.Request, store: str, rma_id: str) -> httpx.Response:
        """Save an RMA: the items' statuses and quantities change; the RMA's status follows from them."""
        sent = _body(request).get("rmaDataObject")
        if not isinstance(sent, dict):
            raise MagentoError(400, '"%1" is required. Enter and try again.', "rmaDataObject")
        with self.lock:
            rma = self._rma(rma_id)
            if rma["status"] in CLOSED:
                raise MagentoError(400, "The return %1 is closed and cannot be changed.", rma["increment_id"])
            by_id = {item["entity_id"]: item for item in rma["items"]}
            changes = []
            for item in sent.get("items") or []:
                stored = by_id.get(item.get("entity_id")) if isinstance(item, dict) else None
                if stored is None:
                    raise MagentoError(400, "No such entity with %1 = %2", "itemId", str(obj_id(item)))
                status = item.get("status")
                if status not in ITEM_STATUSES:
                    raise MagentoError(400, "Invalid status %1 for item %2", status, stored["entity_id"])
                for name in ("qty_authorized", "qty_approved", "qty_returned"):
                    qty = item.get(name, stored[name])
                    if not isinstance(qty, int) or isinstance(qty, bool) or not 0 <= qty <= stored["qty_requested"]:
                        raise MagentoError(400, "The quantity %1 of item %2 is not valid.", name, stored["entity_id"])
                changes.append((stored, item))
            for stored, item in changes:
                if item["status"] != stored["status"]:
                    self.applied.append((item["status"], str(rma["entity_id"]), str(stored["entity_id"])))
                for name in ("status", "qty_authorized", "qty_approved", "qty_returned", "resolution", "condition"):
                    if name in item and item[name] is not None:
                        stored[name] = item[name]
            rma["status"] = rma_status([i["status"] for i in rma["items"]])
            return self.json_response(200, rma)

    @route("GET", PREFIX + "/returns/{rma_id}/comments")
    @answers
    def rma_comments(self, request: httpx.Request, store: str, rma_id: str) -> httpx.Response:
        with self.lock:
            comments = self._rma(rma_id)["comments"]
            return self.json_response(200, {"items": comments, "search_criteria": {"filter_groups": []},
                                            "total_count": len(comments)})

    @route("POST", PREFIX + "/returns/{rma_id}/comments")
    @answers
    def add_rma_comment(self, request: httpx.Request, store: str, rma_id: str) -> httpx.Response:
        data = _body(request).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("comment"), str) or not data["comment"].strip():
            raise MagentoError(400, '"%1" is required. Enter and try again.', "comment")
        with self.lock:
            rma = self._rma(rma_id)
            rma["comments"].append({
                "comment": data["comment"], "rma_entity_id": rma["entity_id"], "created_at": _now(),
                "entity_id": self.data.next_id("comment"), "customer_notified": bool(data.get("customer_notified")),
                "visible_on_front": bool(data.get("visible_on_front")), "status": rma["status"], "admin": True})
            self.applied.append(("comment", str(rma["entity_id"])))
            return self.json_response(200, True)

    @route("GET", PREFIX + "/returnsAttributeMetadata/{code}")
    @answers
    def attribute(self, request: httpx.Request, store: str, code: str) -> httpx.Response:
        options = {"reason": REASONS, "condition": CONDITIONS, "resolution": RESOLUTIONS}.get(code)
        if options is None:
            raise MagentoError(404, "No such entity with %1 = %2, %3 = %4", "entityType", "rma_item", "attributeCode",
                               code)
        return self.json_response(200, {
            "frontend_input": "select", "input_filter": "", "store_label": code.title(), "validation_rules": [],
            "multiline_count": 0, "visible": True, "required": True, "data_model": "",
            "options": [{"label": name, "value": value} for value, name in options.items()], "frontend_class": "",
            "user_defined": False, "sort_order": 10, "frontend_label": code.title(), "note": "", "system": True,
            "backend_type": "int", "attribute_code": code})

    # --- orders and credit memos --------------------------------------------------------------

    @route("GET", PREFIX + "/orders")
    @answers
    def list_orders(self, request: httpx.Request, store: str) -> httpx.Response:
        with self.lock:
            return self.json_response(200, search(request, list(self.orders.values())))

    @route("GET", PREFIX + "/creditmemos")
    @answers
    def list_creditmemos(self, request: httpx.Request, store: str) -> httpx.Response:
        with self.lock:
            return self.json_response(200, search(request, list(self.creditmemos.values())))

    @route("POST", PREFIX + "/order/{order_id}/refund")
    @answers
    def refund(self, request: httpx.Request, store: str, order_id: str) -> httpx.Response:
        """An offline credit memo of the items named (a configurable product through its parent line)."""
        body = _body(request)
        with self.lock:
            order = self.orders.get(_int(order_id, "orderId"))
            if order is None:
                raise MagentoError(404, "The entity that was requested doesn't exist. Verify the entity and try "
                                        "again.")
            by_id = {item["item_id"]: item for item in order["items"]}
            quantities: dict[int, int] = {}
            for line in body.get("items") or []:
                item = by_id.get(line.get("order_item_id")) if isinstance(line, dict) else None
                qty = line.get("qty") if isinstance(line, dict) else None
                if item is None or item.get("parent_item_id"):
                    raise MagentoError(400, "The creditmemo contains an item %1 this order cannot refund.",
                                       obj_id(line, "order_item_id"))
                if not isinstance(qty, (int, float)) or qty <= 0 or qty > item["qty_invoiced"] - item["qty_refunded"]:
                    raise MagentoError(400, "The most money available to refund is %1.", item["qty_invoiced"]
                                       - item["qty_refunded"])
                quantities[item["item_id"]] = int(qty)
            if not quantities:
                raise MagentoError(400, "You can't create a creditmemo without products.")
            arguments = body.get("arguments") if isinstance(body.get("arguments"), dict) else {}
            stock = set((arguments.get("extension_attributes") or {}).get("return_to_stock_items") or [])
            comment = (body.get("comment") or {}).get("comment") if isinstance(body.get("comment"), dict) else None
            memo = self.data.refund(order, quantities, _now(), comment or "", to_stock=bool(stock))
            for item_id, qty in quantities.items():
                self.applied.append(("refund" if item_id in stock else "refund_keep", str(order["entity_id"]),
                                     str(item_id), str(qty)))
            return self.json_response(200, memo["entity_id"])

    @route("GET", PREFIX + "/orders/{order_id}/comments")
    @answers
    def order_comments(self, request: httpx.Request, store: str, order_id: str) -> httpx.Response:
        with self.lock:
            order = self.orders.get(_int(order_id, "id"))
            if order is None:
                raise MagentoError(404, "The entity that was requested doesn't exist. Verify the entity and try "
                                        "again.")
            return self.json_response(200, {"items": order["status_histories"], "search_criteria":
                                            {"filter_groups": []}, "total_count": len(order["status_histories"])})

    def _rma(self, rma_id: str) -> dict[str, Any]:
        rma = self.rmas.get(_int(rma_id, "id"))
        if rma is None:
            raise MagentoError(404, "No such entity with %fieldName = %fieldValue", fieldName="entity_id",
                               fieldValue=rma_id)
        return rma

    # --- hooks of the suites ------------------------------------------------------------------

    def held_returns(self) -> dict[str, str]:
        """key → RMA id of every RMA retsync made on the hold order (the key is in its first comment)."""
        with self.lock:
            found = {}
            for rma in self.rmas.values():
                if rma["order_id"] != HOLD_ORDER_ID:
                    continue
                for comment in rma["comments"]:
                    key = re.search(r"\[retsync ([^\]\s]+)\]", comment["comment"])
                    if key:
                        found[key[1]] = str(rma["entity_id"])
                        break
            return found

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """The merchant in the Magento admin: the held RMA's items set to what `kind` means, the note a comment."""
        status, resolution = {"accept": ("authorized", None), "reject": ("denied", None),
                              "repair": ("approved", "21"), "exchange": ("approved", "4"),
                              "keep": ("approved", "5"), "cancel": ("denied", None)}[kind]
        with self.lock:
            rma = self.rmas[int(reference)]
            for item in rma["items"]:
                item["status"] = status
                item["qty_authorized"] = item["qty_requested"] if status != "denied" else 0
                if status == "approved":
                    item["qty_approved"] = item["qty_returned"] = item["qty_requested"]
                if resolution:
                    item["resolution"] = resolution
            rma["status"] = rma_status([i["status"] for i in rma["items"]])
            if note:
                rma["comments"].append({"comment": note, "rma_entity_id": rma["entity_id"], "created_at": _now(),
                                        "entity_id": self.data.next_id("comment"), "customer_notified": False,
                                        "visible_on_front": False, "status": rma["status"], "admin": True})

    def acts_applied(self) -> list[tuple[str, ...]]:
        with self.lock:
            return list(self.applied)

    def _new_rma(self, status: str, **item_changes: Any) -> dict[str, Any]:
        self._extra += 1
        number = self._extra
        order = self.data._order(self.data.rng("extra", number), number, lines=1, configurable=False)
        self.orders[number] = order
        line = bought(order)[0]
        item = {"entity_id": self.data.next_id("rma_item"), "rma_entity_id": number, "order_item_id": line["item_id"],
                "qty_requested": 1, "qty_authorized": 0, "qty_approved": 0, "qty_returned": 0, "reason": "10",
                "condition": "12", "resolution": "5", "status": status, **item_changes}
        rma = {"increment_id": f"{number:09d}", "entity_id": number, "order_id": number,
               "order_increment_id": order["increment_id"], "store_id": 1, "customer_id": 0, "date_requested": _now(),
               "customer_custom_email": order["customer_email"], "items": [item], "status": status, "comments": [],
               "tracks": []}
        self.rmas[number] = rma
        return rma

    def add_odd_return(self) -> str:
        """An RMA in a status a module added, with an option id the metadata does not list."""
        with self.lock:
            rma = self._new_rma("awaiting_inspection_v2", reason="9999", condition="", resolution="")
            rma["customer_custom_email"] = ""
            return str(rma["entity_id"])

    def add_poison_return(self, poison: str = "quantity") -> str:
        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}; one of {', '.join(self.POISONS)}")
        with self.lock:
            rma = self._new_rma("pending")
            if poison == "quantity":
                rma["items"][0]["qty_requested"] = POISON_QUANTITY
            else:
                address = self.orders[rma["order_id"]]["billing_address"]
                address.update(postcode=POISON_POSTCODE, telephone=POISON_PHONE)
            return str(rma["entity_id"])

    def rma_copy(self, rma_id: int) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.rmas[rma_id])


def obj_id(value: Any, key: str = "entity_id") -> Any:
    return value.get(key) if isinstance(value, dict) else value
