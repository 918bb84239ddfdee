"""A shop answering with recorded, PrestaShop-shaped JSON: node names, the bare `[]` and dropped empty fields
come from `tests.prestashop.shapes` (PrestaShop's classes), not from the connector or the sandbox.

The records are what `display=full` shows of a small shop (every field, strings as PrestaShop writes them, empty
ones included in lists). Lists honour `filter[field]=[a|b]`, `display=[a,b]` and `limit=offset,N`; the
`date_upd` interval is answered with every record (one pass of a small shop). Writes must be XML, as the
webservice reads nothing else; they are kept in `written`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import httpx

from tests.prestashop.shapes import a_list, one_object

CUSTOMERS = [
    {"id": 3, "id_lang": "1", "firstname": "Eva", "lastname": "Rossi", "email": "eva@example.com", "note": "",
     "company": "", "active": "1", "newsletter": "0", "date_add": "2026-09-01 10:00:00",
     "date_upd": "2026-09-01 10:00:00"},
    {"id": 4, "id_lang": "1", "firstname": "Ben", "lastname": "Jansen", "email": "ben@example.com", "note": "",
     "company": "", "active": "1", "newsletter": "0", "date_add": "2026-09-02 10:00:00",
     "date_upd": "2026-09-02 10:00:00"},
]


def _order(order_id: int, customer: int, rows: list[dict[str, Any]], paid: str, when: str) -> dict[str, Any]:
    return {"id": order_id, "id_address_delivery": str(customer), "id_address_invoice": str(customer),
            "id_cart": str(order_id), "id_currency": "1", "id_lang": "1", "id_customer": str(customer),
            "id_carrier": "2", "current_state": "5", "module": "ps_checkpayment", "invoice_number": str(order_id),
            "invoice_date": when, "delivery_number": "0", "delivery_date": when.replace("10:00", "15:30"),
            "valid": "1", "date_add": when, "date_upd": when, "shipping_number": "", "note": "", "id_shop_group": "1",
            "id_shop": "1", "secure_key": "b44a6d9efd7a0076a0fbce6b15eaf3b1", "payment": "Payments by check",
            "recyclable": "0", "gift": "0", "gift_message": "", "mobile_theme": "0", "total_discounts": "0.000000",
            "total_paid": paid, "total_paid_tax_incl": paid, "total_paid_real": paid, "total_shipping": "0.000000",
            "conversion_rate": "1.000000", "reference": f"XKBKNABJ{order_id}",
            "associations": {"order_rows": rows}}


def _row(row_id: int, name: str, reference: str, ean: str, quantity: int, price: str) -> dict[str, Any]:
    return {"id": str(row_id), "product_id": str(row_id + 100), "product_attribute_id": "0",
            "product_quantity": str(quantity), "product_name": name, "product_reference": reference,
            "product_ean13": ean, "product_isbn": "", "product_upc": "", "product_price": price,
            "id_customization": "0", "unit_price_tax_incl": price, "unit_price_tax_excl": price}


def _detail(row: dict[str, Any], order_id: int, returned: int = 0, refunded: int = 0) -> dict[str, Any]:
    return {"id": int(row["id"]), "id_order": str(order_id), "product_id": row["product_id"],
            "product_attribute_id": "0", "product_name": row["product_name"],
            "product_quantity": row["product_quantity"], "product_quantity_in_stock": row["product_quantity"],
            "product_quantity_return": str(returned), "product_quantity_refunded": str(refunded),
            "product_quantity_reinjected": "0", "product_price": row["product_price"],
            "unit_price_tax_incl": row["unit_price_tax_incl"], "unit_price_tax_excl": row["unit_price_tax_excl"],
            "total_refunded_tax_incl": "0.000000", "total_refunded_tax_excl": "0.000000",
            "product_reference": row["product_reference"], "product_ean13": row["product_ean13"],
            "product_upc": "", "product_isbn": "", "product_mpn": "", "id_order_invoice": "0", "id_warehouse": "0",
            "id_shop": "1", "id_customization": "0"}


def _slip(slip_id: int, order_id: int, customer: int, detail_id: int, quantity: int, amount: str,
          when: str) -> dict[str, Any]:
    return {"id": slip_id, "id_customer": str(customer), "id_order": str(order_id), "conversion_rate": "1.000000",
            "total_products_tax_excl": amount, "total_products_tax_incl": amount,
            "total_shipping_tax_excl": "0.000000", "total_shipping_tax_incl": "0.000000", "amount": amount,
            "shipping_cost": "0", "shipping_cost_amount": "0.000000", "partial": "1", "date_add": when,
            "date_upd": when, "order_slip_type": "0",
            "associations": {"order_slip_details": [{"id": str(slip_id), "id_order_detail": str(detail_id),
                                                     "product_quantity": str(quantity), "amount_tax_excl": amount,
                                                     "amount_tax_incl": amount}]}}


def records(version: str) -> dict[str, list[dict[str, Any]]]:
    """Order 7: one unit of row 70 came back (returned quantity), the customer wrote on its thread; order 8:
    nothing known; order 9: refunded in the back office (a slip for row 90). On 9, merchandise returns 12
    (order 7) and 13 (order 8) were asked for."""
    rows7 = [_row(70, "Linen shirt", "demo_2", "4001234500019", 2, "24.600000"),
             _row(71, "Ceramic mug", "", "", 1, "11.880000")]
    rows8 = [_row(80, "Canvas tote", "demo_3", "4001234500026", 1, "18.900000")]
    rows9 = [_row(90, "Rain jacket", "demo_6", "", 1, "117.600000")]
    found: dict[str, list[dict[str, Any]]] = {
        "orders": [_order(7, 3, rows7, "61.080000", "2026-10-01 10:00:00"),
                   _order(8, 4, rows8, "18.900000", "2026-10-02 10:00:00"),
                   _order(9, 3, rows9, "117.600000", "2026-10-03 10:00:00")],
        "order_details": [_detail(rows7[0], 7, returned=1), _detail(rows7[1], 7), _detail(rows8[0], 8),
                          _detail(rows9[0], 9, refunded=1)],
        "order_slip": [_slip(1, 9, 3, 90, 1, "117.600000", "2026-10-08 09:00:00")],
        "customers": CUSTOMERS,
        "currencies": [{"id": 1, "name": "Euro", "iso_code": "EUR", "conversion_rate": "1.000000",
                        "deleted": "0", "active": "1"}],
        "customer_threads": [{"id": 1, "id_shop_group": "1", "id_shop": "1", "id_lang": "1", "id_contact": "1",
                              "id_customer": "3", "id_order": "7", "id_product": "0", "status": "open",
                              "email": "eva@example.com", "token": "k3q9x1", "date_add": "2026-10-05 18:00:00",
                              "date_upd": "2026-10-05 18:00:00"}],
        "customer_messages": [{"id": 1, "id_employee": "0", "id_customer_thread": "1", "ip_address": "",
                               "message": "Where do I send the shirt back?", "file_name": "", "user_agent": "",
                               "private": "0", "date_add": "2026-10-05 18:00:00", "date_upd": "2026-10-05 18:00:00",
                               "read": "0"}],
    }
    if int(version.split(".")[0]) >= 9:
        found["order_returns"] = [
            {"id": 12, "id_customer": "3", "id_order": "7", "question": "<p>Too small</p>", "state": "1",
             "date_add": "2026-10-06 08:00:00", "date_upd": "2026-10-06 08:00:00"},
            {"id": 13, "id_customer": "4", "id_order": "8", "question": "", "state": "2",
             "date_add": "2026-10-07 08:00:00", "date_upd": "2026-10-07 09:00:00"},
        ]
    return found


@dataclass
class RecordedShop:
    version: str = "8.1.7"
    data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    asked: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    written: list[tuple[str, str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = self.data or records(self.version)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/api/").split("/")
        resource, record = parts[0], (parts[1] if len(parts) > 1 else None)
        self.asked.append((request.method, resource, dict(request.url.params)))
        if resource not in self.data:
            return self._error(400, 27, f'Resource of type "{resource}" does not exists. Did you mean: "orders"? '
                               f'The full list is: "{", ".join(sorted(self.data))}"')
        if request.method == "GET" and record is None:
            return httpx.Response(200, json=a_list(resource, self._listed(resource, request.url.params)))
        if request.method == "GET":
            found = next((r for r in self.data[resource] if str(r["id"]) == record), None)
            return httpx.Response(404) if found is None else httpx.Response(200, json=one_object(resource, found))
        return self._write(request, resource)

    def _listed(self, resource: str, params: httpx.QueryParams) -> list[dict[str, Any]]:
        entries = self.data[resource]
        for key, value in params.multi_items():
            if key.startswith("filter[") and key != "filter[date_upd]":
                name, wanted = key[7:-1], set(value.strip("[]").split("|"))
                entries = [e for e in entries if str(e.get(name)) in wanted]
        offset, _, size = params.get("limit", f"0,{len(entries)}").rpartition(",")
        entries = entries[int(offset or 0):int(offset or 0) + int(size)]
        display = params.get("display", "")
        if display.startswith("["):
            names = display.strip("[]").split(",")
            entries = [{n: e[n] for n in names if n in e} for e in entries]
        return copy.deepcopy(entries)

    def _write(self, request: httpx.Request, resource: str) -> httpx.Response:
        self.written.append((request.method, resource, request.content))
        try:
            root = ElementTree.fromstring(request.content)
        except ElementTree.ParseError:
            return self._error(500, 127, "XML error : String could not be parsed as XML")
        entity = next(iter(root))
        fields: dict[str, Any] = {child.tag: child.text or "" for child in entity if child.tag != "associations"}
        associations = entity.find("associations")
        if associations is not None:
            fields["associations"] = {group.tag: [{f.tag: f.text or "" for f in item} for item in group]
                                      for group in associations}
        fields["id"] = int(fields.get("id") or max((int(r["id"]) for r in self.data[resource]), default=0) + 1)
        self.data[resource] = [r for r in self.data[resource] if r["id"] != fields["id"]] + [fields]
        return httpx.Response(201 if request.method == "POST" else 200, json=one_object(resource, fields))

    @staticmethod
    def _error(status: int, code: int, message: str) -> httpx.Response:
        return httpx.Response(status, content=json.dumps({"errors": [{"code": code, "message": message}]}),
                              headers={"content-type": "application/json"})

    def keys_answered(self) -> set[str]:
        """The resources the connector asked for."""
        return {resource for _, resource, _ in self.asked}
