"""A PrestaShop shop's webservice (`/api/`), seeded and stateful, as `shared/specs/prestashop/NOTES.md` describes it.

JSON answers with `output_format=JSON` (XML otherwise), the key as basic-auth user, list options
(`display`, `filter[field]=[a|b]` / `[from,to]` with `date=1` for dates, `sort`, `limit=offset,N`, no total),
error bodies `{"errors": [{"code", "message"}]}` with WebserviceRequest's codes, XML input bodies only (a JSON
body is "XML error", 500, code 127, as `saveEntityFromXml` answers), PUT replacing the whole object. JSON keys are
the classes' node names (`NODE_NAMES`: a list of credit slips is `order_slips`), a list with no match is a bare
`[]`, and `overrideContent`'s `array_filter` leaves a single object's empty fields out. Version 9
has `order_returns`; 8 answers it with "resource does not exist". Merchandise-return states are the stock ids
1–5 plus one the merchant added (6), which retsync has no meaning for. Order 1 (customer 41 "Marketplace
Returns") is the order the merchant made for held marketplace returns (`hold_order_id`). An order POST runs
through a payment module with a real cart, as `Order::addWs` does, so one without is refused. Every write is
logged in `applied`, and `acts_applied` names what each decision act did. The seeded data is `sandbox_data`'s.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree

import httpx

from retsync.kit.emulator import Emulator, TruncateBody, route
from retsync_connectors.prestashop.sandbox_data import (
    HOLD_ORDER_ID,
    ORDER_STATES,
    PAYMENT_MODULES,
    RESOURCES_9,
    seeded_shop,
    shop_time,
)

SANDBOX_KEY = "PSWSKEY7Q2M9X4C8V1B6N3Z5L0K2J8H4"
"""32 characters, as the back office generates them."""
SANDBOX_ADMIN_CLIENT = "retsync-sandbox"
SANDBOX_ADMIN_SECRET = "adm1n-api-s3cret-0f6b2e9d"
ADMIN_PREFIX = "/admin-api"
DATE_FIELDS = {"date_add", "date_upd", "delivery_date", "invoice_date"}
STAMPS = {"date_add", "date_upd"}
"""`manageFilters` takes these two as filters only with `date=1`."""
NODE_NAMES: dict[str, tuple[str, str]] = {
    "addresses": ("address", "addresses"),  # Address::$webserviceParameters objectsNodeName
    "carriers": ("carrier", "carriers"),  # table carrier
    "carts": ("cart", "carts"),  # table cart
    "currencies": ("currency", "currencies"),  # Currency::$webserviceParameters objectsNodeName; table currency
    "customers": ("customer", "customers"),  # table customer
    "customer_messages": ("customer_message", "customer_messages"),  # table customer_message
    "customer_threads": ("customer_thread", "customer_threads"),  # table customer_thread
    "order_details": ("order_detail", "order_details"),  # table order_detail
    "order_histories": ("order_history", "order_histories"),  # OrderHistory objectsNodeName; table order_history
    "order_returns": ("order_return", "order_returns"),  # table order_return (PrestaShop 9, PR #33675)
    "order_slip": ("order_slip", "order_slips"),  # OrderSlip::$webserviceParameters: the resource is not the key
    "order_states": ("order_state", "order_states"),  # OrderState objectsNodeName; table order_state
    "orders": ("order", "orders"),  # Order::$webserviceParameters
    "products": ("product", "products"),  # Product objectsNodeName
}
"""Resource -> (objectNodeName, objectsNodeName): the class's `$webserviceParameters`, else
`ObjectModel::getWebserviceParameters`'s defaults (the table name, and the table name + "s")."""
ASSOCIATION_ITEMS = {"order_slip_details": "order_slip_detail", "order_rows": "order_row"}
RETURN_STATES = {1: "Waiting for confirmation", 2: "Waiting for package", 3: "Package received",
                 4: "Return denied", 5: "Return completed", 6: "Exchange offered"}
"""1–5 as installed; 6 a state the merchant added in BO → Orders → Statuses."""
PANEL_RETURN_STATES = {"accept": 2, "reject": 4}
"""What the held_decision_states default maps back: Waiting for package = accept, Return denied = reject."""


class PsError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class PrestaShopEmulator(Emulator):
    """A shop of `n_orders` orders; about a fifth of the delivered ones have a merchandise return or a slip."""

    n_orders: int = 180
    days: int = 120
    version: str = "9.0.0"
    applied: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def sized(cls, seed: int, returns: int, version: str = "9.0.0") -> PrestaShopEmulator:
        return cls(seed=seed, n_orders=max(40, returns * 5), version=version)

    @property
    def has_order_returns(self) -> bool:
        return int(self.version.split(".")[0]) >= 9

    def __post_init__(self) -> None:
        super().__post_init__()
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.shop = seeded_shop(self.seed, self.n_orders, self.days, self.now)
        self.tables = self.shop.tables
        self._clock = self.now - timedelta(days=self.days)
        self._lose: list[tuple[str, str]] = []

    def _tick(self, moment: datetime | None = None) -> str:
        """Live changes are stamped strictly after every earlier one, as a shop's clock would."""
        moment = moment or max(datetime.now(timezone.utc), self._clock + timedelta(seconds=1))
        self._clock = max(self._clock, moment)
        return shop_time(moment)

    # --- HTTP plumbing ---------------------------------------------------------------------

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

    def lose_answer(self, method: str, path_suffix: str) -> None:
        """The next matching request is applied but its answer never arrives (a proxy timeout after the write)."""
        with self.lock:
            self._lose.append((method.upper(), path_suffix))

    def _resources(self) -> tuple[str, ...]:
        return RESOURCES_9 if self.has_order_returns else tuple(r for r in RESOURCES_9 if r != "order_returns")

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith(ADMIN_PREFIX):
            if request.url.path == ADMIN_PREFIX + "/access_token" or self.bearer_ok(request):
                return None
            return self.json_response(401, {"error": "access_denied", "error_description": "The resource owner or "
                                            "authorization server denied the request.", "hint": "Access token could "
                                            "not be verified", "message": "The resource owner or authorization "
                                            "server denied the request."})
        header = request.headers.get("authorization", "")
        key = request.url.params.get("ws_key")
        if header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:].strip()).decode().partition(":")[0]
            except ValueError:
                key = None
        # WebserviceRequest::authenticate: codes 16 (no key), 17 (empty), 18 (not 32 characters), 20 (no such
        # active key); each with the WWW-Authenticate challenge
        if key is None:
            error = PsError(401, 16, "Please enter the authentication key as the login. No password required")
        elif not key:
            error = PsError(401, 17, "Authentication key is empty")
        elif len(key) != 32:
            error = PsError(401, 18, "Invalid authentication key format")
        elif key != SANDBOX_KEY:
            error = PsError(401, 20, "Authentification key is not active")
        else:
            return None
        return self._error(request, error, {"WWW-Authenticate": 'Basic realm="Welcome to PrestaShop Webservice, '
                                            'please enter the authentication key as the login. No password '
                                            'required."'})

    @staticmethod
    def _json_out(request: httpx.Request) -> bool:
        params, headers = request.url.params, request.headers
        return "JSON" in (params.get("output_format", ""), params.get("io_format", ""),
                          headers.get("output-format", ""), headers.get("io-format", ""))

    def _error(self, request: httpx.Request, error: PsError, headers: dict[str, str] | None = None) -> httpx.Response:
        if self._json_out(request):
            return self.json_response(error.status, {"errors": [{"code": error.code, "message": error.message}]},
                                      **(headers or {}))
        root = ElementTree.Element("prestashop")
        node = ElementTree.SubElement(ElementTree.SubElement(root, "errors"), "error")
        ElementTree.SubElement(node, "code").text = str(error.code)
        ElementTree.SubElement(node, "message").text = error.message
        return httpx.Response(error.status, content=ElementTree.tostring(root, xml_declaration=True,
                                                                         encoding="UTF-8"),
                              headers={"content-type": "text/xml;charset=utf-8", **(headers or {})})

    def _answer(self, request: httpx.Request, status: int, body: Any) -> httpx.Response:
        if self._json_out(request):
            return self.json_response(status, _array_filtered(body))
        root = ElementTree.Element("prestashop")
        _xml_into(root, body)
        return httpx.Response(status, content=ElementTree.tostring(root, xml_declaration=True, encoding="UTF-8"),
                              headers={"content-type": "text/xml;charset=utf-8"})

    def not_found(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/api/").split("/")[0]
        return self._error(request, self._no_such_resource(name))

    def _no_such_resource(self, name: str) -> PsError:
        """`checkResource`: 400, code 27, with `setErrorDidYouMean`'s list of every resource."""
        return PsError(400, 27, f'Resource of type "{name}" does not exists. Did you mean: "orders"? '
                       f'The full list is: "{", ".join(self._resources())}"')

    def malformed_body(self) -> bytes:
        return b'<br />\n<b>Warning</b>: Undefined array key "id_order" in /var/www/classes/order/Order.php{"orders":[{"id":'

    def wrong_shape_body(self) -> Any:
        return {"prestashop": {"unexpected": "shape"}}

    def _resource(self, name: str) -> dict[int, dict[str, Any]]:
        if name not in self._resources():
            raise self._no_such_resource(name)
        return self.tables[name]

    def _guarded(self, request: httpx.Request, action: Any) -> httpx.Response:
        try:
            with self.lock:
                status, body = action()
            return self._answer(request, status, body)
        except PsError as error:
            return self._error(request, error)

    # --- reading ---------------------------------------------------------------------------

    def _filtered(self, table: dict[int, dict[str, Any]], params: httpx.QueryParams) -> list[dict[str, Any]]:
        entries = list(table.values())
        dates = params.get("date") == "1"
        for key, value in params.multi_items():
            if not (key.startswith("filter[") and key.endswith("]")):
                continue
            name = key[7:-1]
            known = set(next(iter(table.values()), {}))
            if (name in STAMPS and not dates) or (known and name not in known):
                # manageFilters: date_add/date_upd are filters only with date=1; anything else unknown is code 32
                raise PsError(400, 32, f'This filter does not exist. Did you mean: "id"? The full list is: '
                              f'"{", ".join(sorted(known - (set() if dates else STAMPS)))}"')
            starts, ends = value.startswith("%["), value.endswith("]%")
            if starts or ends:  # `[Jo]%` begins, `%[hn]` ends, `%[oh]%` contains
                inner = value[2 if starts else 1:-2 if ends else -1]
                if not value[1 if starts else 0] == "[" or value[-2 if ends else -1] != "]":
                    raise PsError(400, 36, f"Unsupported filter {value!r} on {name}")
                folded = inner.casefold()
                entries = [e for e in entries if (
                    folded in str(e.get(name, "")).casefold() if starts and ends else
                    str(e.get(name, "")).casefold().endswith(folded) if starts else
                    str(e.get(name, "")).casefold().startswith(folded))]
                continue
            if not (value.startswith("[") and value.endswith("]")):
                raise PsError(400, 36, f"Unsupported filter {value!r} on {name}")
            inner = value[1:-1]
            if "," in inner:
                low, _, high = inner.partition(",")
                entries = [e for e in entries if low <= str(e.get(name)) <= high] if name in DATE_FIELDS else \
                    [e for e in entries if _num(low) <= _num(e.get(name)) <= _num(high)]
            else:
                wanted = set(inner.split("|"))
                entries = [e for e in entries if str(e.get(name)) in wanted]
        sort = params.get("sort")
        if sort:
            keys = [part.strip() for part in sort.strip("[]").split(",") if part.strip()]
            known = set(next(iter(table.values()), {}))
            for part in reversed(keys):
                name, _, direction = part.rpartition("_")
                if not name or direction.upper() not in ("ASC", "DESC"):
                    raise PsError(400, 37, 'The "sort" value has to be formed as this example: "field_ASC" or '
                                  "'[field_1_DESC,field_2_ASC,field_3_ASC,...]' (\"field\" has to be an available "
                                  "field)")
                if known and name not in known:
                    raise PsError(400, 38, "Unable to filter by this field. However, these are available: "
                                  + ", ".join(sorted(known)))
                entries.sort(key=lambda e, n=name: _num(e[n]) if n == "id" else str(e[n]),
                             reverse=direction.upper() == "DESC")
        else:
            entries.sort(key=lambda e: int(e["id"]))
        limit = params.get("limit")
        if limit:
            parts = limit.split(",")
            if len(parts) > 2:
                raise PsError(400, 39, 'The "limit" value has to be formed as this example: "5,25" or "10"')
            start, count = (0, _php_int(parts[0])) if len(parts) == 1 else (_php_int(parts[0]), _php_int(parts[1]))
            entries = entries[start:start + count]
        return entries

    @staticmethod
    def _display_fields(table: dict[int, dict[str, Any]], display: str | None) -> list[str] | None:
        """`setFieldsToDisplay`: full, or `[a,b]` of known fields (code 35), else the syntax error (code 36)."""
        if display is None or display in ("full", "minimum"):
            return None
        if not (display.startswith("[") and display.endswith("]")):
            raise PsError(400, 36, "The 'display' syntax is wrong. You can set 'full' or "
                          "'[field_1,field_2,field_3,...]'.")
        names = [n.strip() for n in display[1:-1].split(",") if n.strip()]
        known = set(next(iter(table.values()), {}))
        for name in names:
            if known and name not in known:
                raise PsError(400, 35, f'Unable to display this field "{name}". However, these are available: '
                              + ", ".join(sorted(known)))
        return names

    @staticmethod
    def _displayed(entry: dict[str, Any], display: str | None, names: list[str] | None) -> dict[str, Any]:
        if display == "full":
            return entry
        if names is not None:
            return {n: entry[n] for n in names if n in entry}
        return {"id": entry["id"]}

    @route("GET", "/api/{resource}")
    def list_resource(self, request: httpx.Request, resource: str) -> httpx.Response:
        def act() -> tuple[int, Any]:
            table = self._resource(resource)
            entries = self._filtered(table, request.url.params)
            display = request.url.params.get("display")
            names = self._display_fields(table, display)
            if not entries:
                return 200, []  # nothing renders a node: WebserviceOutputJSON's content stays an empty array
            return 200, {NODE_NAMES[resource][1]: [self._displayed(e, display, names) for e in entries]}

        return self._guarded(request, act)

    @route("GET", "/api/{resource}/{record_id}")
    def get_resource(self, request: httpx.Request, resource: str, record_id: str) -> httpx.Response:
        try:
            with self.lock:
                entry = self._resource(resource).get(int(record_id)) if record_id.isdigit() else None
        except PsError as error:
            return self._error(request, error)
        if entry is None:  # getFilteredObjectDetails: status 404, output disabled, so no body at all
            return httpx.Response(404)
        return self._answer(request, 200, {NODE_NAMES[resource][0]: entry})

    # --- writing ---------------------------------------------------------------------------

    @staticmethod
    def _xml(request: httpx.Request, resource: str) -> dict[str, Any]:
        """`saveEntityFromXml`: the body goes to `new SimpleXMLElement` (a JSON body too, which it cannot parse:
        500, code 127); the entity is the root's child, whatever its name."""
        content = request.content or b""
        try:
            root = ElementTree.fromstring(content)
        except ElementTree.ParseError:
            raise PsError(500, 127, "XML error : String could not be parsed as XML\nXML length : "
                          f"{len(content)}\nOriginal XML : {content.decode('utf-8', 'replace')}") from None
        node = next(iter(root), None)
        if node is None:
            node = ElementTree.Element(NODE_NAMES[resource][0])
        fields: dict[str, Any] = {}
        for child in node:
            if child.tag == "associations":
                fields["associations"] = {group.tag: [{f.tag: (f.text or "") for f in item} for item in group]
                                          for group in child}
            else:
                fields[child.tag] = child.text or ""
        return fields

    @staticmethod
    def _require(fields: dict[str, Any], names: tuple[str, ...], resource: str) -> None:
        for name in names:
            if str(fields.get(name, "")).strip() == "":
                raise PsError(400, 41, f"parameter \"{name}\" required")

    @route("POST", "/api/{resource}")
    def create_resource(self, request: httpx.Request, resource: str) -> httpx.Response:
        def act() -> tuple[int, Any]:
            table = self._resource(resource)
            fields = self._xml(request, resource)
            creator = getattr(self, f"_create_{resource}", None)
            if creator is None:
                raise PsError(405, 25, f"Method POST is not allowed for the resource {resource} with this "
                              "authentication key")
            if str(fields.get("id", "")).strip():
                raise PsError(400, 91, "id is forbidden when adding a new resource")
            entry = creator(fields)
            table[entry["id"]] = entry
            self.applied.append({"kind": "create", "resource": resource, "id": entry["id"], "fields": fields})
            return 201, {NODE_NAMES[resource][0]: entry}

        return self._guarded(request, act)

    @route("PUT", "/api/{resource}/{record_id}")
    def update_resource(self, request: httpx.Request, resource: str, record_id: str) -> httpx.Response:
        def act() -> tuple[int, Any]:
            table = self._resource(resource)
            if resource != "order_returns":
                raise PsError(405, 25, f"Method PUT is not allowed for the resource {resource} with this "
                              "authentication key")
            fields = self._xml(request, resource)
            if not str(fields.get("id", "")).strip():
                raise PsError(400, 90, "id is required when modifying a resource")
            entry = table.get(int(fields["id"])) if str(fields["id"]).isdigit() else None
            if entry is None or str(fields["id"]) != record_id:
                raise PsError(404, 92, "Invalid ID")
            self._require(fields, ("id_customer", "id_order"), resource)
            state = int(fields.get("state") or 0)
            if state not in RETURN_STATES:
                raise _invalid(f"Property OrderReturn->state is not valid ({fields.get('state')})")
            before = entry["state"]
            entry.update({"id_customer": int(fields["id_customer"]), "id_order": int(fields["id_order"]),
                          "question": fields.get("question", ""), "state": state, "date_upd": self._tick()})
            self.applied.append({"kind": "state", "order_return": entry["id"], "from": before, "to": state})
            return 200, {NODE_NAMES[resource][0]: entry}

        return self._guarded(request, act)

    def _create_order_slip(self, fields: dict[str, Any]) -> dict[str, Any]:
        self._require(fields, ("id_customer", "id_order", "conversion_rate", "total_products_tax_excl",
                               "total_products_tax_incl", "total_shipping_tax_excl", "total_shipping_tax_incl"),
                      "order_slip")
        order = self.tables["orders"].get(int(fields["id_order"]))
        if order is None:
            raise _invalid(f"Property OrderSlip->id_order is not valid ({fields['id_order']})")
        details = {d["id"]: d for d in self.shop.details(order["id"])}
        lines = []
        for row in (fields.get("associations") or {}).get("order_slip_details", []):
            detail = details.get(int(row.get("id_order_detail") or 0))
            quantity = int(row.get("product_quantity") or 0)
            if detail is None:
                raise _invalid(f"order_detail {row.get('id_order_detail')} is not in order {order['id']}")
            if quantity > int(detail["product_quantity"]) - int(detail["product_quantity_refunded"]):
                raise _invalid(f"Cannot refund {quantity} of {detail['product_name']}: only "
                              f"{int(detail['product_quantity']) - int(detail['product_quantity_refunded'])} left")
            lines.append((detail, quantity))
        for detail, quantity in lines:
            detail["product_quantity_refunded"] = str(int(detail["product_quantity_refunded"]) + quantity)
        moment = datetime.fromisoformat(self._tick()).replace(tzinfo=timezone.utc)
        return self.shop.slip(order, lines, moment)

    def _create_order_histories(self, fields: dict[str, Any]) -> dict[str, Any]:
        self._require(fields, ("id_order", "id_order_state"), "order_histories")
        order = self.tables["orders"].get(int(fields["id_order"]))
        if order is None or int(fields["id_order_state"]) not in ORDER_STATES:
            raise _invalid("Property OrderHistory->id_order or id_order_state is not valid")
        order["current_state"] = int(fields["id_order_state"])
        order["date_upd"] = self._tick()
        return {"id": self.shop.next_id("order_histories"), "id_order": order["id"], "id_employee": 0,
                "id_order_state": order["current_state"], "date_add": order["date_upd"]}

    def _create_orders(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`Order::addWs`: the posted cart goes through the payment module's validateOrder (not modelled here:
        this shop has no carts over the webservice), so an order without a real cart and module is refused."""
        self._require(fields, ("id_cart", "module"), "orders")
        if fields["module"] not in PAYMENT_MODULES:
            raise PsError(500, 91, f"Module {fields['module']!r} is not an installed payment module "
                          "(validateOrder on null)")
        raise _invalid(f"Property Order->id_cart is not valid ({fields['id_cart']}): no such cart")

    def _create_order_returns(self, fields: dict[str, Any]) -> dict[str, Any]:
        self._require(fields, ("id_customer", "id_order"), "order_returns")
        order = self.tables["orders"].get(int(fields["id_order"])) if str(fields["id_order"]).isdigit() else None
        if order is None:
            raise _invalid(f"Property OrderReturn->id_order is not valid ({fields['id_order']})")
        if str(order["id_customer"]) != str(fields["id_customer"]):
            raise _invalid(f"Property OrderReturn->id_customer is not valid ({fields['id_customer']})")
        state = int(fields.get("state") or 0) if str(fields.get("state") or "0").isdigit() else 0
        if state not in RETURN_STATES:
            raise _invalid(f"Property OrderReturn->state is not valid ({fields.get('state')})")
        moment = self._tick()
        return {"id": self.shop.next_id("order_returns"), "id_customer": order["id_customer"], "id_order": order["id"],
                "question": fields.get("question", ""), "state": state, "date_add": moment, "date_upd": moment}

    def _create_customer_threads(self, fields: dict[str, Any]) -> dict[str, Any]:
        self._require(fields, ("id_lang", "id_contact", "email", "token"), "customer_threads")
        moment = self._tick()
        return {"id": self.shop.next_id("customer_threads"), "id_lang": fields["id_lang"], "id_shop": 1,
                "id_order": int(fields.get("id_order") or 0), "id_customer": int(fields.get("id_customer") or 0),
                "id_contact": fields["id_contact"], "email": fields["email"], "token": fields["token"],
                "status": fields.get("status") or "open", "date_add": moment, "date_upd": moment}

    def _create_customer_messages(self, fields: dict[str, Any]) -> dict[str, Any]:
        self._require(fields, ("id_customer_thread", "message"), "customer_messages")
        if int(fields["id_customer_thread"]) not in self.tables["customer_threads"]:
            raise _invalid("Property CustomerMessage->id_customer_thread is not valid")
        moment = self._tick()
        return {"id": self.shop.next_id("customer_messages"), "id_employee": int(fields.get("id_employee") or 0),
                "id_customer_thread": int(fields["id_customer_thread"]), "message": fields["message"],
                "private": fields.get("private") or "0", "date_add": moment, "date_upd": moment}

    # --- PrestaShop 9 Admin API (ps_apiresources) ---------------------------------------------

    @route("POST", ADMIN_PREFIX + "/access_token")
    def admin_token(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return self.json_response(400, {"error": "unsupported_grant_type", "error_description": "The "
                                            "authorization grant type is not supported by the authorization server."})
        if form.get("client_id") != SANDBOX_ADMIN_CLIENT or form.get("client_secret") != SANDBOX_ADMIN_SECRET:
            return self.json_response(401, {"error": "invalid_client", "error_description": "Client authentication "
                                            "failed", "message": "Client authentication failed"})
        return self.json_response(200, {"token_type": "Bearer", "expires_in": 3600,
                                        "access_token": self.issue_token(3600)})

    def _admin_return(self, return_id: str) -> dict[str, Any] | None:
        entry = self.tables["order_returns"].get(int(return_id)) if return_id.isdigit() else None
        if entry is None:
            return None
        customer = self.tables["customers"].get(entry["id_customer"], {})
        order = self.tables["orders"].get(entry["id_order"], {})
        return {"orderReturnId": entry["id"], "customerId": entry["id_customer"],
                "customerFirstName": customer.get("firstname"), "customerLastName": customer.get("lastname"),
                "orderId": entry["id_order"], "orderDate": order.get("date_add"),
                "orderReturnStateId": entry["state"], "question": entry["question"]}

    def _admin_problem(self, status: int, detail: str) -> httpx.Response:
        return self.json_response(status, {"type": "https://tools.ietf.org/html/rfc2616#section-10",
                                           "title": "An error occurred", "detail": detail, "status": status},
                                  "application/problem+json")

    @route("GET", ADMIN_PREFIX + "/order-returns/{return_id}")
    def admin_get_return(self, request: httpx.Request, return_id: str) -> httpx.Response:
        with self.lock:
            found = self._admin_return(return_id)
        return self.json_response(200, found) if found else self._admin_problem(404, "Not Found")

    @route("PATCH", ADMIN_PREFIX + "/order-returns/{return_id}")
    def admin_patch_return(self, request: httpx.Request, return_id: str) -> httpx.Response:
        with self.lock:
            if self._admin_return(return_id) is None:
                return self._admin_problem(404, "Not Found")
            try:
                state = int(json.loads(request.content or b"{}").get("orderReturnStateId"))
            except (ValueError, TypeError, AttributeError):
                state = 0
            if state not in RETURN_STATES:
                return self._admin_problem(422, "orderReturnStateId: This value is not valid.")
            entry = self.tables["order_returns"][int(return_id)]
            self.applied.append({"kind": "state", "order_return": entry["id"], "from": entry["state"], "to": state,
                                 "via": "admin-api"})
            entry.update(state=state, date_upd=self._tick())
            return self.json_response(200, self._admin_return(return_id))

    # --- what tests and the demo do as the shop's customers and staff -----------------------

    def order(self, order_id: int | str) -> dict[str, Any]:
        return self.tables["orders"][int(order_id)]

    def order_return(self, return_id: int | str) -> dict[str, Any]:
        return self.tables["order_returns"][int(return_id)]

    def request_return(self, order_id: int | None = None, question: str = "Too small") -> int:
        """A customer asks, in their account, to return the first item of a delivered order."""
        with self.lock:
            if order_id is None:
                order_id = next(o["id"] for o in self.tables["orders"].values() if o["current_state"] == 5
                                and not any(r["id_order"] == o["id"] for r in self.tables["order_returns"].values())
                                and not any(s["id_order"] == o["id"] for s in self.tables["order_slip"].values()))
            order = self.order(order_id)
            detail = self.shop.details(order["id"])[0]
            detail["product_quantity_return"] = "1"
            moment = self._tick()
            return_id = self.shop.next_id("order_returns")
            self.tables["order_returns"][return_id] = {
                "id": return_id, "id_customer": order["id_customer"], "id_order": order["id"], "question": question,
                "state": 1, "date_add": moment, "date_upd": moment}
            return return_id

    def set_return_state(self, return_id: int, state: int) -> None:
        """The merchant changes a merchandise return's state in BO → Customer service → Merchandise returns."""
        with self.lock:
            self.order_return(return_id).update(state=state, date_upd=self._tick())

    def refund_in_back_office(self, order_id: int, quantity: int = 1) -> int:
        """The merchant makes a partial refund of the first item: a credit slip, the order untouched."""
        with self.lock:
            order = self.order(order_id)
            detail = self.shop.details(order["id"])[0]
            detail["product_quantity_refunded"] = str(int(detail["product_quantity_refunded"]) + quantity)
            moment = datetime.fromisoformat(self._tick()).replace(tzinfo=timezone.utc)
            return int(self.shop.slip(order, [(detail, quantity)], moment)["id"])

    def add_odd_return(self) -> str:
        """A return in a state id nobody mapped (a merchant's own state 6), with no question at all; on 1.7/8 an
        order in an order state the merchant added (14), with a returned quantity."""
        with self.lock:
            return_id = self.request_return(question="")
            self.order_return(return_id).update(state=6, question="")
            if not self.has_order_returns:
                self.tables["order_states"].setdefault(14, {"id": 14, "name": "Return being inspected"})
                self.order(self.order_return(return_id)["id_order"])["current_state"] = 14
            return self._as_stored(return_id)

    def add_poison_return(self, poison: str = "quantity") -> str:
        """A return of 1e30 items (`quantity`: a module wrote it as the order detail's returned quantity), or on
        an order whose delivery address has a 36-character postcode and a 64-character phone (`postcode`)."""
        from retsync.kit.sandbox import POISON_PHONE, POISON_POSTCODE, POISON_QUANTITY

        if poison not in self.POISONS:
            raise ValueError(f"unknown poison {poison!r}: one of {self.POISONS}")
        with self.lock:
            return_id = self.request_return()
            order = self.order(self.order_return(return_id)["id_order"])
            if poison == "quantity":
                self.shop.details(order["id"])[0]["product_quantity_return"] = POISON_QUANTITY
            else:
                customer = self.tables["customers"][order["id_customer"]]
                address_id = self.shop.next_id("addresses")
                moment = self._tick()
                self.tables["addresses"][address_id] = {
                    "id": address_id, "id_customer": order["id_customer"], "id_manufacturer": 0, "id_supplier": 0,
                    "id_warehouse": 0, "id_country": 8, "id_state": 0, "alias": "Home", "company": "",
                    "lastname": customer["lastname"], "firstname": customer["firstname"], "vat_number": "",
                    "address1": "1 Rue de la Paix", "address2": "", "postcode": POISON_POSTCODE, "city": "Paris",
                    "other": "", "phone": POISON_PHONE, "phone_mobile": "", "dni": "", "deleted": "0",
                    "date_add": moment, "date_upd": moment}
                order.update(id_address_delivery=address_id, id_address_invoice=address_id)
            return self._as_stored(return_id)

    def _as_stored(self, return_id: int) -> str:
        """A new return's id as retsync stores it: the merchandise return's on 9; on 1.7/8, where the webservice
        has no returns, `order-<id>` of its order, which the merchant's "Return products" touched (date_upd)."""
        if self.has_order_returns:
            return str(return_id)
        order = self.order(self.order_return(return_id)["id_order"])
        order["date_upd"] = self._tick()
        return f"order-{order['id']}"

    def held_returns(self) -> dict[str, str]:
        with self.lock:
            found = {}
            for record in self.tables["order_returns"].values():
                mark = re.search(r"\(retsync hold ([^()\s]+)\)", str(record.get("question") or ""))
                if mark and record["id_order"] == HOLD_ORDER_ID:
                    found[mark.group(1)] = str(record["id"])
            return found

    def panel_decide(self, reference: str, kind: str, note: str | None = None) -> None:
        """The merchant moves the held merchandise return to the state that means `kind`, and replies on its
        thread (Customer service) with the note."""
        state = PANEL_RETURN_STATES.get(kind)
        if state is None:
            raise ValueError(f"the stock setup has no return state for {kind!r}; one of {sorted(PANEL_RETURN_STATES)}")
        with self.lock:
            record = self.order_return(reference)
            mark = re.search(r"\(retsync hold [^()\s]+\)", str(record.get("question") or ""))
            if note and mark:
                thread = next(m["id_customer_thread"] for m in self.tables["customer_messages"].values()
                              if mark.group(0) in str(m.get("message")))
                moment = self._tick()
                message_id = self.shop.next_id("customer_messages")
                self.tables["customer_messages"][message_id] = {
                    "id": message_id, "id_employee": 1, "id_customer_thread": thread, "message": note,
                    "private": "0", "date_add": moment, "date_upd": moment}
            self.set_return_state(int(reference), state)

    def acts_applied(self) -> list[tuple[str, ...]]:
        """Every write a decision act made, named by what it acted on, never by the id the shop gave it: one entry
        per order detail of a credit slip, per merchandise-return or order state change, and per message to the
        customer, so an act done twice shows the same entry twice."""
        with self.lock:
            return [entry for write in self.applied for entry in self._acted_on(write)]

    def _acted_on(self, write: dict[str, Any]) -> list[tuple[str, ...]]:
        if write["kind"] == "state":
            return [("return state", f"order return {write['order_return']}", f"state {write['to']}")]
        fields = write.get("fields") or {}
        if write.get("resource") == "order_slip":
            return [("credit slip", f"order {fields.get('id_order')}", f"order detail {row.get('id_order_detail')}")
                    for row in (fields.get("associations") or {}).get("order_slip_details", [])]
        if write.get("resource") == "order_histories":
            return [("order state", f"order {fields.get('id_order')}", f"state {fields.get('id_order_state')}")]
        if write.get("resource") == "customer_messages" and str(fields.get("private") or "0") == "0":
            thread = self.tables["customer_threads"].get(int(fields.get("id_customer_thread") or 0), {})
            return [("message to the customer", f"order {thread.get('id_order')}", str(fields.get("message")))]
        return []

    def truth(self) -> dict[str, set[str]]:
        """What a full sync must store: every order but held ones, and the merchandise returns (PS 9)."""
        orders = {str(i) for i in self.tables["orders"] if i != HOLD_ORDER_ID}
        return {"orders": orders, "returns": {str(i) for i, r in self.tables["order_returns"].items()
                                              if r["id_order"] != HOLD_ORDER_ID}}


def _num(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _invalid(message: str) -> PsError:
    """`saveEntityFromXml` after `validateFields` refused the object: 400, code 85."""
    return PsError(400, 85, f'Validation error: "{message}"')


def _php_int(value: str) -> int:
    """PHP's `(int)` on a query value: its leading digits, else 0."""
    digits = re.match(r"\s*-?\d+", value)
    return max(int(digits.group(0)), 0) if digits else 0


def _falsy(value: Any) -> bool:
    """What PHP's `array_filter` drops: "", "0", 0, 0.0, null, false and empty arrays."""
    return value is None or value is False or value == "" or value == "0" or value == [] or value == {} or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)


def _array_filtered(body: Any) -> Any:
    """`WebserviceOutputJSON::overrideContent` runs `array_filter` on each top-level value: one object loses its
    empty fields; a list only loses empty entries (the fields of its entries stay)."""
    if not isinstance(body, dict):
        return body
    return {key: ({k: v for k, v in value.items() if not _falsy(v)} if isinstance(value, dict) else
                  [v for v in value if not _falsy(v)] if isinstance(value, list) else value)
            for key, value in body.items()}


def _item_tag(group: str) -> str:
    """The element of one entry of a list or association in XML output."""
    single = {objects: one for one, objects in NODE_NAMES.values()}
    return ASSOCIATION_ITEMS.get(group) or single.get(group) or group


def _xml_into(parent: ElementTree.Element, value: Any, tag: str | None = None) -> None:
    if isinstance(value, dict):
        node = ElementTree.SubElement(parent, tag) if tag else parent
        for key, inner in value.items():
            _xml_into(node, inner, key)
    elif isinstance(value, list):
        node = ElementTree.SubElement(parent, tag) if tag else parent
        for inner in value:
            _xml_into(node, inner, _item_tag(tag or "item"))
    else:
        ElementTree.SubElement(parent, tag or "value").text = "" if value is None else str(value)
