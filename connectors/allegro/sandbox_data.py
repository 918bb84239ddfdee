"""The Allegro sandbox's seeded data: one seller's offers, checkout forms and customer returns.

The same seed gives the same data. Records are generated lazily per index (return i and the order it came from,
each from its own seeded generator), so 200,000 returns start in well under a second and any one of them costs
the same to build. What clients change (refunds, rejections, claims) and the routes live in `emulator.py`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from retsync.kit.sandbox import regular_for

DAY = 86400.0

REASON_TYPES = ("NONE", "MISTAKE", "TRANSPORT", "DAMAGED", "NOT_AS_DESCRIBED", "DONT_LIKE_IT", "OVERDUE_DELIVERY",
                "INCOMPLETE", "HIDDEN_FLAW", "OTHER_FLAW", "DIFFERENT", "COUNTERFEIT", "NOT_NEW", "TOO_LARGE",
                "TOO_SMALL", "NOT_AS_EXPECTED", "ORDERED_FOR_COMPARISON")
REJECTION_CODES = ("REFUND_REJECTED", "NEW_ITEM_SENT", "ITEM_FIXED", "MISSING_PART_SENT", "ITEM_MISMATCH",
                   "BUSINESS_PURCHASE", "NO_RETURN_RIGHT")
COMMENTS = ("", "", "Za mały rozmiar.", "Paczka była uszkodzona.", "Kupiłem przez pomyłkę.", "Nie działa po tygodniu.")
PRODUCTS = (("Buty do biegania", "249.99"), ("Słuchawki bezprzewodowe", "199.00"), ("Kurtka zimowa", "389.90"),
            ("Blender kielichowy", "159.50"), ("Lampka biurkowa LED", "79.99"), ("Plecak 25 l", "129.00"),
            ("Smartwatch", "549.00"), ("Zestaw garnków", "299.95"), ("Puzzle 1000 el.", "49.99"),
            ("Ekspres do kawy", "899.00"), ("Bluza z kapturem", "119.00"), ("Etui na laptopa", "69.90"))
VARIANTS = ("czarny", "biały", "niebieski", "rozmiar 42", "rozmiar M", "rozmiar L")
CARRIERS = (("ALLEGRO", None), ("INPOST", None), ("DPD", None), ("ALLEGRO", "ORLEN"), ("POCZTA_POLSKA", None))
LOGINS = ("kasia_88", "tomek.k", "ania-zakupy", "piotr1990", "ola_w", "marek_s", "zosia.b", "jan_kowal")
CITIES = (("Warszawa", "00-950"), ("Kraków", "30-001"), ("Gdańsk", "80-001"), ("Poznań", "60-001"),
          ("Wrocław", "50-001"))

# (final status, weight) of a return the seller handles; None: it still waits for the seller
OUTCOMES: tuple[tuple[str | None, int], ...] = (
    ("FINISHED", 62), ("REJECTED", 8), ("FINISHED_APT", 4), ("COMMISSION_REFUND_CLAIMED", 3),
    ("COMMISSION_REFUNDED", 5), (None, 18),
)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


@dataclass
class SellerData:
    """One seller's history on Allegro: return i came from order i; `created` holds when each return was made
    (the emulator moves a not-yet-visible one to now to add a return, so ids stay in creation order)."""

    seed: int
    n_returns: int
    history_days: int
    fulfillment_share: float
    new_share: float
    midnight: float
    """Today's UTC midnight: history lies before it, the `new_share` of returns in the two days after."""
    prefix: str = field(init=False)
    catalogue: list[tuple[str, str, str]] = field(init=False)
    """(offer id, name, price) of every offer."""
    created: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.prefix = f"{self.seed % 0x10000:04x}"
        rng = random.Random(f"allegro:{self.seed}:skeleton")
        self.catalogue = []
        for n, (name, price) in enumerate(PRODUCTS):
            for m, variant in enumerate(rng.sample(VARIANTS, 3)):
                offer_id = str(7_600_000_000 + n * 1000 + m * 100 + rng.randrange(100))
                self.catalogue.append((offer_id, f"{name} {variant}", price))
        n_new = int(self.n_returns * self.new_share)
        n_old = self.n_returns - n_new
        start = self.midnight - self.history_days * DAY
        span = self.history_days * DAY - 3600
        self.created = [start + (i + rng.random()) * span / max(n_old, 1) for i in range(n_old)]
        self.created += [self.midnight + (i + rng.random()) * 2 * DAY / max(n_new, 1) for i in range(n_new)]

    # --- ids -------------------------------------------------------------------------------

    def id(self, kind: int, index: int, sub: int = 0) -> str:
        return f"{self.prefix}{kind:04x}-b01c-4357-{0x9000 + sub:04x}-{index:012x}"

    def index(self, value: str, kind: int) -> int | None:
        parts = value.split("-")
        if len(parts) != 5 or parts[0] != f"{self.prefix}{kind:04x}" or len(parts[4]) != 12:
            return None
        try:
            index = int(parts[4], 16)
        except ValueError:
            return None
        return index if 0 <= index < len(self.created) else None

    def return_id(self, index: int) -> str:
        return self.id(1, index)

    def order_id(self, index: int) -> str:
        return self.id(2, index)

    # --- records ---------------------------------------------------------------------------

    def order(self, i: int) -> dict[str, Any]:
        """The checkout form return i came from."""
        rng = random.Random(f"allegro:{self.seed}:order:{i}")
        bought = self.created[i] - rng.uniform(3, 20) * DAY
        offers = rng.sample(self.catalogue, 1 if rng.random() < 0.6 else rng.randint(2, 3))
        login = rng.choice(LOGINS) + str(rng.randint(1, 999))
        city, post_code = rng.choice(CITIES)
        lines, total = [], Decimal(0)
        for k, (offer_id, name, price) in enumerate(offers):
            quantity = 1 if rng.random() < 0.8 else 2
            total += Decimal(price) * quantity
            lines.append({
                "id": self.id(4, i, k),
                "offer": {"id": offer_id, "name": name, "external": {"id": f"SKU-{offer_id[-5:]}"}},
                "quantity": quantity,
                "originalPrice": {"amount": price, "currency": "PLN"},
                "price": {"amount": price, "currency": "PLN"},
                "boughtAt": iso(bought),
            })
        payment_type = "CASH_ON_DELIVERY" if rng.random() < 0.1 else "ONLINE"
        buyer = {"id": str(40_000_000 + i), "email": f"{login}@allegromail.pl", "login": login,
                 "firstName": login.split("_")[0].split(".")[0].split("-")[0].capitalize(),
                 "lastName": "Kowalski", "guest": False, "phoneNumber": f"5{rng.randrange(10**8):08d}",
                 "address": {"street": "Jasna 1", "city": city, "postCode": post_code, "countryCode": "PL"}}
        regular = regular_for(i)
        if regular is not None:  # a customer who also buys in the shops' sandboxes (kit.sandbox.REGULARS)
            buyer.update(firstName=regular.first_name, lastName=regular.last_name, phoneNumber=regular.phone,
                         address={**buyer["address"], "city": regular.city, "postCode": regular.postcode})
        return {
            "id": self.order_id(i),
            "buyer": buyer,
            "payment": {"id": self.id(3, i), "type": payment_type,
                        "provider": "OFFLINE" if payment_type == "CASH_ON_DELIVERY" else "P24",
                        "finishedAt": iso(bought + 60), "paidAmount": {"amount": money(total), "currency": "PLN"}},
            "status": "READY_FOR_PROCESSING",
            "fulfillment": {"status": "SENT", "shipmentSummary": {"lineItemsSent": "ALL"}},
            "lineItems": lines,
            "surcharges": [],
            "marketplace": {"id": "allegro-pl"},
            "summary": {"totalToPay": {"amount": money(total), "currency": "PLN"}},
            "updatedAt": iso(bought + DAY),
            "revision": f"{i:08x}",
        }

    def timeline(self, i: int) -> tuple[list[tuple[float, str]], random.Random, bool]:
        """(when, status) milestones of return i, its rng for the rest, and whether One Fulfillment handles it."""
        rng = random.Random(f"allegro:{self.seed}:return:{i}")
        fulfillment = rng.random() < self.fulfillment_share
        t = self.created[i]
        steps = [(t, "CREATED")]
        t += rng.uniform(0.2, 2) * DAY
        steps.append((t, "DISPATCHED"))
        t += rng.uniform(0.2, 1) * DAY
        steps.append((t, "IN_TRANSIT"))
        t += rng.uniform(1, 3) * DAY
        if fulfillment:
            steps.append((t, "WAREHOUSE_DELIVERED"))
            t += rng.uniform(0.5, 2) * DAY
            steps.append((t, "WAREHOUSE_VERIFICATION"))
            steps.append((t + rng.uniform(1, 3) * DAY, "FINISHED"))
            return steps, rng, True
        steps.append((t, "DELIVERED"))
        final = rng.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
        if final is not None:
            steps.append((t + rng.uniform(2, 10) * DAY, final))
        return steps, rng, False

    def customer_return(self, i: int, order: dict[str, Any]) -> dict[str, Any]:
        """Everything about return i (of `order`) except its status, which depends on the time it is looked at;
        `_steps`, `_parcel` and `_rejection` are for the emulator, not shown to clients."""
        steps, rng, fulfillment = self.timeline(i)
        lines = order["lineItems"]
        returned = lines if len(lines) == 1 or rng.random() < 0.3 else rng.sample(lines, 1)
        items = []
        for line in returned:
            reason: dict[str, Any] = {"type": rng.choice(REASON_TYPES)}
            comment = rng.choice(COMMENTS)
            if comment:
                reason["userComment"] = comment
            items.append({
                "offerId": line["offer"]["id"], "quantity": line["quantity"] if rng.random() < 0.8 else 1,
                "name": line["offer"]["name"], "price": dict(line["price"]),
                "url": f"https://allegro.pl/oferta/{line['offer']['id']}", "reason": reason,
            })
        carrier, transporting = rng.choice(CARRIERS)
        parcel = {"createdAt": iso(steps[1][0]), "waybill": f"AD{rng.randrange(10**8):08d}",
                  "transportingWaybill": f"{rng.randrange(10**13):013d}" if transporting else None,
                  "carrierId": carrier, "transportingCarrierId": transporting,
                  "sender": {"phoneNumber": order["buyer"]["phoneNumber"]}}
        body: dict[str, Any] = {
            "id": self.return_id(i), "isFulfillment": fulfillment, "createdAt": iso(self.created[i]),
            "referenceNumber": f"{1000 + i % 9000}/Z{rng.randrange(100):02d}A", "orderId": order["id"],
            "buyer": {"email": order["buyer"]["email"], "login": order["buyer"]["login"]}, "items": items,
            "marketplaceId": "allegro-pl", "_steps": steps, "_parcel": parcel,
        }
        if order["payment"]["type"] == "CASH_ON_DELIVERY":
            body["refund"] = {"bankAccount": {"owner": order["buyer"]["login"],
                                              "accountNumber": "40114000003382916456018050",
                                              "iban": "PL40114000003382916456018050", "swift": "BREXPLPW"}}
        if steps[-1][1] == "REJECTED":
            code = rng.choice(REJECTION_CODES)
            body["_rejection"] = {"code": code, "createdAt": iso(steps[-1][0])}
            if code == "REFUND_REJECTED":
                body["_rejection"]["reason"] = "Zwrócony towar nosi ślady użytkowania."
        return body
