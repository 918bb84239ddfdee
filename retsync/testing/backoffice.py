"""The back-office flow every shop connector passes: marketplace returns decided in the shop's own panel.

A shop connector's test module subclasses `BackOfficeContract` and names its class:

    class TestWooCommerceBackOffice(BackOfficeContract):
        shop = WooCommerceConnector

Each test runs with Bol.com and with Allegro as the marketplace, on SQLite and PostgreSQL, through the real
path (config with `decisions_from`, Runner, back office, outbox) against both sandbox emulators.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, text

from retsync import registry
from retsync.app.daemon import Runner
from retsync.app.queries import return_story
from retsync.kit.contract import Connector
from retsync.kit.emulator import Emulator
from retsync.testing.config import config_for

SANDBOX_URL = "http://sandbox.invalid"
FAST = {"max_retries": 4, "max_backoff": "0.05s", "timeout": "5s"}


def _writes(emulator: Emulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests if r.method not in ("GET", "HEAD") and "token" not in r.path]


def _held(db: Engine) -> dict[str, tuple[str | None, str]]:
    with db.connect() as conn:
        return {row.key: (row.reference, row.state)
                for row in conn.execute(text("SELECT key, reference, state FROM held_returns"))}


def _shop_decisions(db: Engine) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT c.name || '/' || r.external_id, d.kind, d.state FROM decisions d "
            "JOIN returns r ON r.id = d.return_id JOIN channels c ON c.id = r.channel_id "
            "WHERE d.origin = 'shop' ORDER BY d.id"))]


def _open_undecided(db: Engine) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(text(
            "SELECT 'market/' || r.external_id FROM returns r JOIN channels c ON c.id = r.channel_id "
            "WHERE c.name = 'market' AND r.handled_by_channel = :no "
            "AND r.status IN ('requested', 'in_transit', 'received') "
            "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.return_id = r.id)"), {"no": False}).scalars())


class BackOfficeContract:
    shop: ClassVar[type[Connector]]

    @pytest.fixture(params=["bol", "allegro"])
    def marketplace(self, request: pytest.FixtureRequest) -> type[Connector]:
        cls = registry.get(request.param)
        assert cls is not None, f"the {request.param} connector must be installed"
        return cls

    @pytest.fixture
    def emulators(self, marketplace: type[Connector]) -> tuple[Emulator, Emulator]:
        market, shop = marketplace.sandbox(seed=5), self.shop.sandbox(seed=5)
        assert market is not None and shop is not None
        return market, shop

    @pytest.fixture
    def runner(self, db: Engine, db_url: str, tmp_path: Path, marketplace: type[Connector],
               emulators: tuple[Emulator, Emulator]) -> Iterator[Runner]:
        tables: dict[str, dict[str, Any]] = {
            "market": {**marketplace.sandbox_channel(SANDBOX_URL), **FAST, "decisions_from": "shop"},
            "shop": {**self.shop.sandbox_channel(SANDBOX_URL), **FAST},
        }
        config = config_for(tmp_path, db_url, tables)
        market, shop = emulators
        runner = Runner(config, transports={"market": market.transport(), "shop": shop.transport()}, db=db)
        runner.open()
        yield runner
        runner.close()

    def test_the_shop_can_hold_returns(self) -> None:
        assert self.shop.capabilities.holds_returns, "a shop connector says how it holds another channel's return"

    def test_open_marketplace_returns_are_created_in_the_shop_once(
            self, runner: Runner, db: Engine, emulators: tuple[Emulator, Emulator]) -> None:
        _, shop = emulators
        runner.sync_once()
        held = _held(db)
        waiting = _open_undecided(db)
        assert waiting and set(held) == waiting
        assert {state for _, state in held.values()} == {"held"}
        assert shop.held_returns() == {key: reference for key, (reference, _) in held.items()}

        runner.sync_once()
        runner.sync_once()
        assert shop.held_returns() == {key: reference for key, (reference, _) in held.items()}, \
            "a return already in the shop is never created there again"

    def test_a_decision_taken_in_the_shop_reaches_the_marketplace_exactly_once(
            self, runner: Runner, db: Engine, emulators: tuple[Emulator, Emulator]) -> None:
        market, shop = emulators
        runner.sync_once()
        (accept_key, (accept_ref, _)), (reject_key, (reject_ref, _)) = sorted(_held(db).items())[:2]
        assert accept_ref and reject_ref
        shop.panel_decide(accept_ref, "accept")
        shop.panel_decide(reject_ref, "reject", note="Worn and washed; not returnable")
        before = len(_writes(market))

        runner.sync_once()  # the shop's pull reads the decisions back, the push mirrors them to the marketplace
        decisions = _shop_decisions(db)
        assert {(ref, kind) for ref, kind, _ in decisions} == {(accept_key, "accept"), (reject_key, "reject")}
        assert {state for _, _, state in decisions} == {"pushed"}
        sent = _writes(market)[before:]
        assert sent, "the marketplace received the decisions"
        with db.connect() as conn:
            notes = set(conn.execute(text("SELECT note FROM decisions WHERE origin = 'shop' AND kind = 'reject'"))
                        .scalars())
        assert notes == {"Worn and washed; not returnable"}

        runner.sync_once()
        runner.sync_once()
        assert _writes(market)[before:] == sent, "a decision read back again is never pushed again"
        assert _shop_decisions(db) == decisions
        assert {state for _, state in _held(db).values()} == {"held", "decided"}
        story = return_story(db, reject_key)  # what `retsync returns show` prints
        assert story["held"] == {"shop": "shop", "state": "decided", "reference": reject_ref,
                                 "decided_kind": "reject", "last_error": None}
