"""What PrestaShop's webservice answers, written down from PrestaShop's own source and the contract
(`shared/specs/prestashop/NOTES.md`), never from the connector or the sandbox: both are tested against it.

Sources (PrestaShop/PrestaShop, develop and the 1.7/8 branches alike):
- `ObjectModel::getWebserviceParameters`: a class without `objectNodeName` / `objectsNodeName` in its
  `$webserviceParameters` gets `$definition['table']` and `$definition['table'] . 's'`.
- `WebserviceOutputJSON::renderNodeHeader/renderNodeFooter`: a list goes under `objectsNodeName`, one object
  (no `display` in the query) under `objectNodeName`; nothing rendered leaves `$content` an empty array: `[]`.
- `WebserviceOutputJSON::overrideContent`: `array_walk($this->content, fn (&$item) => $item = array_filter($item))`,
  so one object loses its fields whose value PHP calls empty, and a list keeps its entries' fields.
- `WebserviceRequest`: `authenticate` (16, 17, 18, 20), `checkResource` (27), `manageFilters` (32, 37, 38, 39),
  `setFieldsToDisplay` (35, 36), `saveEntityFromXml` (127, 90, 91, 92, 41, 85), `checkHTTPMethod` (25),
  `getFilteredObjectDetails` (an unknown id: 404 with no body).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Node:
    resource: str
    """The resource in the URL (`/api/order_slip`)."""
    one: str
    """`objectNodeName`: the key of one object."""
    many: str
    """`objectsNodeName`: the key of a list."""
    source: str


NODES: dict[str, Node] = {node.resource: node for node in (
    Node("orders", "order", "orders",
         "classes/order/Order.php: $webserviceParameters 'objectNodeName' => 'order', 'objectsNodeName' => 'orders'"),
    Node("order_details", "order_detail", "order_details",
         "classes/order/OrderDetail.php: no node names; $definition 'table' => 'order_detail' (+ 's')"),
    Node("order_slip", "order_slip", "order_slips",
         "classes/order/OrderSlip.php: $webserviceParameters 'objectNodeName' => 'order_slip', "
         "'objectsNodeName' => 'order_slips'"),
    Node("order_returns", "order_return", "order_returns",
         "classes/order/OrderReturn.php: $definition 'table' => 'order_return' (+ 's'); a resource from 9.0 "
         "(PR #33675)"),
    Node("customers", "customer", "customers", "classes/Customer.php: $definition 'table' => 'customer' (+ 's')"),
    Node("currencies", "currency", "currencies",
         "classes/Currency.php: $webserviceParameters 'objectsNodeName' => 'currencies'; table 'currency'"),
    Node("customer_threads", "customer_thread", "customer_threads",
         "classes/CustomerThread.php: $definition 'table' => 'customer_thread' (+ 's')"),
    Node("customer_messages", "customer_message", "customer_messages",
         "classes/CustomerMessage.php: $definition 'table' => 'customer_message' (+ 's')"),
)}
"""Every resource the connector reads or writes."""

EMPTY_LIST: list[Any] = []
"""A list with no match: nothing renders a node, `$content` stays `array()`, `json_encode` writes `[]`."""


def php_empty(value: Any) -> bool:
    """PHP's `empty()` as `array_filter` applies it: "", "0", 0, 0.0, null, false, an empty array."""
    if value is None or value is False or value == "" or value == "0" or value == [] or value == {}:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def one_object(resource: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON of `GET /api/{resource}/{id}` for a record: its non-empty fields under `objectNodeName`."""
    return {NODES[resource].one: {key: value for key, value in fields.items() if not php_empty(value)}}


def a_list(resource: str, entries: list[dict[str, Any]]) -> Any:
    """The JSON of a list with `display=full`: every field of every entry under `objectsNodeName`, or `[]`."""
    return {NODES[resource].many: entries} if entries else EMPTY_LIST


@dataclass(frozen=True)
class ErrorCase:
    what: str
    status: int
    code: int | None
    """None: no body at all."""
    message: str
    """How the message starts."""
    source: str


ERRORS: tuple[ErrorCase, ...] = (
    ErrorCase("no key", 401, 16, "Please enter the authentication key as the login", "authenticate"),
    ErrorCase("an empty key", 401, 17, "Authentication key is empty", "authenticate"),
    ErrorCase("a key not 32 characters long", 401, 18, "Invalid authentication key format", "authenticate"),
    ErrorCase("a key the shop does not have", 401, 20, "Authentification key is not active", "authenticate"),
    ErrorCase("an unknown resource", 400, 27, 'Resource of type "nothing" does not exists', "checkResource"),
    ErrorCase("a filter on an unknown field", 400, 32, "This filter does not exist", "manageFilters"),
    ErrorCase("a date filter without date=1", 400, 32, "This filter does not exist", "manageFilters"),
    ErrorCase("a display of an unknown field", 400, 35, 'Unable to display this field "nothing"',
              "setFieldsToDisplay"),
    ErrorCase("a display without brackets", 400, 36, "The 'display' syntax is wrong", "setFieldsToDisplay"),
    ErrorCase("a sort without a direction", 400, 37, 'The "sort" value has to be formed', "manageFilters"),
    ErrorCase("a sort on an unknown field", 400, 38, "Unable to filter by this field", "manageFilters"),
    ErrorCase("a limit of three numbers", 400, 39, 'The "limit" value has to be formed', "manageFilters"),
    ErrorCase("a JSON body", 500, 127, "XML error : ", "saveEntityFromXml (new SimpleXMLElement)"),
    ErrorCase("a PUT without id", 400, 90, "id is required when modifying a resource", "saveEntityFromXml"),
    ErrorCase("a POST with an id", 400, 91, "id is forbidden when adding a new resource", "saveEntityFromXml"),
    ErrorCase("a PUT of an unknown id", 404, 92, "Invalid ID", "saveEntityFromXml"),
    ErrorCase("a POST without a required field", 400, 41, 'parameter "id_order" required', "saveEntityFromXml"),
    ErrorCase("a field validateFields refuses", 400, 85, 'Validation error: "', "saveEntityFromXml"),
    ErrorCase("a method the key may not use", 405, 25, "Method PUT is not allowed for the resource orders",
              "checkHTTPMethod"),
    ErrorCase("GET of an unknown id", 404, None, "", "getFilteredObjectDetails: status 404, output disabled"),
)
"""`{"errors": [{"code": N, "message": "…"}]}` with JSON output (`WebserviceOutputJSON::renderErrors`)."""
