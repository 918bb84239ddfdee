"""Helpers for the bol connector tests: connector factories wired to the sandbox in-process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from retsync.kit.contract import Runtime
from retsync_connectors.bol.connector import BolConnector, BolSettings
from retsync_connectors.bol.emulator import MEDIA_TYPE, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, BolEmulator

NOW = datetime.now(timezone.utc)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_connector(tmp_path: Path, sleeps: list[float]) -> Callable[..., BolConnector]:
    """A connector wired to an emulator in-process; waits are recorded in `sleeps`, never slept."""
    made: list[BolConnector] = []

    def make(emulator: BolEmulator, runtime: Runtime | None = None, **overrides: Any) -> BolConnector:
        settings = BolSettings(
            **{
                "connector": "bol",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
                "process_poll_delay": 0.25,
                **overrides,
            }
        )
        runtime = runtime or Runtime(state_dir=tmp_path, transport=emulator.transport(), sleep=sleeps.append)
        connector = BolConnector("bol-test", settings, runtime)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def bearer(emulator: BolEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.issue_token(300)}", "Accept": MEDIA_TYPE}


def listed(emulator: BolEmulator, method: str, handled: bool) -> list[str]:
    """A list's returnIds in bol's order, read straight from the emulator."""
    ids: list[str] = []
    with httpx.Client(base_url="https://api.bol.com", transport=emulator.transport()) as client:
        page = 1
        while True:
            body = client.get(
                "/retailer/returns",
                params={"page": page, "handled": str(handled).lower(), "fulfilment-method": method},
                headers=bearer(emulator),
            ).json()
            entries = body.get("returns") or []
            ids.extend(entry["returnId"] for entry in entries)
            if len(entries) < 50:
                return ids
            page += 1

