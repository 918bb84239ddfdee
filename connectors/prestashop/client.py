"""The PrestaShop webservice (`/api/`), spoken as PrestaShop speaks it; nothing here knows the unified model.

Answers are asked for as JSON (`output_format=JSON`), the key travels as the basic-auth user with an empty
password, lists page with `limit=offset,N` and have no total (a page shorter than N is the last), and bodies
sent are XML `<prestashop><order_slip>…</order_slip></prestashop>`, the only input format the webservice
parses. Every answer is checked for the documented shape before anyone reads it.

PrestaShop names a JSON list after the class's `objectsNodeName` and one object after its `objectNodeName`
(`WebserviceOutputJSON::renderNodeHeader/renderNodeFooter`), not after the resource in the URL: credit slips are
`/api/order_slip` but a list of them is `{"order_slips": [...]}`. A list with no match is a bare `[]`, and a
single object leaves out its empty fields (`overrideContent` runs `array_filter`), so every field is optional.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from xml.etree import ElementTree

import httpx

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, BadPayload, ChannelHttp, OAuth2ClientCredentials, error_detail_from

T = TypeVar("T")

if TYPE_CHECKING:
    from retsync_connectors.prestashop.connector import PrestaShopSettings

API_PREFIX = "/api"
PAGE_SIZE = 100
FAR_FUTURE = "2100-01-01 00:00:00"


def _webservice_errors(body: Mapping[str, Any]) -> str | None:
    """`{"errors": [{"code": 17, "message": "…"}]}` as `message (code 17)`."""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return None
    parts = [f"{e.get('message')} (code {e.get('code')})" for e in errors if isinstance(e, Mapping)]
    return "; ".join(parts)[:500] if parts else None


_json_error_detail = error_detail_from(_webservice_errors)


def _xml_error_detail(response: httpx.Response) -> str:
    """`<prestashop><errors><error><code/><message/>` (asked for JSON, some errors still come as XML)."""
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        return response.text[:300] or response.reason_phrase
    messages = [m.text.strip() for m in root.iter("message") if m.text and m.text.strip()]
    return "; ".join(messages)[:300] or response.reason_phrase


def error_detail(response: httpx.Response) -> str:
    """The webservice's error messages with their codes; an XML body's messages."""
    if response.content.lstrip().startswith(b"<"):
        return _xml_error_detail(response)
    return _json_error_detail(response)


NODE_NAMES: dict[str, tuple[str, str]] = {
    "orders": ("order", "orders"),
    "order_details": ("order_detail", "order_details"),
    "order_slip": ("order_slip", "order_slips"),
    "order_returns": ("order_return", "order_returns"),
    "customers": ("customer", "customers"),
    "currencies": ("currency", "currencies"),
    "customer_threads": ("customer_thread", "customer_threads"),
    "customer_messages": ("customer_message", "customer_messages"),
}
"""Resource in the URL -> (one object's key, a list's key) for every resource read or written here: the class's
`$webserviceParameters` (`OrderSlip`: order_slip/order_slips, `Order`: order/orders, `Currency`: objectsNodeName
currencies), else `ObjectModel::getWebserviceParameters`'s default, the table name and the table name + "s"."""

ASSOCIATION_ITEMS = {"order_slip_details": "order_slip_detail", "order_rows": "order_row"}
"""The element of one association entry in an XML body (the association's `resource`)."""


def node_names(resource: str) -> tuple[str, str]:
    try:
        return NODE_NAMES[resource]
    except KeyError:
        raise ValueError(f"no PrestaShop node names known for resource {resource!r}: add them to NODE_NAMES "
                         "from its class's $webserviceParameters") from None


def xml_body(resource: str, fields: Mapping[str, Any]) -> bytes:
    """`<prestashop><order_return><id>…</id>…<associations>…</associations></order_return></prestashop>`."""
    root = ElementTree.Element("prestashop")
    node = ElementTree.SubElement(root, node_names(resource)[0])
    for key, value in fields.items():
        if key == "associations" and isinstance(value, Mapping):
            associations = ElementTree.SubElement(node, "associations")
            for name, entries in value.items():
                group = ElementTree.SubElement(associations, name)
                for entry in entries:
                    item = ElementTree.SubElement(group, ASSOCIATION_ITEMS.get(name, name))
                    for field, content in entry.items():
                        ElementTree.SubElement(item, field).text = "" if content is None else str(content)
            continue
        ElementTree.SubElement(node, key).text = "" if value is None else str(value)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(root, encoding="utf-8")


def one_of(values: Sequence[str]) -> str:
    """The OR filter `[1|5|9]`."""
    return "[" + "|".join(values) + "]"


class PrestaShopClient:
    """One shop's webservice: the key as basic-auth user, retries from ChannelHttp (a POST is never repeated
    blindly: the connector looks in the shop before sending again)."""

    def __init__(self, channel: str, settings: PrestaShopSettings, runtime: Runtime) -> None:
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime,
            base_url=settings.base_url.rstrip("/") + API_PREFIX,
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(settings.api_key.get_secret_value(), ""),
            error_detail=error_detail,
        )

    def close(self) -> None:
        self.http.close()

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        params = {**kwargs.pop("params", {}), "output_format": "JSON"}
        response = self.http.request(method, path, params=params, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise BadPayload(f"{what}: the answer is not valid JSON ({len(response.content)} bytes)") from None

    def list(self, resource: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One page of a list with `display=full`, under the class's objectsNodeName; no match is a bare `[]`."""
        what = f"GET /api/{resource} limit {params.get('limit', '')}"
        key = node_names(resource)[1]
        body = self._json("GET", f"/{resource}", what, params={"display": "full", **params})
        if isinstance(body, list) and not body:
            return []
        if not isinstance(body, Mapping) or not isinstance(body.get(key), list):
            raise BadPayload(f"{what}: expected {{\"{key}\": [...]}} or [], got {type(body).__name__}"
                             + (f" with keys {sorted(body)[:5]}" if isinstance(body, Mapping) else ""))
        entries = body[key]
        for entry in entries:
            if not isinstance(entry, dict) or isinstance(entry.get("id"), bool) or entry.get("id") in (None, ""):
                raise BadPayload(f"{what}: an entry without id")
        return entries

    def list_all(self, resource: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every page of a (small) list, e.g. the details of a page's orders."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            entries = self.list(resource, {**params, "limit": f"{offset},{PAGE_SIZE}"})
            found.extend(entries)
            if len(entries) < PAGE_SIZE:
                return found
            offset += PAGE_SIZE

    def by_ids(self, resource: str, field: str, ids: Sequence[str], display: str = "full") -> list[dict[str, Any]]:
        """Records whose `field` is one of `ids`, asked 50 at a time (URLs stay short), the batches side by side
        up to the channel's `max_concurrency`."""
        wanted = [i for i in dict.fromkeys(ids) if i and i.isdigit()]
        batches = [wanted[start:start + 50] for start in range(0, len(wanted), 50)]
        found: list[dict[str, Any]] = []
        for part in self.http.read_all(
                lambda batch: self.list_all(resource, {f"filter[{field}]": one_of(batch), "display": display}),
                batches):
            found += part
        return found

    def at_once(self, *reads: Callable[[], T]) -> list[T]:
        """Reads that do not depend on each other (the lookups a page needs), side by side, results in order."""
        return self.http.read_all(lambda read: read(), reads)

    def get(self, resource: str, record_id: str) -> dict[str, Any] | None:
        """One record; None when the shop does not know it."""
        what = f"GET /api/{resource}/{record_id}"
        try:
            body = self._json("GET", f"/{resource}/{record_id}", what)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._single(body, resource, what)

    @staticmethod
    def _single(body: Any, resource: str, what: str) -> dict[str, Any]:
        """One object under the class's objectNodeName; its empty fields are left out, so read each as optional."""
        key = node_names(resource)[0]
        entry = body.get(key) if isinstance(body, Mapping) else None
        if not isinstance(entry, dict) or entry.get("id") in (None, ""):
            raise BadPayload(f"{what}: expected {{\"{key}\": {{\"id\": …}}}}"
                             + (f", got keys {sorted(body)[:5]}" if isinstance(body, Mapping) else ""))
        return entry

    def create(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        what = f"POST /api/{resource}"
        body = self._json("POST", f"/{resource}", what, content=xml_body(resource, fields),
                          headers={"Content-Type": "application/xml"}, ok=(200, 201))
        return self._single(body, resource, what)

    def update(self, resource: str, record_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the full object (PrestaShop replaces it: send every field, and the associations)."""
        what = f"PUT /api/{resource}/{record_id}"
        body = self._json("PUT", f"/{resource}/{record_id}", what, content=xml_body(resource, {"id": record_id,
                                                                                              **fields}),
                          headers={"Content-Type": "application/xml"}, ok=(200,), idempotent=True)
        return self._single(body, resource, what)


class AdminApiCredentials(OAuth2ClientCredentials):
    """PrestaShop 9's Admin API (module ps_apiresources): client credentials in the form, with the scopes asked."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, scopes: Sequence[str]) -> None:
        super().__init__(token_url, client_id, client_secret)
        self._form = {"client_id": client_id, "client_secret": client_secret, "scope": " ".join(scopes)}

    def grant(self) -> dict[str, str]:
        return {"grant_type": "client_credentials", **self._form}


class AdminApiClient:
    """PrestaShop 9's Admin API (`/admin-api/`, JSON, OAuth2): where configured, merchandise-return states are
    changed with one PATCH instead of PUTting the whole webservice object."""

    SCOPES = ("order_return_read", "order_return_write")

    def __init__(self, channel: str, settings: PrestaShopSettings, runtime: Runtime) -> None:
        assert settings.admin_api_client_id and settings.admin_api_client_secret
        base = (settings.admin_api_url or settings.base_url.rstrip("/") + "/admin-api").rstrip("/")
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime,
            base_url=base,
            headers={"Accept": "application/json"},
            auth=AdminApiCredentials(base + "/access_token", settings.admin_api_client_id,
                                     settings.admin_api_client_secret.get_secret_value(), self.SCOPES),
        )

    def close(self) -> None:
        self.http.close()

    def set_return_state(self, return_id: str, state: str) -> dict[str, Any]:
        """`PATCH /order-returns/{id}` `{"orderReturnStateId": N}`; 404 unknown return, 422 a state it refuses."""
        what = f"PATCH /admin-api/order-returns/{return_id}"
        body = self.http.json("PATCH", f"/order-returns/{return_id}", content=json.dumps(
            {"orderReturnStateId": int(state)}).encode(), headers={"Content-Type": "application/json"},
            ok=(200,), idempotent=True)
        if not isinstance(body, dict) or "orderReturnStateId" not in body:
            raise BadPayload(f"{what}: expected an order return with orderReturnStateId")
        return body
