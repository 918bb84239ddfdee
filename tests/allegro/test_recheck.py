"""A backlog of returns nobody closes must not make every poll dearer: older open returns are read in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from retsync_connectors.allegro.emulator import AllegroEmulator
from tests.reconcile.conftest import Fleet

PER_PASS = 20


@pytest.fixture
def fleet(db: Engine, db_url: str, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(db, db_url, tmp_path)
    yield fleet
    fleet.close()


def _open_returns(fleet: Fleet) -> set[str]:
    with fleet.db.connect() as conn:
        return set(conn.execute(text(
            "SELECT external_id FROM returns WHERE status IN ('requested', 'in_transit', 'received')")).scalars())


def _asked_by_id(emulator: AllegroEmulator, since: int) -> list[list[str]]:
    """The ids of each re-read request (customerReturnId=...) Allegro got since request number `since`."""
    asked = []
    for logged in emulator.requests[since:]:
        if logged.path == "/order/customer-returns" and "customerReturnId" in logged.query:
            asked.append(logged.repeated.get("customerReturnId", [logged.query["customerReturnId"]]))
    return asked


def _backfilled(fleet: Fleet, recent_days: int) -> tuple[AllegroEmulator, set[str]]:
    """An Allegro channel whose returns of the last `recent_days` count as recent, backfilled: its open ones."""
    emulator = fleet.add("allegro", "allegro", AllegroEmulator(seed=5, n_returns=400),
                         recheck_recent_days=recent_days, recheck_older_per_pass=PER_PASS)
    assert isinstance(emulator, AllegroEmulator)
    fleet.sync()
    return emulator, _open_returns(fleet)


def test_older_open_returns_are_read_again_in_turn_a_bounded_slice_per_pull(fleet: Fleet) -> None:
    emulator, backlog = _backfilled(fleet, recent_days=0)
    assert len(backlog) > 3 * PER_PASS, "the sandbox leaves enough returns open to need several turns"

    seen: set[str] = set()
    passes = -(-len(backlog) // PER_PASS)
    for _ in range(passes):
        before = len(emulator.requests)
        fleet.sync()
        asked = _asked_by_id(emulator, before)
        assert sum(len(ids) for ids in asked) == PER_PASS, "each pull reads the same bounded slice again"
        seen.update(i for ids in asked for i in ids)
    assert seen >= backlog, "in turn, every open return was read again"

    with fleet.db.connect() as conn:
        position = conn.execute(text("SELECT cursor FROM sync_cursors WHERE stream = 'open_returns'")).scalar_one()
    assert position is not None


def test_recent_open_returns_are_read_again_on_every_pull(fleet: Fleet) -> None:
    emulator, backlog = _backfilled(fleet, recent_days=3650)
    for _ in range(2):
        before = len(emulator.requests)
        fleet.sync()
        assert {i for ids in _asked_by_id(emulator, before) for i in ids} == backlog
