"""BaseLinker's answers as JSON schemas, written down from the contract (shared/specs/baselinker/NOTES.md), not
from the connector: no OpenAPI file exists (BaseLinker publishes HTML pages only).

Sources, as NOTES.md names them: the method pages at https://api.baselinker.com/?method=<name> and the typed
client bugproof/baselinker-dotnet (`GetOrderReturns.cs`, `GetOrderReturnStatusList.cs`,
`GetOrderReturnJournalList.cs`, `SetOrderReturnRefund.cs`, `Common/ResponseBase.cs`). The return object, its
products, the status list and the journal entry list exactly the fields of NOTES.md ("Return object", the
methods table, "Pagination / incremental sync"); test_shapes.py checks each name against that file, so the
table cannot drift from it. getOrders' order object is not in NOTES.md: ORDER holds the fields of BaseLinker's
getOrders page that retsync reads, and is checked against the sandbox only.
"""

from __future__ import annotations

from typing import Any

INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
ID = {"type": "integer", "minimum": 1}
UNIX = {"type": "integer", "minimum": 0, "maximum": 4_102_444_800}

PRODUCT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_return_product_id": ID, "order_product_id": ID, "storage": {"enum": ["db", "shop", "warehouse"]},
        "storage_id": INT, "product_id": STR, "variant_id": INT, "name": STR, "sku": STR, "ean": STR,
        "location": STR, "warehouse_id": INT, "attributes": STR, "price_brutto": NUM, "tax_rate": NUM,
        "quantity": {"type": "integer", "minimum": 0, "maximum": 1000}, "weight": NUM, "status_id": INT,
        "return_reason_id": INT,
    },
    "required": ["order_product_id", "name", "quantity", "price_brutto"],
}
RETURN: dict[str, Any] = {
    "type": "object",
    "properties": {
        "return_id": ID, "order_id": INT, "shop_order_id": INT, "external_order_id": STR,
        "reference_number": STR, "order_return_source": STR, "order_return_source_id": INT, "status_id": INT,
        "date_add": UNIX, "date_in_status": UNIX, "user_login": STR, "currency": {"type": "string", "pattern":
                                                                                   "^[A-Z]{3}$"},
        "refunded": {"type": "boolean"}, "email": STR, "phone": STR, "delivery_price": NUM,
        "delivery_fullname": STR, "delivery_company": STR, "delivery_address": STR, "delivery_postcode": STR,
        "delivery_city": STR, "delivery_state": STR, "delivery_country": STR, "delivery_country_code": STR,
        "extra_field_1": STR, "extra_field_2": STR, "custom_extra_fields": {"type": "object"},
        "admin_comments": STR, "delivery_package_module": STR, "delivery_package_nr": STR,
        "order_return_account_number": STR, "order_return_iban": STR, "order_return_swift": STR,
        "fulfillment_status": {"enum": [0, 5, 1, 2]}, "products": {"type": "array", "items": PRODUCT},
    },
    "required": ["return_id", "status_id", "date_add", "fulfillment_status", "products"],
}
STATUS: dict[str, Any] = {"type": "object", "properties": {"id": ID, "name": STR, "name_for_customer": STR,
                                                           "color": STR}, "required": ["id", "name"]}
REASON: dict[str, Any] = {"type": "object", "properties": {"return_reason_id": ID, "name": STR},
                          "required": ["return_reason_id", "name"]}
LOG: dict[str, Any] = {
    "type": "object",
    "properties": {"id": ID, "return_id": ID, "log_type": {"enum": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15]},
                   "object_id": INT, "date": UNIX},
    "required": ["id", "return_id", "log_type", "date"],
}
ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": ID, "shop_order_id": INT, "external_order_id": STR, "order_source": STR,
        "order_status_id": INT, "date_add": UNIX, "date_confirmed": UNIX, "currency": STR, "email": STR,
        "phone": STR, "delivery_fullname": STR, "delivery_postcode": STR, "delivery_city": STR,
        "delivery_country_code": STR, "delivery_price": NUM,
        "products": {"type": "array", "items": {"type": "object", "properties": {
            "order_product_id": ID, "storage": STR, "storage_id": INT, "product_id": STR, "variant_id": INT,
            "name": STR, "sku": STR, "ean": STR, "quantity": {"type": "integer", "minimum": 0, "maximum": 1000},
            "price_brutto": NUM, "tax_rate": NUM}, "required": ["order_product_id", "quantity"]}},
    },
    "required": ["order_id", "products"],
}


def answer(key: str, item: dict[str, Any]) -> dict[str, Any]:
    """A SUCCESS answer holding the list `key` of `item`s (`ResponseBase`: status, then the method's fields)."""
    return {"type": "object", "properties": {"status": {"enum": ["SUCCESS"]},
                                             key: {"type": "array", "items": item}},
            "required": ["status", key]}


ERROR: dict[str, Any] = {"type": "object", "properties": {"status": {"enum": ["ERROR"]}, "error_code": STR,
                                                          "error_message": STR},
                         "required": ["status", "error_code", "error_message"]}
ANSWERS = {"getOrderReturns": answer("returns", RETURN), "getOrderReturnStatusList": answer("statuses", STATUS),
           "getOrderReturnReasonsList": answer("return_reasons", REASON),
           "getOrderReturnJournalList": answer("logs", LOG), "getOrders": answer("orders", ORDER)}
