"""InPost ShipX tracking, and what its status names mean for a return parcel (contract: shared/specs/inpost-shipx).

A return parcel travels from the customer to the merchant, so ShipX's `delivered` is the parcel arriving at the
merchant: the return is `received`, at the time of that step. The steps before it (dropped at a locker or a
point, collected, sorted, out for delivery, waiting in a locker) are `in_transit`; `created`, `offers_*` and
`confirmed` mean only that a label exists. `canceled`, `missing` and `returned_to_sender` are failures a person
has to look at. A status name InPost adds later means nothing here until it is listed: it is kept, never
guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from retsync.intake.settings import InPostSettings
from retsync.kit.http import ChannelHttp, RetryPolicy, error_detail_from
from retsync.kit.payload import obj, objs, text, when

LABEL_ONLY = frozenset({"created", "offers_prepared", "offer_selected", "confirmed"})
DELIVERED = frozenset({"delivered"})
PROBLEMS = frozenset({"canceled", "missing", "returned_to_sender"})
IN_TRANSIT = frozenset({
    "dispatched_by_sender", "dispatched_by_sender_to_pok", "collected_from_sender", "taken_by_courier",
    "taken_by_courier_from_pok", "adopted_at_source_branch", "sent_from_source_branch", "ready_to_pickup_from_pok",
    "ready_to_pickup_from_pok_registered", "oversized", "adopted_at_sorting_center", "sent_from_sorting_center",
    "adopted_at_target_branch", "out_for_delivery", "ready_to_pickup", "pickup_reminder_sent", "pickup_time_expired",
    "avizo", "claimed", "out_for_delivery_to_address", "pickup_reminder_sent_address", "rejected_by_receiver",
    "undelivered_wrong_address", "undelivered_incomplete_address", "undelivered_unknown_receiver",
    "undelivered_cod_cash_receiver", "undelivered", "return_pickup_confirmation_to_sender",
    "ready_to_pickup_from_branch", "delay_in_delivery", "redirect_to_box", "canceled_redirect_to_box", "readdressed",
    "undelivered_no_mailbox", "undelivered_not_live_address", "undelivered_lack_of_access_letterbox",
    "stack_in_customer_service_point", "stack_parcel_pickup_time_expired", "unstack_from_customer_service_point",
    "courier_avizo_in_customer_service_point", "taken_by_courier_from_customer_service_point",
    "stack_in_box_machine", "unstack_from_box_machine", "stack_parcel_in_box_machine_pickup_time_expired", "other",
    "stored_by_sender",
})
"""Every ShipX status between the customer handing the parcel over and it reaching the merchant (NOTES.md's list)."""


@dataclass(frozen=True)
class Step:
    status: str
    at: datetime | None


@dataclass(frozen=True)
class Tracking:
    number: str
    status: str | None
    steps: tuple[Step, ...]
    """Oldest first."""

    def first(self, statuses: frozenset[str]) -> Step | None:
        return next((step for step in self.steps if step.status in statuses), None)

    @property
    def delivered(self) -> Step | None:
        return self.first(DELIVERED)

    @property
    def dispatched(self) -> Step | None:
        return self.first(IN_TRANSIT | DELIVERED)

    @property
    def problem(self) -> Step | None:
        """The latest step, where it is a failure (a parcel found again after `missing` is no longer one)."""
        latest = self.steps[-1] if self.steps else (Step(self.status, None) if self.status else None)
        return latest if latest is not None and latest.status in PROBLEMS else None


def read_tracking(number: str, body: Any) -> Tracking:
    """`GET /v1/tracking/{number}`: the parcel's status and its steps (`tracking_details`, any order)."""
    record = obj(body)
    steps = []
    for detail in objs(record.get("tracking_details")):
        status = text(detail.get("status"))
        if status:
            steps.append(Step(status, when(detail.get("datetime"))))
    steps.sort(key=lambda step: (step.at is None, step.at or datetime.min))
    return Tracking(text(record.get("tracking_number")) or number, text(record.get("status")), tuple(steps))


def _error_text(body: Mapping[str, Any]) -> str | None:
    """`{"status": 404, "error": "resource_not_found", "message": "..."}` (some pages say `description`)."""
    parts = [text(body.get("error")), text(body.get("message")) or text(body.get("description"))]
    return ": ".join(part for part in parts if part) or None


class InPostClient:
    """ShipX, for tracking: one paced client with the account's token."""

    def __init__(self, settings: InPostSettings, *, transport: httpx.BaseTransport | None = None,
                 stop: Any = None, sleep: Any = None) -> None:
        self.http = ChannelHttp(
            "inpost", base_url=settings.base_url,
            headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}", "Accept": "application/json",
                     "Accept-Language": "en_GB"},
            timeout=settings.timeout, retry=RetryPolicy(max_retries=2, max_delay=30.0),
            requests_per_second=settings.requests_per_second, error_detail=error_detail_from(_error_text),
            transport=transport, stop=stop, sleep=sleep)

    def track(self, number: str) -> Tracking:
        return read_tracking(number, self.http.json("GET", f"/v1/tracking/{quote(number, safe='')}"))

    def close(self) -> None:
        self.http.close()
