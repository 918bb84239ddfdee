"""The bol.com Retailer API v10, spoken as bol speaks it; nothing here knows the unified model.

Every answer is checked for the shape the spec promises before anyone reads
it, so a changed or broken body stops a sync with a clear `BadPayload`
instead of a KeyError deep in the mapping, or worse, a silently empty page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from retsync.kit.contract import Runtime
from retsync.kit.http import ApiError, BadPayload, ChannelHttp, OAuth2ClientCredentials, error_detail_from

if TYPE_CHECKING:
    from retsync_connectors.bol.connector import BolSettings

MEDIA_TYPE = "application/vnd.retailer.v10+json"
PAGE_SIZE = 50
"""bol's fixed page size; a shorter page is the last one."""


def _problem_text(body: Mapping[str, Any]) -> str | None:
    """A bol Problem body as one line: `detail (name: reason; name: reason)`; None when it says nothing."""
    detail = next(
        (body[key] for key in ("detail", "error_description", "title", "error") if isinstance(body.get(key), str)),
        None,
    )
    violations = body.get("violations")
    reasons = [
        f"{violation.get('name', '?')}: {violation.get('reason', '?')}"
        for violation in (violations if isinstance(violations, list) else [])
        if isinstance(violation, Mapping)
    ]
    if reasons:
        joined = "; ".join(reasons)
        return f"{detail} ({joined})" if detail else joined
    return detail


problem_detail = error_detail_from(_problem_text)
"""How a bol error answer reads in a log line or a decision's error; bodies that are not a Problem read as
every channel's do."""


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadPayload(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


def _check_return(body: Any, what: str) -> dict[str, Any]:
    """A ReducedReturn or Return with the fields nothing can be stored without."""
    entry = _require_object(body, what)
    if not isinstance(entry.get("returnId"), (str, int)) or isinstance(entry.get("returnId"), bool):
        raise BadPayload(f"{what}: a return without returnId")
    items = entry.get("returnItems")
    if not isinstance(items, list):
        raise BadPayload(f"{what}: return {entry['returnId']} has no returnItems array")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("rmaId"), (str, int)):
            raise BadPayload(f"{what}: return {entry['returnId']} has a return item without rmaId")
    return entry


class BolClient:
    """One channel's connection to bol: token, pacing and retries come from ChannelHttp.

    ChannelHttp repeats a GET freely but never a PUT whose answer was lost
    (it may already have handled the return); the connector checks bol
    before sending it again.
    """

    def __init__(self, channel: str, settings: BolSettings, runtime: Runtime) -> None:
        self.auth = OAuth2ClientCredentials(
            settings.token_url, settings.client_id, settings.client_secret.get_secret_value()
        )
        self.http = ChannelHttp.for_channel(
            channel, settings, runtime,
            headers={"Accept": MEDIA_TYPE},
            auth=self.auth,
            error_detail=problem_detail,
        )

    def close(self) -> None:
        self.http.close()

    # --- returns ---------------------------------------------------------------------------

    def list_returns(self, page: int, handled: bool, fulfilment_method: str) -> list[dict[str, Any]]:
        """One page (up to 50) of ReducedReturn entries; `{}` is how bol says the list is exhausted."""
        params = {"page": page, "handled": "true" if handled else "false", "fulfilment-method": fulfilment_method}
        what = f"GET /retailer/returns page {page} handled={params['handled']} {fulfilment_method}"
        body = self.http.json("GET", "/retailer/returns", params=params)
        if body is None:
            return []
        body = _require_object(body, what)
        if "returns" not in body:
            if body:
                raise BadPayload(f"{what}: no `returns` array, only {', '.join(sorted(body)[:5])}")
            return []
        entries = body["returns"]
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise BadPayload(f"{what}: `returns` is a {type(entries).__name__}, not an array")
        return [_check_return(entry, what) for entry in entries]

    def get_return(self, return_id: str) -> dict[str, Any] | None:
        """The full Return (with title, tracking and customer); None when bol does not know it."""
        try:
            body = self.http.json("GET", f"/retailer/returns/{return_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return _check_return(body, f"GET /retailer/returns/{return_id}")

    def get_returns(self, return_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """`get_return` of each id, side by side up to the channel's `max_concurrency`, in the ids' order."""
        return self.http.read_all(self.get_return, return_ids)

    def handle_return(self, rma_id: str, handling_result: str, quantity: int) -> dict[str, Any]:
        """Ask bol to handle a return item; bol answers 202 with a ProcessStatus to follow."""
        what = f"PUT /retailer/returns/{rma_id}"
        body = self.http.json(
            "PUT",
            f"/retailer/returns/{rma_id}",
            content=json.dumps({"handlingResult": handling_result, "quantityReturned": quantity}).encode(),
            headers={"Content-Type": MEDIA_TYPE},
            ok=(202, 200),
        )
        return self._check_process_status(body, what)

    # --- orders ----------------------------------------------------------------------------

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The full Order; None when bol does not know it (too old, or another retailer's)."""
        what = f"GET /retailer/orders/{order_id}"
        try:
            body = self.http.json("GET", f"/retailer/orders/{order_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        order = _require_object(body, what)
        if not isinstance(order.get("orderId"), (str, int)):
            raise BadPayload(f"{what}: an order without orderId")
        if not isinstance(order.get("orderItems", []), list):
            raise BadPayload(f"{what}: `orderItems` is not an array")
        return order

    # --- process status --------------------------------------------------------------------

    def get_orders(self, order_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """`get_order` of each id, side by side up to the channel's `max_concurrency`, in the ids' order."""
        return self.http.read_all(self.get_order, order_ids)

    def get_process_status(self, process_status_id: str) -> dict[str, Any] | None:
        """Where an earlier PUT stands; None once bol has purged it (about 48 h after it finished)."""
        what = f"GET /shared/process-status/{process_status_id}"
        try:
            body = self.http.json("GET", f"/shared/process-status/{process_status_id}")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return self._check_process_status(body, what)

    def process_statuses(self, entity_id: str, event_type: str) -> list[dict[str, Any]]:
        """The newest process statuses of one entity (e.g. the HANDLE_RETURN_ITEM processes of an rmaId)."""
        what = f"GET /shared/process-status entity-id={entity_id} event-type={event_type}"
        params = {"entity-id": entity_id, "event-type": event_type}
        body = self.http.json("GET", "/shared/process-status", params=params)
        if body is None:
            return []
        statuses = _require_object(body, what).get("processStatuses")
        if statuses is None:
            return []
        if not isinstance(statuses, list):
            raise BadPayload(f"{what}: `processStatuses` is not an array")
        return [self._check_process_status(status, what) for status in statuses]

    @staticmethod
    def _check_process_status(body: Any, what: str) -> dict[str, Any]:
        status = _require_object(body, what)
        if not isinstance(status.get("status"), str):
            raise BadPayload(f"{what}: a process status without `status`")
        if not isinstance(status.get("processStatusId"), (str, int)):
            raise BadPayload(f"{what}: a process status without processStatusId, so it cannot be followed")
        return status
