"""The seeded world of the bol sandbox: which returns exist, how they are listed, and every detail of them.

The same seed (and day) gives the same data: a skeleton of compact arrays says what listing needs for every
return (registration time, fulfilment method, handled or not, which returns share an order), drawn from one
master generator; each return and order is then built on demand from a generator of its own, seeded by its
number, so reading return 9,000 never builds the 8,999 before it. The emulator (emulator.py) serves this data
and keeps what changes; this module holds no API.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

RETURN_ID_BASE = 10_000_000
RMA_BASE = 60_000_000
ORDER_BASE = 1_043_000_000
ORDER_ITEM_BASE = 2_100_000_000
ITEMS_PER_RETURN = 2
ITEMS_PER_ORDER = 3

DUTCH_TIME = timezone(timedelta(hours=1))
"""bol writes times in Dutch (winter) time with an explicit offset."""

REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Verkeerde maat of afmeting", ("Te groot", "Te klein", "Pasvorm valt tegen", "Meerdere maten/afmetingen besteld")),
    ("Verkeerd besteld", ("Onduidelijke productinformatie", "Dubbel besteld", "Artikel had ik toch niet nodig")),
    ("Artikel werkt niet", ()),
    ("Klacht over artikel",
     ("Artikel is beschadigd", "Artikel werkt niet", "Kwaliteit valt tegen", "Artikel is incompleet")),
    ("Klacht over de bezorging", ("Artikel is te laat bezorgd", "Verpakking is beschadigd", "Artikel is beschadigd")),
    ("Elders goedkoper", ()),
    ("Ander artikel ontvangen dan besteld", ("Ander artikel ontvangen dan besteld", "Onduidelijke afbeelding")),
    ("Anders", ("Ik heb me bedacht", "Artikel cadeau ontvangen", "Andere kleur dan gedacht", "Anders-namelijk")),
)
"""mainReason and its detailedReason values, from the spec's ReturnReason table."""

COMMENTS = ("", "", "", "Past niet goed.", "Doos was open bij aankomst.", "Toch een andere kleur gekozen.",
            "Werkt niet na 2 dagen.")

# (handlingResult, processingResult, weight): what bol reports for handled items; the unusual ones are real
# values seen in the wild that the spec does not list, so parsers meet them too.
FBR_OUTCOMES = (
    ("RETURN_RECEIVED", "ACCEPTED", 60),
    ("RETURN_DOES_NOT_MEET_CONDITIONS", "REJECTED", 9),
    ("EXCHANGE_PRODUCT", "ACCEPTED", 8),
    ("REPAIR_PRODUCT", "ACCEPTED", 5),
    ("CUSTOMER_KEEPS_PRODUCT_PAID", "ACCEPTED", 7),
    ("STILL_APPROVED", "ACCEPTED", 4),
    ("CANCELLED_BY_CUSTOMER", "CANCELLED", 4),
    ("EXPIRED", "CANCELLED", 3),
)
FBB_OUTCOMES = (
    ("RETURN_RECEIVED", "ACCEPTED", 72),
    ("CUSTOMER_KEEPS_PRODUCT_FREE_OF_CHARGE", "ACCEPTED", 10),
    ("RETURN_DOES_NOT_MEET_CONDITIONS", "REJECTED", 6),
    ("CANCELLED_BY_CUSTOMER", "CANCELLED", 6),
    ("FAILED_TO_COLLECT_BY_TRANSPORTER", "CANCELLED", 6),
)

FIRST_NAMES = ("Billie", "Daan", "Emma", "Sem", "Julia", "Lucas", "Mila", "Finn", "Tess", "Noah", "Sara", "Levi")
SURNAMES = ("Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "Peeters")
PLACES = (("Utrecht", "3511", "NL"), ("Amsterdam", "1012", "NL"), ("Rotterdam", "3011", "NL"),
          ("Groningen", "9711", "NL"), ("Eindhoven", "5611", "NL"), ("Antwerpen", "2000", "BE"), ("Gent", "9000", "BE"))
ZIP_LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"
STREETS = ("Dorpstraat", "Kerkstraat", "Stationsweg", "Molenlaan", "Schoolstraat", "Lindelaan")
PRODUCT_WORDS = (("Hardloopschoenen", 89.95), ("Koptelefoon draadloos", 129.0), ("Winterjas", 149.99),
                 ("Blender", 59.5), ("Boek: De Avond is Ongemak", 22.99), ("Spijkerbroek slim fit", 69.95),
                 ("Koffiezetapparaat", 99.0), ("LED bureaulamp", 34.95), ("Puzzel 1000 stukjes", 17.49),
                 ("Rugzak 25L", 44.0), ("Smartwatch", 199.0), ("Pannenset 5-delig", 119.95), ("Sneakers", 79.99),
                 ("Laptophoes 15 inch", 24.95), ("Babyfoon", 84.5))
PRODUCT_VARIANTS = ("zwart", "wit", "blauw", "maat 42", "maat M", "maat L", "grijs", "rood")
TRANSPORTERS = ("PostNL", "DHL", "DPD", "BPost")
CUSTOMER_FIELDS = ("salutation", "firstName", "surname", "streetName", "houseNumber", "zipCode", "city", "countryCode",
                   "email")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, DUTCH_TIME).isoformat(timespec="milliseconds")


def _ean(rng: random.Random) -> str:
    digits = [8, 7] + [rng.randrange(10) for _ in range(10)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits + [check]))


def _weighted(rng: random.Random, outcomes: Sequence[tuple[str, str, int]]) -> tuple[str, str]:
    handling, processing, _ = rng.choices(outcomes, weights=[w for *_, w in outcomes])[0]
    return handling, processing


def result(quantity: int, processing: str, handling: str, when: float) -> dict[str, Any]:
    return {"quantity": quantity, "processingResult": processing, "handlingResult": handling,
            "processingDateTime": iso(when)}



class SandboxData:
    """The seeded returns and orders of one sandbox, `n_returns` of them over the last `history_days`."""

    def __init__(self, seed: int, n_returns: int, *, fbb_share: float, history_days: int, midnight: float) -> None:
        self.seed = seed
        self.n_returns = n_returns
        self.fbb_share = fbb_share
        self.history_days = history_days
        self.midnight = midnight
        master = random.Random(f"bol:{seed}:skeleton")
        self.catalogue = self._make_catalogue(master)
        self._build_skeleton(master)

    @staticmethod
    def _make_catalogue(rng: random.Random) -> list[tuple[str, str, float]]:
        catalogue = []
        for title, price in PRODUCT_WORDS:
            for variant in rng.sample(PRODUCT_VARIANTS, 3):
                catalogue.append((_ean(rng), f"{title} {variant}", price))
        return catalogue

    def _build_skeleton(self, rng: random.Random) -> None:
        """What listing needs for every return, in compact arrays; everything else is built on demand."""
        n = self.n_returns
        start = self.midnight - self.history_days * 86400
        span = self.history_days * 86400 - 60
        self.registered: list[float] = [start + (i + rng.random()) * span / max(n, 1) for i in range(n)]
        self.fbb = bytearray(n)
        self.handled = bytearray(n)
        self.shares_order = bytearray(n)
        self.order_items = bytearray(n)
        self.return_items = bytearray(n)
        random_ = rng.random
        for i in range(n):
            shares = i > 0 and not self.shares_order[i - 1] and random_() < 0.08
            self.shares_order[i] = shares
            self.fbb[i] = self.fbb[i - 1] if shares else random_() < self.fbb_share
            age_days = (self.midnight - self.registered[i]) / 86400
            self.handled[i] = random_() < (0.92 if age_days > 14 else 0.35 if age_days > 3 else 0.1)
            self.order_items[i] = 1 if random_() < 0.6 else 2 if random_() < 0.75 else 3
        for i in range(n):
            if i + 1 < n and self.shares_order[i + 1]:
                self.order_items[i] = max(2, self.order_items[i])
        for i in range(n):
            owner = i - 1 if self.shares_order[i] else i
            leaves_one = self.shares_order[i] or (i + 1 < n and self.shares_order[i + 1])
            self.return_items[i] = 1 if leaves_one or self.order_items[owner] < 2 or random_() < 0.8 else 2
        self.lists: dict[tuple[str, bool], list[int]] = {(method, handled): [] for method in ("FBR", "FBB")
                                                           for handled in (False, True)}
        for i in range(n):  # ascending registration; handled lists are read from the end
            self.lists[("FBB" if self.fbb[i] else "FBR", bool(self.handled[i]))].append(i)

    def _person(self, rng: random.Random) -> dict[str, Any]:
        city, zip_prefix, country = rng.choice(PLACES)
        zip_code = zip_prefix + "".join(rng.choices(ZIP_LETTERS, k=2)) if country == "NL" else zip_prefix
        return {
            "salutation": rng.choice(("MALE", "FEMALE", "UNKNOWN")),
            "firstName": rng.choice(FIRST_NAMES),
            "surname": rng.choice(SURNAMES),
            "streetName": rng.choice(STREETS),
            "houseNumber": str(rng.randint(1, 250)),
            "zipCode": zip_code,
            "city": city,
            "countryCode": country,
            "email": f"{rng.getrandbits(48):012x}@verkopen.bol.com",
        }

    def order(self, j: int) -> dict[str, Any]:
        """Seeded order `j` (an Order as bol serves it), placed some days before return `j` was registered."""
        rng = random.Random(f"bol:{self.seed}:order:{j}")
        placed = self.registered[j] - rng.uniform(2, 20) * 86400
        return self.order_body(rng, j, placed, "FBB" if self.fbb[j] else "FBR", self.order_items[j])

    def order_body(self, rng: random.Random, j: int, placed: float, method: str, n_items: int) -> dict[str, Any]:
        person = self._person(rng)
        items = []
        for m, (ean, title, price) in enumerate(rng.sample(self.catalogue, n_items)):
            quantity = 1 if rng.random() < 0.85 else 2
            discount = round(price * 0.1, 2) if rng.random() < 0.1 else 0.0
            total = round(price * quantity - discount, 2)
            item: dict[str, Any] = {
                "orderItemId": str(ORDER_ITEM_BASE + ITEMS_PER_ORDER * j + m),
                "cancellationRequest": False,
                "fulfilment": {
                    "method": method,
                    "distributionParty": "BOL" if method == "FBB" else "RETAILER",
                    "latestDeliveryDate": datetime.fromtimestamp(placed + 2 * 86400, DUTCH_TIME).date().isoformat(),
                    "timeFrameType": "REGULAR",
                },
                "offer": {"offerId": str(uuid.UUID(int=rng.getrandbits(128), version=4))},
                "product": {"ean": ean, "title": title},
                "quantity": quantity,
                "quantityShipped": quantity,
                "quantityCancelled": 0,
                "unitPrice": price,
                "totalPrice": total,
                "discounts": [{"title": "Actie: 10% korting", "amount": discount}] if discount else [],
                "commission": round(total * 0.15 + 0.2, 2),
                "latestChangedDateTime": iso(placed + 86400),
            }
            if rng.random() < 0.8:
                item["offer"]["reference"] = f"SKU-{rng.randint(1000, 99999)}"
            items.append(item)
        shipment = {**person, "language": "nl" if person["countryCode"] == "NL" else "nl-BE"}
        return {
            "orderId": str(ORDER_BASE + j),
            "pickupPoint": False,
            "orderPlacedDateTime": iso(placed),
            "shipmentDetails": shipment,
            "billingDetails": dict(person),
            "orderItems": items,
        }

    def owner(self, i: int) -> int:
        """The return whose order return `i` belongs to: its own, or the one before it when they share one."""
        return i - 1 if i < self.n_returns and self.shares_order[i] else i

    def return_detail(self, i: int, order: dict[str, Any]) -> dict[str, Any]:
        """Seeded return `i` (a Return as bol serves its detail) on `order`, the order of `owner(i)`."""
        rng = random.Random(f"bol:{self.seed}:return:{i}")
        order_items = order["orderItems"]
        if self.shares_order[i]:
            chosen = [order_items[-1]]
        elif i + 1 < self.n_returns and self.shares_order[i + 1]:
            chosen = [order_items[0]]
        else:
            chosen = rng.sample(order_items, self.return_items[i])
        method = "FBB" if self.fbb[i] else "FBR"
        registered = self.registered[i]
        tracked = method == "FBB" or rng.random() < 0.55
        items = [
            self.return_item(rng, i, k, item, order, method, registered, tracked, bool(self.handled[i]))
            for k, item in enumerate(chosen)
        ]
        return {
            "returnId": str(RETURN_ID_BASE + i),
            "registrationDateTime": iso(registered),
            "fulfilmentMethod": method,
            "returnItems": items,
        }

    def return_item(
        self,
        rng: random.Random,
        i: int,
        k: int,
        order_item: dict[str, Any],
        order: dict[str, Any],
        method: str,
        registered: float,
        tracked: bool,
        handled: bool,
    ) -> dict[str, Any]:
        main_reason, details = rng.choice(REASONS)
        reason: dict[str, Any] = {"mainReason": main_reason, "customerComments": rng.choice(COMMENTS)}
        if details:
            reason["detailedReason"] = rng.choice(details)
        quantity = rng.randint(1, order_item["quantity"])
        item: dict[str, Any] = {
            "rmaId": str(RMA_BASE + ITEMS_PER_RETURN * i + k),
            "orderId": order["orderId"],
            "ean": order_item["product"]["ean"],
            "title": order_item["product"]["title"],
            "expectedQuantity": quantity,
            "returnReason": reason,
            "handled": handled,
            "processingResults": self._history(rng, method, registered, quantity) if handled else [],
            "customerDetails": {key: order["shipmentDetails"][key] for key in CUSTOMER_FIELDS},
        }
        if tracked:
            item["trackAndTrace"] = f"3SBOL{rng.randint(10**9, 10**10 - 1)}"
            item["transporterName"] = rng.choice(TRANSPORTERS)
        return item

    def _history(self, rng: random.Random, method: str, registered: float, quantity: int) -> list[dict[str, Any]]:
        handling, processing = _weighted(rng, FBB_OUTCOMES if method == "FBB" else FBR_OUTCOMES)
        when = min(registered + rng.uniform(1, 8) * 86400, self.midnight - 60)
        results = []
        if handling == "STILL_APPROVED":
            earlier = registered + (when - registered) / 2
            results.append(result(quantity, "ACCEPTED", "EXCHANGE_PRODUCT", earlier))
        results.append(result(quantity, processing, handling, when))
        return results
