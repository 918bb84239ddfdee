"""An emulator of InPost ShipX tracking (`GET /v1/tracking/{number}`), with seeded parcel timelines.

Status names are ShipX's own (shared/specs/inpost-shipx/NOTES.md). Each seeded parcel follows one of the
timelines a return parcel has: still a label, on its way, waiting in a locker, delivered, or failed (canceled,
missing, returned to the sender). Tests move a parcel on (`advance`, `deliver`, `fail`) and read the requests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from retsync.kit.emulator import Emulator, route

SANDBOX_TOKEN = "inpost-sandbox-token-0123456789abcdef"
ORGANIZATION_ID = 1234

TIMELINE = ("confirmed", "dispatched_by_sender_to_pok", "taken_by_courier_from_pok", "adopted_at_sorting_center",
            "sent_from_sorting_center", "out_for_delivery", "delivered")
"""A return parcel dropped at an InPost point and brought to the merchant by courier, step by step."""
SCENARIOS = {
    "label": 1, "in_transit": 4, "delivered": 7,
    "canceled": ("confirmed", "canceled"),
    "missing": ("confirmed", "dispatched_by_sender", "adopted_at_sorting_center", "missing"),
    "returned_to_sender": ("confirmed", "dispatched_by_sender", "adopted_at_sorting_center", "returned_to_sender"),
}


def tracking_number(rng: random.Random) -> str:
    """24 digits, as InPost's are."""
    return rng.choice("5692") + "".join(str(rng.randrange(10)) for _ in range(23))


@dataclass
class InPostEmulator(Emulator):
    """ShipX tracking for parcels seeded from `seed`, and any a test adds."""

    parcels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0)
                            - timedelta(days=3))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.parcels:
            for index, scenario in enumerate(sorted(SCENARIOS)):
                rng = random.Random(f"inpost:{self.seed}:{index}")
                self.add_parcel(tracking_number(rng), scenario)

    # --- state a test reaches into --------------------------------------------------------------

    def add_parcel(self, number: str, scenario: str = "label") -> str:
        """A parcel following `scenario` (a key of SCENARIOS) up to its last step."""
        plan = SCENARIOS[scenario]
        statuses = TIMELINE[:plan] if isinstance(plan, int) else plan
        with self.lock:
            self.parcels[number] = []
            for status in statuses:
                self._step(number, status)
        return number

    def _step(self, number: str, status: str) -> None:
        steps = self.parcels[number]
        at = self.start + timedelta(hours=6 * len(steps))
        steps.append({"status": status, "origin_status": status.upper()[:12], "agency": None,
                      "datetime": at.isoformat()})

    def advance(self, number: str) -> str:
        """The parcel's next step on the way to the merchant; answers its new status."""
        with self.lock:
            done = [step["status"] for step in self.parcels[number]]
            following = next((status for status in TIMELINE if status not in done), "delivered")
            self._step(number, following)
        return following

    def deliver(self, number: str) -> datetime:
        """Bring the parcel to the merchant; answers when ShipX says it was delivered."""
        while self.advance(number) != "delivered":
            pass
        return datetime.fromisoformat(self.parcels[number][-1]["datetime"])

    def fail(self, number: str, status: str = "missing") -> None:
        with self.lock:
            self._step(number, status)

    def by_scenario(self, scenario: str) -> str:
        index = sorted(SCENARIOS).index(scenario)
        return tracking_number(random.Random(f"inpost:{self.seed}:{index}"))

    # --- API --------------------------------------------------------------------------------------

    def authorize(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization") != f"Bearer {SANDBOX_TOKEN}":
            return self.json_response(401, {"status": 401, "error": "token_invalid",
                                            "message": "Access token is missing or invalid"})
        return None

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return self.json_response(404, {"status": 404, "error": "resource_not_found",
                                        "message": f"Resource not found: {request.url.path}"})

    @route("GET", "/v1/tracking/{number}")
    def tracking(self, request: httpx.Request, number: str) -> httpx.Response:
        with self.lock:
            steps = list(self.parcels.get(number, ()))
        if not steps:
            return self.json_response(404, {"status": 404, "error": "resource_not_found",
                                            "message": f"Tracking number {number} not found", "details": {}})
        return self.json_response(200, {
            "tracking_number": number, "type": "parcel", "service": "inpost_locker_standard",
            "status": steps[-1]["status"], "custom_attributes": {"target_machine_id": "KRA01M"},
            "tracking_details": list(reversed(steps)),  # newest first, as ShipX lists them
            "expected_flow": [], "created_at": steps[0]["datetime"], "updated_at": steps[-1]["datetime"],
        })
