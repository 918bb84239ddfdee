"""Magento 2 / Adobe Commerce Admin REST (`/rest/<store>/V1`), and nothing else: one method per endpoint.

Auth: an admin token bought with `POST /V1/integration/admin/token` (username + password; cached for its life,
4 h by default, and bought again on a 401) or an integration access token sent as Bearer. Lists are
`searchCriteria` queries answered as `{"items", "search_criteria", "total_count"}`; a page past the end repeats the
last one, so a walk stops on `total_count`, never on a short page. Error bodies are `{"message": "... %1 ...",
"parameters": [...]}`: the parameters are filled in for retsync's messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from retsync.kit.contract import Runtime
from retsync.kit.http import AuthError, BadPayload, BearerTokenAuth, ChannelHttp, TransientError, error_detail_from
from retsync.kit.payload import obj, text

PAGE_SIZE = 50
IDS_PER_REQUEST = 50


def magento_time(moment: datetime) -> str:
    """A time as searchCriteria compares it: UTC, "YYYY-MM-DD HH:MM:SS"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def error_text(body: Mapping[str, Any]) -> str | None:
    """`{"message": "No such entity with %fieldName = %fieldValue", "parameters": {...}}` filled in."""
    message = text(body.get("message"))
    if message is None:
        return None
    parameters = body.get("parameters")
    if isinstance(parameters, list):  # the schema's [{"fieldName": ...}], or Magento's positional ["a", "b"]
        named = {}
        for index, value in enumerate(parameters[:20], start=1):
            if isinstance(value, Mapping):
                named.update({str(k): text(v) or "" for k, v in list(value.items())[:5]})
            else:
                named[str(index)] = text(value) or ""
    elif isinstance(parameters, Mapping):
        named = {str(k): text(v) or "" for k, v in list(parameters.items())[:20]}
    else:
        named = {}
    filled = re.sub(r"%(\w+)", lambda m: named.get(m.group(1), m.group(0)), message)
    return filled[:500]


def criteria(filters: Sequence[tuple[str, str, str]] = (), sort: str | None = None, page: int = 1,
             size: int = PAGE_SIZE) -> dict[str, str]:
    """searchCriteria query parameters: each filter a group of its own (groups are ANDed)."""
    params = {}
    for group, (field, value, condition) in enumerate(filters):
        prefix = f"searchCriteria[filterGroups][{group}][filters][0]"
        params.update({f"{prefix}[field]": field, f"{prefix}[value]": value, f"{prefix}[conditionType]": condition})
    for index, field in enumerate(dict.fromkeys([sort, "entity_id"] if sort else [])):
        # entity_id breaks ties, so records sharing a date keep their place between the pages of one walk
        params.update({f"searchCriteria[sortOrders][{index}][field]": field,
                       f"searchCriteria[sortOrders][{index}][direction]": "ASC"})
    params.update({"searchCriteria[pageSize]": str(size), "searchCriteria[currentPage]": str(page)})
    return params


class AdminToken(BearerTokenAuth):
    """An admin token: `POST .../V1/integration/admin/token` with the username and password as JSON; the answer
    is the token as a JSON string. Cached for `lifetime` seconds, bought again on a 401."""

    def __init__(self, token_url: str, username: str, password: str, lifetime: float) -> None:
        super().__init__(token_url, username, password)
        self._credentials = {"username": username, "password": password}
        self._lifetime = lifetime

    def _token_request(self) -> httpx.Request:
        return httpx.Request("POST", self.token_url, json=self._credentials,
                             headers={"Accept": "application/json", "Content-Type": "application/json"})

    def accept(self, response: httpx.Response) -> tuple[str, float]:
        if response.status_code in (400, 401, 403):
            detail = error_detail_from(error_text)(response)
            raise AuthError(f"Magento refused the admin username and password (HTTP {response.status_code}: "
                            f"{detail}); check username and password")
        if response.status_code != 200:
            raise TransientError(f"the admin token endpoint answered HTTP {response.status_code}")
        try:
            token = response.json()
        except ValueError:
            raise BadPayload("the admin token endpoint's answer is not JSON") from None
        if not isinstance(token, str) or not token.strip():
            raise BadPayload("the admin token endpoint's answer is not a token string")
        return token, self._lifetime


def _page(body: Any, what: str) -> tuple[list[Any], int]:
    found = obj(body)
    entries, total = found.get("items"), found.get("total_count")
    if entries is None and isinstance(total, int):
        entries = []  # Magento leaves `items` out of an empty result
    if not isinstance(entries, list) or not isinstance(total, int) or isinstance(total, bool):
        raise BadPayload(f"Magento's answer to {what} is not a search result (items, total_count)")
    return entries, total


def _record(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict) or text(body.get("entity_id")) is None:
        raise BadPayload(f"Magento's answer to {what} has no entity_id")
    return body


class MagentoClient:
    def __init__(self, channel: str, settings: Any, runtime: Runtime) -> None:
        root = settings.base_url.rstrip("/") + f"/rest/{settings.store_code}/V1"
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if settings.access_token is not None:
            headers["Authorization"] = f"Bearer {settings.access_token.get_secret_value()}"
        else:
            auth = AdminToken(root + "/integration/admin/token", settings.username or "",
                              settings.password.get_secret_value() if settings.password else "",
                              settings.admin_token_lifetime.total_seconds())
        self.http = ChannelHttp.for_channel(channel, settings, runtime, base_url=root + "/", headers=headers,
                                            auth=auth, error_detail=error_detail_from(error_text))

    def close(self) -> None:
        self.http.close()

    # --- reading ---------------------------------------------------------------------------------

    def search(self, path: str, filters: Sequence[tuple[str, str, str]], sort: str | None, page: int,
               size: int = PAGE_SIZE) -> tuple[list[Any], int]:
        body = self.http.json("GET", path, params=criteria(filters, sort, page, size))
        return _page(body, f"GET /V1/{path}")

    def has_rma(self) -> bool:
        """Adobe Commerce answers the RMA attribute metadata; Magento Open Source has no such route (404)."""
        response = self.http.request("GET", "returnsAttributeMetadata/reason", ok=(200, 404))
        if response.status_code == 404:
            return False
        try:
            body = response.json()
        except ValueError:
            raise BadPayload("Magento's answer to GET /V1/returnsAttributeMetadata/reason is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("options"), list):
            raise BadPayload("Magento's answer to GET /V1/returnsAttributeMetadata/reason has no options")
        return True

    def attribute_options(self, code: str) -> dict[str, str]:
        """An RMA item attribute's options (`reason`, `condition`, `resolution`): option id → label."""
        body = obj(self.http.json("GET", f"returnsAttributeMetadata/{code}"))
        options = body.get("options")
        if not isinstance(options, list):
            raise BadPayload(f"Magento's answer to GET /V1/returnsAttributeMetadata/{code} has no options")
        found = {}
        for option in options[:500]:
            value, label = text(obj(option).get("value")), text(obj(option).get("label"))
            if value and label:
                found[value] = label
        return found

    def returns_page(self, since: datetime, page: int) -> tuple[list[Any], int]:
        return self.search("returns", [("date_requested", magento_time(since), "gteq")], "date_requested", page)

    def returns_by_ids(self, ids: Iterable[str]) -> list[Any]:
        return self._by_ids("returns", "entity_id", ids)

    def rma(self, rma_id: str) -> dict[str, Any]:
        return _record(self.http.json("GET", f"returns/{rma_id}"), "GET /V1/returns/{id}")

    def rma_comments(self, rma_id: str) -> list[Any]:
        return _page(self.http.json("GET", f"returns/{rma_id}/comments"), "GET /V1/returns/{id}/comments")[0]

    def orders_page(self, since: datetime, page: int) -> tuple[list[Any], int]:
        return self.search("orders", [("updated_at", magento_time(since), "gteq")], "updated_at", page)

    def orders(self, ids: Iterable[str]) -> list[Any]:
        return self._by_ids("orders", "entity_id", ids)

    def creditmemos_page(self, since: datetime, page: int) -> tuple[list[Any], int]:
        return self.search("creditmemos", [("updated_at", magento_time(since), "gteq")], "updated_at", page)

    def creditmemos_of(self, order_id: str) -> list[Any]:
        return self._by_ids("creditmemos", "order_id", [order_id])

    def creditmemos_of_orders(self, order_ids: Iterable[str]) -> list[Any]:
        return self._by_ids("creditmemos", "order_id", order_ids)

    def returns_of_orders(self, order_ids: Iterable[str]) -> list[Any]:
        return self._by_ids("returns", "order_id", order_ids)

    def order_comments(self, order_id: str) -> list[Any]:
        return _page(self.http.json("GET", f"orders/{order_id}/comments"), "GET /V1/orders/{id}/comments")[0]

    def _by_ids(self, path: str, field: str, ids: Iterable[str]) -> list[Any]:
        wanted, found = sorted(set(ids)), []
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            chunk = wanted[start:start + IDS_PER_REQUEST]
            page = 1
            while True:
                entries, total = self.search(path, [(field, ",".join(chunk), "in")], "entity_id", page)
                found += entries
                if not entries or page * PAGE_SIZE >= total:
                    break
                page += 1
        return found

    # --- writing ---------------------------------------------------------------------------------

    def save_rma(self, rma: Mapping[str, Any]) -> dict[str, Any]:
        return _record(self.http.json("PUT", f"returns/{rma['entity_id']}", json={"rmaDataObject": rma}),
                       "PUT /V1/returns/{id}")

    def create_rma(self, rma: Mapping[str, Any]) -> dict[str, Any]:
        return _record(self.http.json("POST", "returns", json={"rmaDataObject": rma}), "POST /V1/returns")

    def returns_of_order(self, order_id: str) -> list[Any]:
        found, page = [], 1
        while True:
            entries, total = self.search("returns", [("order_id", order_id, "eq")], "entity_id", page)
            found += entries
            if not entries or page * PAGE_SIZE >= total:
                return found
            page += 1

    def add_rma_comment(self, rma_id: str, comment: str, status: str | None, notify: bool) -> None:
        self.http.request("POST", f"returns/{rma_id}/comments", json={"data": {
            "comment": comment, "rma_entity_id": int(rma_id), "created_at": magento_time(datetime.now(UTC)),
            "entity_id": 0, "customer_notified": notify, "visible_on_front": notify, "status": status or "",
            "admin": True}})

    def refund(self, order_id: str, body: Mapping[str, Any]) -> str:
        answer = self.http.json("POST", f"order/{order_id}/refund", json=body)
        if isinstance(answer, bool) or not isinstance(answer, (int, str)) or text(answer) is None:
            raise BadPayload("Magento's answer to POST /V1/order/{id}/refund is not a credit memo id")
        return str(answer)

    def add_order_comment(self, order_id: str, comment: str, status: str | None) -> None:
        history: dict[str, Any] = {"comment": comment, "is_customer_notified": 0, "is_visible_on_front": 0,
                                   "parent_id": int(order_id)}
        if status:
            history["status"] = status
        self.http.request("POST", f"orders/{order_id}/comments", json={"statusHistory": history})
