"""Following return parcels at the carrier (InPost ShipX) and moving their returns along.

Every open return (`requested` or `in_transit`, of any channel) with an InPost tracking number gets a row in
`parcels`; the job looks each up at most every `track_every`, and no more than `track_per_pass` per pass, so a
backlog costs InPost the same few requests a minute however long it is. What the parcel did becomes the
return's:

- its first step out of the customer's hands: the return is `in_transit`;
- delivered to the merchant: the return is `received`, with the time InPost gives (`received_at`);
- canceled, missing, returned to the sender: the flag `parcel_problem` (resolved if the parcel moves on).

Each milestone is a line in the return's history with `carrier:inpost` as its source and InPost's own status
word. A return's status is only ever moved forward: a channel that already says `received` or `decided` keeps
it, and the tracker never writes over the channel's record (its content hash stays the channel's, so the
channel's next unchanged read does not take the step back either).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, func, insert, or_, select, update

from retsync.intake.inpost import InPostClient, Tracking
from retsync.intake.records import STATUS_RANK
from retsync.intake.settings import InPostSettings
from retsync.kit.http import ApiError, AuthError, ChannelError
from retsync.kit.model import ReturnStatus
from retsync.kit.settings import ChannelSettings
from retsync.reconcile.flags import FlagCode, recompute
from retsync.store.models import Channel, Parcel, Return, ReturnEvent

log = structlog.get_logger(__name__)

CARRIER = "inpost"
SOURCE = "carrier:inpost"
FOLLOWED = (ReturnStatus.REQUESTED.value, ReturnStatus.IN_TRANSIT.value)


def is_inpost(carrier: str | None) -> bool:
    return carrier is not None and "inpost" in carrier.casefold()


@dataclass
class TrackingPass:
    checked: int = 0
    in_transit: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    problems: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ParcelTracker:
    """One pass at a time (`run`), from the daemon's tracking job or a test."""

    def __init__(self, db: Engine, settings: InPostSettings, channels: Mapping[str, ChannelSettings], *,
                 clock: Callable[[], datetime], transport: httpx.BaseTransport | None = None,
                 stop: Any = None) -> None:
        self.db = db
        self.settings = settings
        self.channels = channels
        self.clock = clock
        self.client = InPostClient(settings, transport=transport, stop=stop)

    def close(self) -> None:
        self.client.close()

    def run(self) -> TrackingPass:
        now = self.clock()
        self._enrol(now)
        result = TrackingPass()
        with self.db.connect() as conn:
            due = conn.execute(
                select(Parcel.id, Parcel.return_id, Parcel.tracking_number, Parcel.milestone, Parcel.checks)
                .join(Return, Return.id == Parcel.return_id)
                .where(Parcel.done.is_(False), or_(Parcel.next_check_at.is_(None), Parcel.next_check_at <= now),
                       Return.status.in_(FOLLOWED))
                .order_by(Parcel.next_check_at, Parcel.id).limit(self.settings.track_per_pass)).all()
        touched: set[int] = set()
        for parcel in due:
            try:
                tracking = self.client.track(parcel.tracking_number)
            except AuthError as exc:
                result.errors.append(f"InPost refused the API token: {exc}")
                log.error("tracking_failed", carrier=CARRIER, error=str(exc),
                          hint="check [carriers.inpost] api_token; no parcel is looked up until it is fixed")
                break
            except ApiError as exc:
                self._not_tracked(parcel, now, f"InPost answered {exc}")
                result.errors.append(f"{parcel.tracking_number}: {exc}")
                continue
            except ChannelError as exc:
                self._not_tracked(parcel, now, str(exc))
                result.errors.append(f"{parcel.tracking_number}: {exc}")
                break  # InPost is not answering: the rest waits for the next pass
            result.checked += 1
            if self._apply(parcel, tracking, now, result):
                touched.add(parcel.return_id)
        if touched:
            self._reflag(touched, now)
        return result

    def _enrol(self, now: datetime) -> None:
        """A parcel row for every open return with an InPost tracking number that has none yet."""
        with self.db.begin() as conn:
            known = select(Parcel.id).where(Parcel.return_id == Return.id,
                                            Parcel.tracking_number == Return.tracking_number).exists()
            rows = conn.execute(select(Return.id, Return.tracking_number, Return.carrier).where(
                Return.status.in_(FOLLOWED), Return.tracking_number.is_not(None),
                func.lower(Return.carrier).like("%inpost%"), ~known)).all()
            if rows:
                conn.execute(insert(Parcel.__table__), [{
                    "return_id": row.id, "carrier": CARRIER, "tracking_number": row.tracking_number,
                    "status": None, "status_at": None, "milestone": None, "problem": None, "done": False,
                    "checks": 0, "last_error": None, "checked_at": None, "next_check_at": now,
                    "created_at": now, "updated_at": now} for row in rows])

    def _not_tracked(self, parcel: Any, now: datetime, error: str) -> None:
        with self.db.begin() as conn:
            conn.execute(update(Parcel.__table__).where(Parcel.id == parcel.id).values(
                last_error=error[:2000], checks=parcel.checks + 1, checked_at=now,
                next_check_at=now + self.settings.track_every, updated_at=now))

    def _apply(self, parcel: Any, tracking: Tracking, now: datetime, result: TrackingPass) -> bool:
        """Record what is new about the parcel; answers whether its problem (and so its flag) changed."""
        delivered, dispatched, problem = tracking.delivered, tracking.dispatched, tracking.problem
        milestone = ("received" if delivered else problem.status if problem else
                     "in_transit" if dispatched else None)
        latest = tracking.steps[-1] if tracking.steps else None
        values: dict[str, Any] = {
            "status": tracking.status or (latest.status if latest else None), "status_at": latest.at if latest else None,
            "milestone": milestone, "problem": problem.status if problem and not delivered else None,
            "done": delivered is not None or (problem is not None and problem.status != "missing"),
            "checks": parcel.checks + 1, "last_error": None, "checked_at": now,
            "next_check_at": now + self.settings.track_every, "updated_at": now}
        with self.db.begin() as conn:
            before = conn.execute(select(Parcel.problem).where(Parcel.id == parcel.id)).scalar()
            conn.execute(update(Parcel.__table__).where(Parcel.id == parcel.id).values(**values))
            if milestone == parcel.milestone:
                return before != values["problem"]
            ret = conn.execute(select(Return.status, Return.received_at).where(Return.id == parcel.return_id)).one()
            status = ReturnStatus(ret.status)
            events = [{"return_id": parcel.return_id, "return_line_id": None, "at": now, "kind": "parcel",
                       "old_value": parcel.milestone, "new_value": milestone, "source": SOURCE,
                       "detail": f"InPost {parcel.tracking_number}: "
                                 + ", ".join(f"{step.status} {step.at.isoformat() if step.at else ''}".strip()
                                             for step in tracking.steps[-3:])}]
            target = (ReturnStatus.RECEIVED if delivered else ReturnStatus.IN_TRANSIT if dispatched else None)
            if target is not None and STATUS_RANK[target] > STATUS_RANK[status]:
                change: dict[str, Any] = {"status": target.value, "updated_at": now}
                if target is ReturnStatus.RECEIVED and ret.received_at is None:
                    change["received_at"] = delivered.at if delivered and delivered.at else now
                conn.execute(update(Return.__table__).where(Return.id == parcel.return_id).values(**change))
                events.append({"return_id": parcel.return_id, "return_line_id": None, "at": now, "kind": "status",
                               "old_value": status.value, "new_value": target.value, "source": SOURCE,
                               "detail": f"InPost: {(delivered or dispatched).status}"})  # type: ignore[union-attr]
                (result.received if target is ReturnStatus.RECEIVED else result.in_transit).append(parcel.return_id)
            if problem is not None and not delivered:
                result.problems.append(parcel.return_id)
            conn.execute(insert(ReturnEvent.__table__), events)
        log.info("parcel_milestone", carrier=CARRIER, return_id=parcel.return_id, milestone=milestone,
                 status=values["status"])
        return True

    def _reflag(self, return_ids: set[int], now: datetime) -> None:
        """`parcel_problem` brought in line on the channels of the returns whose parcels changed."""
        with self.db.connect() as conn:
            names = conn.execute(select(Channel.id, Channel.name).join(Return, Return.channel_id == Channel.id)
                                 .where(Return.id.in_(sorted(return_ids))).distinct()).all()
        for channel_id, name in names:
            settings = self.channels.get(name)
            if settings is not None:
                recompute(self.db, channel_id, settings, now, codes=(FlagCode.PARCEL_PROBLEM,))
