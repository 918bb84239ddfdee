"""InPost tracking against the ShipX emulator: a parcel's milestones move its return on (never back), with the
carrier as their source; a failed parcel is flagged; the job keeps a modest pace."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync.intake.inpost_emulator import ORGANIZATION_ID, SANDBOX_TOKEN, InPostEmulator
from retsync.intake.manual import Entry, add
from retsync.intake.settings import InPostSettings
from retsync.intake.tracking import ParcelTracker
from retsync.testing.config import config_for
from tests.intake.conftest import sqlite_only

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def inpost() -> InPostEmulator:
    return InPostEmulator(seed=3, start=NOW - timedelta(days=2))


def tracker(db: Engine, db_url: str, tmp_path: Path, inpost: InPostEmulator, clock: Clock,
            **settings: object) -> ParcelTracker:
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual"}})
    carrier = InPostSettings(api_token=SANDBOX_TOKEN, organization_id=ORGANIZATION_ID, base_url="http://127.0.0.1:9",
                             requests_per_second=1000, **settings)
    return ParcelTracker(db, carrier, config.channels, clock=clock, transport=inpost.transport())


def record(db: Engine, tmp_path: Path, db_url: str, number: str, carrier: str | None = "inpost") -> str:
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual"}})
    external_id, _ = add(db, "paper", config.channels["paper"],
                         Entry(lines=[("SKU-1", 1)], tracking=number, carrier=carrier, created_at=NOW), NOW)
    return external_id


def state(db: Engine, external_id: str) -> tuple:
    with db.connect() as conn:
        return tuple(conn.execute(text("SELECT status, received_at FROM returns WHERE external_id = :id"),
                                  {"id": external_id}).one())


def test_a_tracked_return_goes_in_transit_then_received_when_the_parcel_is_delivered(
        db: Engine, db_url: str, tmp_path: Path, inpost: InPostEmulator) -> None:
    clock = Clock()
    number = inpost.add_parcel("520000011111111111111111", "label")
    external_id = record(db, tmp_path, db_url, number)
    jobs = tracker(db, db_url, tmp_path, inpost, clock)
    assert jobs.run().checked == 1 and state(db, external_id)[0] == "requested", "a label only: nothing moved"
    inpost.advance(number)
    clock.now += timedelta(hours=1)
    assert jobs.run().in_transit and state(db, external_id)[0] == "in_transit"
    delivered_at = inpost.deliver(number)
    clock.now += timedelta(minutes=30)
    assert jobs.run().checked == 0, "looked up again only after track_every"
    clock.now += timedelta(minutes=31)
    assert jobs.run().received
    status, received_at = state(db, external_id)
    assert status == "received" and str(received_at).startswith(delivered_at.strftime("%Y-%m-%d %H:%M"))
    clock.now += timedelta(hours=2)
    assert jobs.run().checked == 0, "a received return is not followed any more"
    with db.connect() as conn:
        history = conn.execute(text("SELECT kind, old_value, new_value, source FROM return_events "
                                    "WHERE source = 'carrier:inpost' ORDER BY id")).all()
    assert [tuple(row) for row in history] == [
        ("parcel", None, "in_transit", "carrier:inpost"), ("status", "requested", "in_transit", "carrier:inpost"),
        ("parcel", "in_transit", "received", "carrier:inpost"), ("status", "in_transit", "received", "carrier:inpost")]
    jobs.close()


@sqlite_only
def test_a_channels_status_is_never_moved_backwards_and_any_channels_return_is_followed(
        db: Engine, db_url: str, tmp_path: Path, inpost: InPostEmulator) -> None:
    clock = Clock()
    on_way = inpost.by_scenario("in_transit")
    arrived = inpost.by_scenario("delivered")
    ahead = record(db, tmp_path, db_url, on_way)
    behind = record(db, tmp_path, db_url, arrived, carrier="InPost Paczkomaty")
    with db.begin() as conn:  # the channel itself says this one arrived already (without a time)
        conn.execute(text("UPDATE returns SET status = 'received' WHERE external_id = :id"), {"id": ahead})
    jobs = tracker(db, db_url, tmp_path, inpost, clock)
    result = jobs.run()
    assert state(db, ahead) == ("received", None), "not followed: the channel is ahead"
    assert state(db, behind)[0] == "received" and result.checked == 1
    jobs.close()


def test_a_failed_parcel_is_flagged_and_the_flag_resolved_when_it_moves_on(
        db: Engine, db_url: str, tmp_path: Path, inpost: InPostEmulator) -> None:
    clock = Clock()
    lost = inpost.by_scenario("missing")
    external_id = record(db, tmp_path, db_url, lost)
    jobs = tracker(db, db_url, tmp_path, inpost, clock)
    assert jobs.run().problems

    def flags() -> list[tuple]:
        with db.connect() as conn:
            return [tuple(row) for row in conn.execute(text(
                "SELECT f.code, f.detail, f.resolved_at IS NULL FROM return_flags f JOIN returns r ON r.id = "
                "f.return_id WHERE r.external_id = :id AND f.code = 'parcel_problem'"), {"id": external_id})]

    assert flags() == [("parcel_problem", f"inpost parcel {lost}: missing", True)]
    inpost.fail(lost, "adopted_at_target_branch")  # found again
    clock.now += timedelta(hours=2)
    jobs.run()
    assert flags() == [("parcel_problem", f"inpost parcel {lost}: missing", False)]
    jobs.close()


@sqlite_only
def test_an_unknown_number_and_a_wrong_token_are_recorded_not_fatal(
        db: Engine, db_url: str, tmp_path: Path, inpost: InPostEmulator) -> None:
    clock = Clock()
    record(db, tmp_path, db_url, "000000000000000000000000")
    jobs = tracker(db, db_url, tmp_path, inpost, clock)
    result = jobs.run()
    assert result.checked == 0 and "resource_not_found" in result.errors[0]
    with db.connect() as conn:
        assert "resource_not_found" in conn.execute(text("SELECT last_error FROM parcels")).scalar_one()
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual"}})
    wrong = ParcelTracker(db, InPostSettings(api_token="not-the-token-xxxx", organization_id=1,
                                             base_url="http://127.0.0.1:9"), config.channels, clock=clock,
                          transport=inpost.transport())
    clock.now += timedelta(hours=2)
    assert "refused the API token" in wrong.run().errors[0]
    jobs.close()
    wrong.close()


@sqlite_only
def test_a_pass_looks_up_at_most_track_per_pass_parcels(db: Engine, db_url: str, tmp_path: Path,
                                                          inpost: InPostEmulator) -> None:
    clock = Clock()
    for index in range(5):
        record(db, tmp_path, db_url, inpost.add_parcel(f"52000001{index:016d}", "in_transit"))
    jobs = tracker(db, db_url, tmp_path, inpost, clock, track_per_pass=2)
    assert [jobs.run().checked for _ in range(4)] == [2, 2, 1, 0]
    assert len([r for r in inpost.requests if r.path.startswith("/v1/tracking/")]) == 5
    jobs.close()


def test_the_daemons_tracking_job_moves_the_return_to_received(db: Engine, db_url: str, tmp_path: Path,
                                                               inpost: InPostEmulator) -> None:
    from retsync.intake.jobs import IntakeJobs

    number = inpost.by_scenario("delivered")
    external_id = record(db, tmp_path, db_url, number)
    config = config_for(tmp_path, db_url, {"paper": {"connector": "manual"}})
    config = config.model_copy(update={"settings": config.settings.model_copy(update={
        "carriers": config.settings.carriers.model_validate({"inpost": {
            "api_token": SANDBOX_TOKEN, "organization_id": ORGANIZATION_ID, "base_url": "http://127.0.0.1:9"}})})})
    IntakeJobs(db, config, clock=Clock(), transport=inpost.transport()).track()
    assert state(db, external_id)[0] == "received"
    assert [r.headers["authorization"] for r in inpost.requests] == [f"Bearer {SANDBOX_TOKEN}"]


def test_the_token_is_not_sent_in_the_clear_to_another_machine() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="plain http:// to another machine"):
        InPostSettings(api_token=SANDBOX_TOKEN, organization_id=1, base_url="http://shipx.example.com")
    assert InPostSettings(api_token=SANDBOX_TOKEN, organization_id=1, base_url="http://shipx.example.com",
                          allow_insecure=True).base_url == "http://shipx.example.com"
